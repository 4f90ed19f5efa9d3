"""``results.csv``, a sweep's table of results: its columns and its reader.

One row per finished cell: the cell's axes, then :data:`RESULT_COLUMNS`. The sweep
writes it (:func:`fedcmi.tools.sweep.write_results`); tables, plots and reports read it
with :func:`read_results`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fedcmi.core.protocol import ACCURACIES, PROBES
from fedcmi.errors import InputError

# Primary figures: test metrics averaged over the last eval.last_rounds rounds.
METRICS = ACCURACIES
BEST_METRICS = ("acc", "acc_a", "acc_v")  # secondary: at the best smoothed-val round
MISSING_METRICS = ("acc", "acc_a", "acc_v")
RESULT_COLUMNS = (
    *METRICS,
    *PROBES,
    "val_acc",  # val acc over the same last rounds: what method knobs are tuned on
    "val_gain",  # plateau check (fedcmi.core.protocol.val_gain)
    "best_round",
    *(f"best_{m}" for m in BEST_METRICS),
    "per_class_std",  # std of the last round's per-class accuracies
    "worst_class_acc",  # fairness across classes, mean over the last rounds (evaluation.py)
    "class_acc_std",
    # Test-time missing inputs (eval.missing_rate_*): the masked test set's figures over
    # the last rounds ("" without them); a robustness curve is a table over the rates.
    *(f"missing_{m}" for m in MISSING_METRICS),
    "max_client_loss",  # the largest local training loss of any client in any round
    "max_grad_norm",  # the largest local gradient norm of any client step (diagnostics)
    "rounds",
    "wall_seconds",
    "run_dir",
)


FAILURE_COLUMNS = ("error", "run_dir")  # failures.csv: the cell's axes, then these


def read_results(path: str | Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of results.csv and its axis columns (every column before the metrics)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        rows = list(reader)
    if RESULT_COLUMNS[0] not in header:
        raise InputError(f"{path}: no {RESULT_COLUMNS[0]!r} column; is this a sweep's results.csv?")
    return rows, list(header[: header.index(RESULT_COLUMNS[0])])
