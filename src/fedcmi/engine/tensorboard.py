"""Live training curves: one TensorBoard event stream per run (``[logging] tensorboard``).

Every round's :class:`~fedcmi.engine.run_folder.RoundRecord` becomes scalars in
``RUN/tensorboard/``, at step = the 1-based round:

- ``train/loss`` (mean client loss) and ``train/lr``;
- ``val/<metric>`` and ``test/<metric>`` for every scalar metric of the evaluation
  (``acc``, ``acc_a``, ``acc_v``, FedCMI's ``acc_av``/``acc_va``/head accuracies,
  ``imbalance_ratio``, ...); ``per_class_acc`` as ``val/per_class_acc/<c>``;
- ``clients/<key>``: the mean over the round's clients of each numeric value of their
  logs (FedCMI's ``a_dominant_frac``, OGM-GE's and PMR's ratios, ...), and for list
  values (FedCMI's class-wise ``temperatures``) ``clients/<key>/<c>``, the mean over the
  clients that report one.

The event files are a view: ``metrics.jsonl`` holds the same numbers and stays the
record. A resumed run purges the events logged after its checkpoint, so the curves hold
each round once. ``torch.utils.tensorboard`` needs the ``tensorboard`` package (the
``tensorboard`` extra); it is imported only when the option is on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fedcmi.config import ConfigError

FOLDER = "tensorboard"

# Client-log keys that identify or size a client rather than measure its training.
_NOT_MEASURES = frozenset({"cid", "modalities", "num_samples", "steps"})


def round_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The scalars of one ``metrics.jsonl`` line, keyed by their TensorBoard tag."""
    out: dict[str, float] = {}
    if record.get("train_loss") is not None:
        out["train/loss"] = float(record["train_loss"])
    out["train/lr"] = float(record["lr"])
    for split in ("val", "test"):
        for key, value in record[split].items():
            if isinstance(value, list):
                out.update({f"{split}/{key}/{c}": float(v) for c, v in enumerate(value)})
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f"{split}/{key}"] = float(value)
    out.update(_client_means(record["client_logs"]))
    return {tag: value for tag, value in out.items() if math.isfinite(value)}


def _client_means(logs: list[dict[str, Any]]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for log in logs:
        for key, value in log.items():
            if key in _NOT_MEASURES or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)):
                values.setdefault(f"clients/{key}", []).append(float(value))
            elif isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
                for c, v in enumerate(value):
                    values.setdefault(f"clients/{key}/{c}", []).append(float(v))
    return {tag: sum(vs) / len(vs) for tag, vs in values.items()}


class TensorBoardLog:
    """Writes the scalars of each round to ``run_dir/tensorboard``.

    ``resume_rounds``: the rounds kept from an interrupted run; events of later rounds
    are purged (TensorBoard drops them when it reads the new file).
    """

    def __init__(self, run_dir: Path, resume_rounds: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "logging.tensorboard = true needs the tensorboard package: "
                "pip install 'fedcmi[tensorboard]' (or set logging.tensorboard = false)"
            ) from None
        purge = None if resume_rounds is None else resume_rounds + 1
        self._writer = SummaryWriter(str(run_dir / FOLDER), purge_step=purge)

    def log(self, record: dict[str, Any]) -> None:
        step = int(record["round"])
        for tag, value in round_scalars(record).items():
            self._writer.add_scalar(tag, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
