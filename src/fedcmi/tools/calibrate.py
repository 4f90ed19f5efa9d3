"""Calibration: what a dataset setting looks like before any federated run.

A comparison of imbalance methods can only show something where the imbalance costs
accuracy. ``fedcmi calibrate`` measures that centrally (no federation: one client holding
the whole training pool, the config's encoders, SGD settings and batch size, ``epochs``
epochs at the config's learning rate) with three models:

- ``unimodal_a``, ``unimodal_v``: test accuracy of a model trained on one modality alone
  (encoder + linear head, ``unimodal-a`` / ``unimodal-v``);
- ``joint``: fused test accuracy of the late-fusion model trained on both (``fedavg``'s
  model and loss);
- ``oracle``: test accuracy of the two unimodal models combined by summing their
  log-probabilities, what the two encoders achieve when neither disturbs the other;
- ``gap = oracle - joint``: what joint training loses to the imbalance;
- ``weak``: the modality ("a" or "v") whose zero-filled test accuracy in the joint model
  (``acc_a`` / ``acc_v``) is lower;
- ``probe_weak_joint`` / ``probe_weak_alone``: linear-probe test accuracy of the weak
  modality's encoder after joint training / after training alone (see
  :mod:`fedcmi.core.probe`); ``probe_strong_*`` the same for the other encoder. A joint probe
  well below the alone probe means joint training starved that encoder.

A setting discriminates between imbalance methods when both modalities carry signal,
``gap`` is clearly positive and at least one encoder is starved.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fedcmi.algorithms import ALGORITHMS
from fedcmi.config import Config, NamedConfig, config_from_dict
from fedcmi.core.files import atomic_write, write_json
from fedcmi.core.probe import encoder_probe
from fedcmi.data import load_dataset
from fedcmi.data.base import MultimodalData
from fedcmi.engine.embedded import ClientTrainer, make_client_data, select_device
from fedcmi.engine.evaluation import collect_logits, evaluate
from fedcmi.engine.speed import configure_torch
from fedcmi.models.base import MultimodalModel
from fedcmi.tools.sweep import Cell, Grid, SweepError, run_cells, with_threads
from fedcmi.tools.tables import layout

KEYS = (
    "unimodal_a",
    "unimodal_v",
    "joint",
    "oracle",
    "gap",
    "weak",
    "probe_weak_joint",
    "probe_weak_alone",
    "probe_strong_joint",
    "probe_strong_alone",
)
METHODS = {"a": "unimodal-a", "v": "unimodal-v", "joint": "fedavg"}


def train_central(
    cfg: Config, data: MultimodalData, method: str, epochs: int, device: torch.device
) -> MultimodalModel:
    """``method``'s model trained on the whole training pool as one client, ``epochs``
    epochs of the config's SGD at a constant learning rate (one optimizer throughout)."""
    central = dataclasses.replace(
        cfg,
        algorithm=NamedConfig(method, ALGORITHMS.get(method).Params()),
        train=dataclasses.replace(cfg.train, local_epochs=epochs, lr_decay_start=None),
    )
    trainer = ClientTrainer(central, data, device)
    client = make_client_data(data.train, np.arange(len(data.train)), "av", 0, device)
    update, _ = trainer.train(client, trainer.initial_state(), round_idx=0)
    trainer.model.load_state_dict(update.state)
    return trainer.model


def calibrate(cfg: Config, epochs: int, cache_dir: Path | None = None) -> dict[str, Any]:
    """The calibration figures of ``cfg``'s dataset setting (keys: :data:`KEYS`)."""
    configure_torch(cfg)
    data = load_dataset(cfg.data.name, cfg.data.params, cache_dir)
    device = select_device(cfg.engine.device)
    models = {key: train_central(cfg, data, m, epochs, device) for key, m in METHODS.items()}
    test, bs, classes = data.test.to(device), cfg.eval.batch_size, data.num_classes
    alone = {side: collect_logits(models[side], test, bs)["acc"] for side in "av"}
    joint = evaluate(models["joint"], test, bs, classes)
    oracle_pred = (F.log_softmax(alone["a"], 1) + F.log_softmax(alone["v"], 1)).argmax(1)
    weak = "a" if joint["acc_a"] < joint["acc_v"] else "v"
    strong = "v" if weak == "a" else "a"

    def probe(model: MultimodalModel, side: str) -> float:
        split = (getattr(data.train, f"x_{side}"), data.train.y)
        held_out = (getattr(test, f"x_{side}"), test.y)
        return encoder_probe(getattr(model, f"enc_{side}"), split, held_out, classes, bs)

    oracle = _accuracy(oracle_pred, test.y)
    return {
        "unimodal_a": _accuracy(alone["a"].argmax(1), test.y),
        "unimodal_v": _accuracy(alone["v"].argmax(1), test.y),
        "joint": joint["acc"],
        "oracle": oracle,
        "gap": oracle - joint["acc"],
        "weak": weak,
        "probe_weak_joint": probe(models["joint"], weak),
        "probe_weak_alone": probe(models[weak], weak),
        "probe_strong_joint": probe(models["joint"], strong),
        "probe_strong_alone": probe(models[strong], strong),
    }


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).double().mean())


# The regime of the paper's datasets, where an imbalance method has something to fix:
# the stronger modality alone within STRONG_RANGE, the weaker within WEAK_RANGE, joint
# training at least MIN_GAP below the oracle, and some encoder's joint probe at least
# MIN_STARVATION below its alone probe.
STRONG_RANGE = (0.75, 0.92)
WEAK_RANGE = (0.55, 0.85)
MIN_GAP = 0.025
MIN_STARVATION = 0.05


def in_regime(figures: dict[str, Any]) -> bool:
    """Whether a calibration meets the regime described above."""
    low, high = sorted((figures["unimodal_a"], figures["unimodal_v"]))
    starved = max(
        figures["probe_weak_alone"] - figures["probe_weak_joint"],
        figures["probe_strong_alone"] - figures["probe_strong_joint"],
    )
    return (
        STRONG_RANGE[0] <= high <= STRONG_RANGE[1]
        and WEAK_RANGE[0] <= low <= WEAK_RANGE[1]
        and figures["gap"] >= MIN_GAP
        and starved >= MIN_STARVATION
    )


def _calibrate_cell(config: dict[str, Any], epochs: int, threads: int | None) -> dict[str, Any]:
    """Worker entry point of a calibration grid (a child process when jobs > 1)."""
    started = time.perf_counter()
    figures = calibrate(config_from_dict(with_threads(config, threads)), epochs)
    return {**figures, "seconds": round(time.perf_counter() - started, 1)}


def calibrate_grid(
    grid: Grid,
    out_dir: str | Path,
    epochs: int,
    jobs: int = 1,
    on_cell: Callable[[Cell, dict[str, Any] | None, str], None] | None = None,
) -> Path:
    """Calibrate every cell of a grid (its ``[axes]``; seeds and methods play no part)
    into ``out_dir``: one ``cells/<cell id>.json`` each (a finished cell with the same
    ``epochs`` is skipped) and ``calibration.csv``, rewritten after every cell."""
    out = Path(out_dir)
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(grid.path, out / "grid.toml")
    todo = [c for c in grid.cells if _finished(cells_dir, c, epochs) is None]
    failed: list[str] = []

    def settle(cell: Cell, outcome: Callable[[], dict[str, Any]]) -> None:
        try:
            figures = outcome()
        except Exception as exc:  # noqa: BLE001 - reported, the others go on
            failed.append(cell.cell_id)
            if on_cell:
                on_cell(cell, None, f"FAILED ({type(exc).__name__}: {exc})")
            return
        write_json(cells_dir / f"{cell.cell_id}.json", {"epochs": epochs, **figures})
        write_calibration_csv(grid, out, epochs)
        if on_cell:
            on_cell(cell, figures, "done")

    run_cells(todo, _calibrate_cell, lambda c, t: (c.config, epochs, t), jobs, settle)
    path = write_calibration_csv(grid, out, epochs)
    if failed:
        raise SweepError(f"{len(failed)} calibration(s) failed: {', '.join(failed)}")
    return path


def _finished(cells_dir: Path, cell: Cell, epochs: int) -> dict[str, Any] | None:
    path = cells_dir / f"{cell.cell_id}.json"
    if not path.is_file():
        return None
    figures = json.loads(path.read_text())
    return figures if figures.get("epochs") == epochs else None


CSV_COLUMNS = (*KEYS, "regime", "epochs", "seconds")


def write_calibration_csv(grid: Grid, out: Path, epochs: int) -> Path:
    """``calibration.csv``: the grid's axes, the figures and whether they meet the regime."""
    path = out / "calibration.csv"

    def write(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=[*grid.axes, *CSV_COLUMNS])
        writer.writeheader()
        for cell in grid.cells:
            figures = _finished(out / "cells", cell, epochs)
            if figures is not None:
                regime = "yes" if in_regime(figures) else "no"
                writer.writerow({**cell.axes, **figures, "regime": regime})

    return atomic_write(path, write)


def calibration_table(path: str | Path, fmt: str = "markdown") -> str:
    """A calibration.csv as a table (accuracies to three decimals)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    body = [[_short(row[c]) if c in KEYS else row[c] for c in header] for row in rows]
    return layout(header, body, fmt, label_columns=header.index(KEYS[0]))


def _short(text: str) -> str:
    try:
        return f"{float(text):.3f}"
    except ValueError:
        return text
