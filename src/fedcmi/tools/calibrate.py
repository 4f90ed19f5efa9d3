"""Calibration: what a dataset setting looks like before any federated run.

A comparison of imbalance methods can only show something where the imbalance costs
accuracy. ``fedcmi calibrate`` measures that centrally (no federation: one client holding
the whole training pool, the config's encoders, SGD settings and batch size, ``epochs``
epochs at the config's learning rate) with three models. Every figure is measured on
the **val** split, never on the test split the comparisons report:

- ``unimodal_a``, ``unimodal_v``: val accuracy of a model trained on one modality alone
  (encoder + linear head, ``unimodal-a`` / ``unimodal-v``);
- ``joint``: fused val accuracy of the late-fusion model trained on both (``fedavg``'s
  model and loss);
- ``oracle``: val accuracy of the two unimodal models combined by summing their
  log-probabilities, what the two encoders achieve when neither disturbs the other;
- ``gap = oracle - joint``: what joint training loses to the imbalance;
- ``weak``: the modality ("a" or "v") whose zero-filled val accuracy in the joint model
  (``acc_a`` / ``acc_v``) is lower;
- ``probe_weak_joint`` / ``probe_weak_alone``: linear-probe val accuracy (probe fitted on
  the training pool) of the weak modality's encoder after joint training / after training
  alone (see :mod:`fedcmi.core.probe`); ``probe_strong_*`` the same for the other encoder;
  ``weak_starvation = probe_weak_alone - probe_weak_joint``: how much joint training
  starved the weak encoder.

Each setting is calibrated with ``seeds`` run seeds (the config's seed and the next
ones: model initialisation and batch order; the data split stays the dataset's) and
reported as the mean and standard error (sample std / sqrt(n)) of each figure. A setting
discriminates between imbalance methods (:func:`in_regime`) when, over at least 3 seeds,
both modalities carry signal, the same modality is weak in every seed, the weak encoder
is starved by at least 3 points, and ``gap`` exceeds its threshold by more than its
standard error.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fedcmi.config import Config, config_from_dict
from fedcmi.core.files import atomic_write, write_json
from fedcmi.core.probe import encoder_probe
from fedcmi.engine.evaluation import collect_logits, evaluate
from fedcmi.engine.quality import train_central
from fedcmi.engine.setup import set_up
from fedcmi.models.base import MultimodalModel
from fedcmi.tools.sweep import Cell, Grid, SweepError, run_cells, with_threads
from fedcmi.tools.tables import layout

FIGURES = (
    "unimodal_a",
    "unimodal_v",
    "joint",
    "oracle",
    "gap",
    "probe_weak_joint",
    "probe_weak_alone",
    "weak_starvation",
    "probe_strong_joint",
    "probe_strong_alone",
)
KEYS = (*FIGURES, "weak")  # one seed's calibration
MIN_SEEDS = 3
METHODS = {"a": "unimodal-a", "v": "unimodal-v", "joint": "fedavg"}


def calibrate(cfg: Config, epochs: int, cache_dir: Path | None = None) -> dict[str, Any]:
    """One seed's calibration figures of ``cfg``'s dataset setting, on the val split
    (keys: :data:`KEYS`)."""
    run = set_up(cfg, cache_dir)
    data, device = run.data, run.device
    models = {key: train_central(run, m, epochs) for key, m in METHODS.items()}
    test, bs, classes = data.val.to(device), cfg.eval.batch_size, data.num_classes
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
    weak_joint, weak_alone = probe(models["joint"], weak), probe(models[weak], weak)
    return {
        "unimodal_a": _accuracy(alone["a"].argmax(1), test.y),
        "unimodal_v": _accuracy(alone["v"].argmax(1), test.y),
        "joint": joint["acc"],
        "oracle": oracle,
        "gap": oracle - joint["acc"],
        "probe_weak_joint": weak_joint,
        "probe_weak_alone": weak_alone,
        "weak_starvation": weak_alone - weak_joint,
        "probe_strong_joint": probe(models["joint"], strong),
        "probe_strong_alone": probe(models[strong], strong),
        "weak": weak,
    }


def calibrate_seeds(
    cfg: Config, epochs: int, seeds: int = MIN_SEEDS, cache_dir: Path | None = None
) -> dict[str, Any]:
    """The calibration over ``seeds`` run seeds: per figure its ``mean`` and standard
    error ``se``, the weak modality (``"mixed"`` when the seeds disagree) and each seed's
    figures."""
    runs = [
        calibrate(dataclasses.replace(cfg, seed=cfg.seed + i), epochs, cache_dir)
        for i in range(seeds)
    ]
    return summarise_seeds(runs)


def summarise_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard error (sample std / sqrt(n); 0 for one run) of each figure."""
    n = len(runs)
    figures = {}
    for key in FIGURES:
        values = [float(r[key]) for r in runs]
        se = statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
        figures[key] = {"mean": statistics.fmean(values), "se": se}
    sides = {r["weak"] for r in runs}
    weak = sides.pop() if len(sides) == 1 else "mixed"
    return {"split": "val", "seeds": n, "weak": weak, "figures": figures, "per_seed": runs}


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred == y).double().mean())


# The regime of the paper's datasets, where an imbalance method has something to fix:
# the stronger modality alone within STRONG_RANGE, the weaker within WEAK_RANGE, joint
# training more than its standard error above MIN_GAP below the oracle, and the weak
# encoder's joint probe at least MIN_STARVATION below its alone probe, over at least
# MIN_SEEDS seeds that agree on the weak modality (all means over the seeds).
STRONG_RANGE = (0.75, 0.92)
WEAK_RANGE = (0.55, 0.85)
MIN_GAP = 0.025
MIN_STARVATION = 0.03


def regime_failures(summary: dict[str, Any]) -> list[str]:
    """Why a multi-seed calibration misses the regime described above (empty: it meets
    it)."""
    fig = {k: v["mean"] for k, v in summary["figures"].items()}
    gap_se = summary["figures"]["gap"]["se"]
    low, high = sorted((fig["unimodal_a"], fig["unimodal_v"]))
    starved = fig["weak_starvation"]
    checks = [
        (summary["seeds"] >= MIN_SEEDS, f"{summary['seeds']} seeds < {MIN_SEEDS}"),
        (summary["weak"] != "mixed", "the weak modality differs between seeds"),
        (STRONG_RANGE[0] <= high <= STRONG_RANGE[1], f"stronger alone {high:.3f} outside"),
        (WEAK_RANGE[0] <= low <= WEAK_RANGE[1], f"weaker alone {low:.3f} outside"),
        (fig["gap"] - MIN_GAP > gap_se, f"gap {fig['gap']:.3f} - {MIN_GAP} <= SE {gap_se:.3f}"),
        (starved >= MIN_STARVATION, f"weak encoder starved by {starved:.3f} < {MIN_STARVATION}"),
    ]
    return [why for ok, why in checks if not ok]


def in_regime(summary: dict[str, Any]) -> bool:
    """Whether a multi-seed calibration (:func:`calibrate_seeds`) meets the regime."""
    return not regime_failures(summary)


def _calibrate_cell(
    config: dict[str, Any], epochs: int, seeds: int, threads: int | None
) -> dict[str, Any]:
    """Worker entry point of a calibration grid (a child process when jobs > 1)."""
    started = time.perf_counter()
    summary = calibrate_seeds(config_from_dict(with_threads(config, threads)), epochs, seeds)
    return {**summary, "seconds": round(time.perf_counter() - started, 1)}


def calibrate_grid(
    grid: Grid,
    out_dir: str | Path,
    epochs: int,
    jobs: int = 1,
    on_cell: Callable[[Cell, dict[str, Any] | None, str], None] | None = None,
    seeds: int = MIN_SEEDS,
) -> Path:
    """Calibrate every cell of a grid (its ``[axes]``; methods play no part) with
    ``seeds`` seeds into ``out_dir``: one ``cells/<cell id>.json`` each (a finished cell
    with the same ``epochs`` and ``seeds`` is skipped) and ``calibration.csv``, rewritten
    after every cell."""
    out = Path(out_dir)
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(grid.path, out / "grid.toml")
    todo = [c for c in grid.cells if _finished(cells_dir, c, epochs, seeds) is None]
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
        write_calibration_csv(grid, out, epochs, seeds)
        if on_cell:
            on_cell(cell, figures, "done")

    run_cells(todo, _calibrate_cell, lambda c, t: (c.config, epochs, seeds, t), jobs, settle)
    path = write_calibration_csv(grid, out, epochs, seeds)
    if failed:
        raise SweepError(f"{len(failed)} calibration(s) failed: {', '.join(failed)}")
    return path


def _finished(cells_dir: Path, cell: Cell, epochs: int, seeds: int) -> dict[str, Any] | None:
    path = cells_dir / f"{cell.cell_id}.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    same = summary.get("epochs") == epochs and summary.get("seeds") == seeds
    return summary if same and "figures" in summary else None


CSV_COLUMNS = (
    *(c for key in FIGURES for c in (key, f"{key}_se")),
    "weak",
    "regime",
    "seeds",
    "epochs",
    "seconds",
)


def write_calibration_csv(grid: Grid, out: Path, epochs: int, seeds: int) -> Path:
    """``calibration.csv``: the grid's axes, each figure's mean and standard error over
    the seeds, and whether the setting meets the regime."""
    path = out / "calibration.csv"

    def write(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=[*grid.axes, *CSV_COLUMNS])
        writer.writeheader()
        for cell in grid.cells:
            summary = _finished(out / "cells", cell, epochs, seeds)
            if summary is not None:
                row: dict[str, Any] = {**cell.axes}
                for key, stat in summary["figures"].items():
                    row[key], row[f"{key}_se"] = stat["mean"], stat["se"]
                regime = "yes" if in_regime(summary) else "no"
                row.update(weak=summary["weak"], regime=regime, seeds=summary["seeds"])
                writer.writerow({**row, "epochs": epochs, "seconds": summary["seconds"]})

    return atomic_write(path, write)


def calibration_table(path: str | Path, fmt: str = "markdown") -> str:
    """A calibration.csv as a table (accuracies to three decimals)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    shown = [c for c in header if not c.endswith("_se")]
    body = [[_cell(row, c) for c in shown] for row in rows]
    return layout(shown, body, fmt, label_columns=header.index(FIGURES[0]))


def _cell(row: dict[str, str], column: str) -> str:
    """A figure as ``mean ± se`` (three decimals); other columns as they are."""
    if column not in FIGURES:
        return row[column]
    return f"{_short(row[column])} ± {_short(row[f'{column}_se'])}"


def _short(text: str) -> str:
    try:
        return f"{float(text):.3f}"
    except ValueError:
        return text
