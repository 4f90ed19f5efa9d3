"""Evaluation of a global model on a central split (FedCMI's, docs/algorithm.md)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fedcmi.config import EvalConfig
from fedcmi.core.aggregation import State
from fedcmi.core.dominance import floored_ratio, true_class_probability
from fedcmi.core.probe import encoder_probe
from fedcmi.data.base import MultimodalData, Split
from fedcmi.models.base import MultimodalModel


@dataclass
class MissingInputs:
    """Fixed test-time masks (True = present) of a split's a and v inputs."""

    present_a: torch.Tensor
    present_v: torch.Tensor

    @classmethod
    def draw(cls, samples: int, cfg: EvalConfig) -> MissingInputs:
        """Each input absent with its ``eval.missing_rate_*``, independently, from
        ``eval.missing_seed`` (the same masks for every method and run seed)."""
        rng = np.random.default_rng(cfg.missing_seed)
        present_a = rng.random(samples) >= cfg.missing_rate_a
        present_v = rng.random(samples) >= cfg.missing_rate_v
        return cls(torch.from_numpy(present_a), torch.from_numpy(present_v))

    def apply(self, split: Split) -> Split:
        """``split`` with the absent inputs' rows zeroed (no model sees what is missing)."""

        def zeroed(x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
            keep = present.to(x.device).view(-1, *([1] * (x.dim() - 1)))
            return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))

        x_a, x_v = zeroed(split.x_a, self.present_a), zeroed(split.x_v, self.present_v)
        return Split(x_a, x_v, split.y, split.keys)

    def counts(self) -> dict[str, float]:
        """The realised fractions: a missing, v missing, both missing (such a sample is
        still evaluated: every head then sees only the model's fill)."""
        a, v = ~self.present_a, ~self.present_v
        return {
            "missing_a": float(a.double().mean()),
            "missing_v": float(v.double().mean()),
            "missing_both": float((a & v).double().mean()),
        }


@torch.no_grad()
def collect_logits(
    model: MultimodalModel, split: Split, batch_size: int, missing: MissingInputs | None = None
) -> dict[str, torch.Tensor]:
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    device = split.y.device
    for start in range(0, len(split), batch_size):
        sl = slice(start, start + batch_size)
        if missing is None:  # the masks only where there are any: a model may not take them
            logits_by_key = model.evaluation_logits(split.x_a[sl], split.x_v[sl])
        else:
            masks = (missing.present_a[sl].to(device), missing.present_v[sl].to(device))
            logits_by_key = model.evaluation_logits(split.x_a[sl], split.x_v[sl], *masks)
        for key, logits in logits_by_key.items():
            parts.setdefault(key, []).append(logits.float())
    return {key: torch.cat(chunks) for key, chunks in parts.items()}


def per_class_accuracy(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy of each class; NaN for a class absent from ``y``."""
    correct = torch.bincount(y[pred == y], minlength=num_classes).double()
    total = torch.bincount(y, minlength=num_classes).double()
    return (correct / total).tolist()  # 0/0 -> nan marks absent classes


def class_fairness(per_class: list[float]) -> dict[str, float]:
    """``worst_class_acc`` (the lowest fused accuracy of a class present in the split)
    and ``class_acc_std`` (the population std of the present classes' accuracies): the
    fairness across classes that FedCMI's class-wise temperatures aim at."""
    present = [a for a in per_class if a == a]  # NaN marks an absent class
    if not present:
        return {}
    return {"worst_class_acc": min(present), "class_acc_std": statistics.pstdev(present)}


def evaluate(
    model: MultimodalModel,
    split: Split,
    batch_size: int,
    num_classes: int,
    missing: MissingInputs | None = None,
) -> dict[str, Any]:
    """Accuracies of every evaluation head the model has, per-class fused accuracy with
    its :func:`class_fairness` figures, and the imbalance ratio (mean true-class
    probability of modality a over that of v, from the model's per-modality
    predictions); with ``missing``, on the split with those inputs absent (``split``
    must already be :meth:`MissingInputs.apply`'d)."""
    logits = collect_logits(model, split, batch_size, missing)
    y = split.y
    out: dict[str, Any] = {
        key: float((value.argmax(1) == y).double().mean()) for key, value in logits.items()
    }
    out["per_class_acc"] = per_class_accuracy(logits["acc"].argmax(1), y, num_classes)
    out.update(class_fairness(out["per_class_acc"]))
    finite = torch.stack([torch.isfinite(value).all(1) for value in logits.values()])
    nonfinite = int((~finite.all(0)).sum())
    if nonfinite:  # such rows count as class 0: say so
        out["nonfinite_outputs"] = nonfinite
    if model.imbalance_keys is None:  # a single-modality model has no ratio
        return out
    key_a, key_v = model.imbalance_keys
    p_a = true_class_probability(logits[key_a], y).mean()
    p_v = true_class_probability(logits[key_v], y).mean()
    out["imbalance_ratio"] = float(floored_ratio(p_a, p_v))
    return out


class Evaluator:
    """Central evaluation of a global state on the val and test splits."""

    def __init__(
        self, cfg: EvalConfig, data: MultimodalData, model: MultimodalModel, device: torch.device
    ) -> None:
        self.batch_size = cfg.batch_size
        self.num_classes = data.num_classes
        self.model = model
        self.train = data.train  # stays where it is; the probes move it batch by batch
        self.val = data.val.to(device)
        self.test = data.test.to(device)
        # Test-time missing inputs (eval.missing_rate_*): fixed masks, drawn once.
        self.missing: MissingInputs | None = None
        if cfg.missing_rate_a or cfg.missing_rate_v:
            self.missing = MissingInputs.draw(len(self.test), cfg)
            self.test_missing = self.missing.apply(self.test)

    def __call__(self, state: State) -> dict[str, Any]:
        self.model.load_state_dict(state)
        bs, c = self.batch_size, self.num_classes
        out = {
            "val": evaluate(self.model, self.val, bs, c),
            "test": evaluate(self.model, self.test, bs, c),
        }
        if self.missing is not None:
            masked = evaluate(self.model, self.test_missing, bs, c, self.missing)
            out["test_missing"] = {**masked, **self.missing.counts()}
        return out

    def probes(self, state: State) -> dict[str, float | None]:
        """``probe_a``, ``probe_v``: linear-probe test accuracy of each encoder of
        ``state`` (fit on the whole training pool, both modalities of every sample, in
        whatever way the federation split it); None where the model has no such encoder.
        """
        self.model.load_state_dict(state)
        out: dict[str, float | None] = {}
        for side in "av":
            encoder = getattr(self.model, f"enc_{side}", None)
            out[f"probe_{side}"] = (
                None
                if encoder is None
                else encoder_probe(
                    encoder,
                    (getattr(self.train, f"x_{side}"), self.train.y),
                    (getattr(self.test, f"x_{side}"), self.test.y),
                    self.num_classes,
                    self.batch_size,
                )
            )
        return out
