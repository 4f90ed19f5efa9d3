"""``fedcmi curve``: accuracy against the test-time missing rate, for every finished run
of a sweep, from each run's final global model (``final.pt``), with no retraining.

For each run and each rate q, the test set is masked as ``eval.missing_rate_a = q`` (or
``_v``) would mask it (:class:`~fedcmi.engine.evaluation.MissingInputs`: fixed masks
from ``eval.missing_seed``, the same for every method and seed) and every head is
scored on it. The rows go to ``missing-curve.csv`` beside the sweep's ``results.csv``,
in the same shape (the run's axes, a ``masked`` axis such as ``v0.5``, then the
figures), so ``fedcmi table`` reads it as it reads results (``--by
algorithm.name,masked``, ``--baseline``). The figures are the final model's, not the
mean over the last rounds that results.csv reports.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import torch

from fedcmi.config import load_config
from fedcmi.core.files import atomic_write
from fedcmi.engine.embedded import ClientTrainer
from fedcmi.engine.evaluation import MissingInputs, evaluate
from fedcmi.engine.run_folder import RunFolder
from fedcmi.engine.setup import set_up
from fedcmi.errors import InputError
from fedcmi.tools.results import read_results

CURVE_FILE = "missing-curve.csv"
FIGURES = ("acc", "acc_a", "acc_v")


def run_curve(run_dir: Path, rates: list[float], missing_seed: int) -> list[dict[str, Any]]:
    """One row per (modality, rate): ``masked`` (``a0.25``, ...) and the final model's
    accuracy of every head on the test set with that modality hidden at that rate."""
    folder = RunFolder(run_dir)
    if not folder.final_file.is_file():
        raise InputError(f"{folder.final_file}: missing (the run did not finish)")
    cfg = load_config(folder.config_file)
    run = set_up(cfg, torch_settings=False)
    model = ClientTrainer(cfg, run.data, run.device, run.precision.name).model
    model.load_state_dict(torch.load(folder.final_file, map_location=run.device, weights_only=True))
    test = run.data.test.to(run.device)
    rows = []
    for side in "av":
        for rate in rates:
            masking = dataclasses.replace(
                cfg.eval,
                missing_rate_a=rate if side == "a" else 0.0,
                missing_rate_v=rate if side == "v" else 0.0,
                missing_seed=missing_seed,
            )
            missing = MissingInputs.draw(len(test), masking)
            scores = evaluate(
                model, missing.apply(test), cfg.eval.batch_size, run.data.num_classes, missing
            )
            rows.append({"masked": f"{side}{rate:g}", **{f: scores.get(f, "") for f in FIGURES}})
    return rows


def sweep_curve(sweep_dir: str | Path, rates: list[float], missing_seed: int = 0) -> Path:
    """Write ``missing-curve.csv`` of every run in the sweep's ``results.csv``."""
    sweep_dir = Path(sweep_dir)
    bad = [r for r in rates if not 0 < r <= 1]
    if bad:
        raise InputError(f"--rates: {bad[0]} is outside (0, 1]")
    results, axes = read_results(sweep_dir / "results.csv")
    rows = []
    for result in results:
        for row in run_curve(sweep_dir / result["run_dir"], rates, missing_seed):
            rows.append({**{a: result[a] for a in axes}, **row, "run_dir": result["run_dir"]})

    def write(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=[*axes, "masked", *FIGURES, "run_dir"])
        writer.writeheader()
        writer.writerows(rows)

    return atomic_write(sweep_dir / CURVE_FILE, write)
