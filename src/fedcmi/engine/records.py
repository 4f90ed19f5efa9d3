"""The typed records of a run: :class:`RoundRecord` (one line of ``metrics.jsonl``) and
:class:`Summary` (``summary.json``). Plain data, no I/O: the round builds records and
:mod:`fedcmi.engine.run_folder` writes and reads them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RoundRecord:
    """One line of ``metrics.jsonl``."""

    round: int  # 1-based
    lr: float
    clients: list[int]
    train_loss: float | None
    val: dict[str, Any]
    test: dict[str, Any]
    client_logs: list[dict[str, Any]]
    # Present only in rounds where a client failed: each rejection and the attempts made.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1
    # Power-of-choice selection only: the local loss of each candidate, by client id.
    candidate_losses: dict[str, float] | None = None
    # Test-time missing inputs only (eval.missing_rate_*): every head on the masked test set.
    test_missing: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if not self.rejected:
            del out["rejected"], out["attempts"]
        for optional in ("candidate_losses", "test_missing"):
            if out[optional] is None:
                del out[optional]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RoundRecord:
        return cls(**raw)

    def evaluation(self) -> dict[str, Any]:
        """What the summary's figures need: round, val and test metrics (and the masked
        test set's, when evaluated)."""
        out = {"round": self.round, "val": self.val, "test": self.test}
        if self.test_missing is not None:
            out["test_missing"] = self.test_missing
        return out

    def loss_terms(self) -> dict[str, float]:
        """Each local loss term (``loss_<term>`` of the client logs, the proximal term
        included) averaged over the clients that report it, in first-seen order."""
        values: dict[str, list[float]] = {}
        for log in self.client_logs:
            for key, value in log.items():
                if key.startswith("loss_"):
                    values.setdefault(key.removeprefix("loss_"), []).append(float(value))
        return {term: sum(vs) / len(vs) for term, vs in values.items()}

    def max_grad_norm(self) -> float | None:
        """The largest local gradient norm of any client's step this round."""
        norms = [float(log["grad_norm_max"]) for log in self.client_logs if "grad_norm_max" in log]
        return max(norms) if norms else None


@dataclass
class Summary:
    """``summary.json``: what the run was and the figures it reports."""

    fedcmi_version: str
    engine: str
    algorithm: str
    dataset: str
    seed: int
    rounds: int
    device: str
    selection: str
    best_round: int
    best: dict[str, dict[str, float]]
    best_test_per_class_acc: list[float]
    last: dict[str, dict[str, float]]
    last_test_per_class_acc: list[float]
    last_rounds: int
    last_mean: dict[str, dict[str, float]]
    val_gain: float | None
    probe_a: float | None
    probe_v: float | None
    setup_seconds: float
    train_seconds: float
    seconds_per_round: float
    wall_seconds: float | None = None  # set by a sweep: the cell's whole wall time
    precision: str | None = None  # what engine.precision resolved to on this device
    precision_reason: str | None = None
    # Test-time missing inputs only: the masked test set's best, last and last-mean figures.
    test_missing: dict[str, dict[str, float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for optional in ("wall_seconds", "precision", "precision_reason", "test_missing"):
            if out[optional] is None:
                del out[optional]
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Summary:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def probes(self) -> dict[str, float]:
        """The linear probes the run has (a unimodal model has one)."""
        found = {"probe_a": self.probe_a, "probe_v": self.probe_v}
        return {k: v for k, v in found.items() if v is not None}

    def rows(self, shown: tuple[str, ...] | None = None) -> tuple[list[str], list[list[Any]]]:
        """The test metrics as (keys, rows): the last-rounds mean (the primary figure),
        the best smoothed-val round and the last round; ``shown`` picks and orders the
        metrics (default: all)."""
        test = self.last_mean["test"]
        keys = [k for k in (shown or test) if k in test]
        parts = (
            (f"mean of last {self.last_rounds}", self.last_mean),
            (f"best val (round {self.best_round})", self.best),
            (f"last (round {self.rounds})", self.last),
        )
        return keys, [[label, *(part["test"].get(k) for k in keys)] for label, part in parts]
