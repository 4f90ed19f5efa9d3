"""The reporting protocol: which figures of a run are reported and how they are chosen.

Every round the global model is evaluated on the val and test splits. From those
per-round records a run reports:

- **Primary: the last-rounds mean.** Each test metric averaged over the last
  ``eval.last_rounds`` rounds (default 5). It uses neither split to pick anything, so it
  cannot pick a lucky round, and averaging damps round-to-round noise.
- **Secondary: the best-val round.** The round with the highest val ``acc`` after a
  trailing mean over ``eval.smooth_rounds`` rounds (default 3; round t scores the mean of
  rounds t-2..t), ties going to the later round, and the test metrics at that round.
  Smoothing and late ties keep a saturated val accuracy (many rounds at 1.0) from
  picking an arbitrary early round.
- **Plateau check: ``val_gain``.** Mean val ``acc`` of the last ``last_rounds`` rounds
  minus the mean of the ``last_rounds`` before them (None with fewer than twice as many
  rounds). A run whose val accuracy still climbs has a clearly positive gain; the
  benchmark grids use runs long enough that FedAvg's gain is within +-0.01.
"""

from __future__ import annotations

import statistics
from typing import Any

SELECTION_KEY = "acc"

# The metric names, written once. Accuracies every run reports per split (absent where a
# model has no such output): fused, each modality with the other zero-filled, and
# FedCMI's infiltration fills (a with v's slot filled from a, v with a's from v); FedCMI's
# modality heads; and, in the summary, the linear probes of the final encoders.
ACCURACIES = ("acc", "acc_a", "acc_v", "acc_av", "acc_va")
HEAD_ACCURACIES = ("acc_a_head", "acc_v_head")
PROBES = ("probe_a", "probe_v")


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The float-valued metrics of one split (drops lists such as ``per_class_acc``)."""
    return {k: v for k, v in metrics.items() if isinstance(v, float)}


def window_mean(records: list[dict[str, Any]], split: str, k: int) -> dict[str, float]:
    """Mean of each scalar metric of ``split`` over the last ``k`` records (metrics that
    every one of those records has)."""
    window = [scalars(r[split]) for r in records[-k:]]
    keys = [key for key in window[-1] if all(key in w for w in window)]
    return {key: statistics.fmean(w[key] for w in window) for key in keys}


def best_index(records: list[dict[str, Any]], smooth: int) -> int:
    """Index of the record with the best trailing-mean val ``acc`` (later wins ties)."""
    accs = [r["val"][SELECTION_KEY] for r in records]
    best, best_score = 0, float("-inf")
    for i in range(len(accs)):
        window = accs[max(0, i - smooth + 1) : i + 1]
        score = sum(window) / len(window)
        if score >= best_score:
            best, best_score = i, score
    return best


def val_gain(records: list[dict[str, Any]], k: int) -> float | None:
    """Mean val acc of the last ``k`` rounds minus that of the ``k`` rounds before."""
    if len(records) < 2 * k:
        return None
    accs = [r["val"][SELECTION_KEY] for r in records]
    return statistics.fmean(accs[-k:]) - statistics.fmean(accs[-2 * k : -k])


def run_figures(records: list[dict[str, Any]], last_rounds: int, smooth: int) -> dict[str, Any]:
    """The summary's figures from a run's per-round records (metrics.jsonl lines)."""
    if not records:
        raise ValueError("no round was recorded")
    k = min(last_rounds, len(records))
    best = records[best_index(records, smooth)]
    last = records[-1]
    return {
        "selection": (
            f"best round by val {SELECTION_KEY}, trailing mean over {smooth} rounds, "
            "ties to the later round"
        ),
        "best_round": best["round"],
        "best": {"val": scalars(best["val"]), "test": scalars(best["test"])},
        "best_test_per_class_acc": best["test"].get("per_class_acc", []),
        "last": {"val": scalars(last["val"]), "test": scalars(last["test"])},
        "last_test_per_class_acc": last["test"].get("per_class_acc", []),
        "last_rounds": k,
        "last_mean": {
            "val": window_mean(records, "val", k),
            "test": window_mean(records, "test", k),
        },
        "val_gain": val_gain(records, last_rounds),
        **missing_figures(records, best, last, k),
    }


def missing_figures(
    records: list[dict[str, Any]], best: dict[str, Any], last: dict[str, Any], k: int
) -> dict[str, Any]:
    """The masked test set's figures (test-time missing inputs), beside the complete
    test set's: at the best round, the last round and over the last ``k`` rounds."""
    if "test_missing" not in last:
        return {}
    return {
        "test_missing": {
            "best": scalars(best["test_missing"]),
            "last": scalars(last["test_missing"]),
            "last_mean": window_mean(records, "test_missing", k),
        }
    }
