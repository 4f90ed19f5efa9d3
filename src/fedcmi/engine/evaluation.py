"""Evaluation of a global model on a central split (ALGORITHM.md, Evaluation)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fedcmi.data.base import Split
from fedcmi.models.base import MultimodalModel


@torch.no_grad()
def collect_logits(
    model: MultimodalModel, split: Split, batch_size: int
) -> dict[str, torch.Tensor]:
    model.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(split), batch_size):
        sl = slice(start, start + batch_size)
        for key, logits in model.evaluation_logits(split.x_a[sl], split.x_v[sl]).items():
            parts.setdefault(key, []).append(logits.float())
    return {key: torch.cat(chunks) for key, chunks in parts.items()}


def per_class_accuracy(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy of each class; NaN for a class absent from ``y``."""
    correct = torch.bincount(y[pred == y], minlength=num_classes).double()
    total = torch.bincount(y, minlength=num_classes).double()
    return (correct / total).tolist()  # 0/0 -> nan marks absent classes


def evaluate(
    model: MultimodalModel, split: Split, batch_size: int, num_classes: int
) -> dict[str, Any]:
    """Accuracies of every evaluation head the model has, per-class fused accuracy and
    the imbalance ratio (mean true-class probability of modality a over that of v, from
    the model's per-modality predictions)."""
    logits = collect_logits(model, split, batch_size)
    y = split.y
    out: dict[str, Any] = {
        key: float((value.argmax(1) == y).double().mean()) for key, value in logits.items()
    }
    out["per_class_acc"] = per_class_accuracy(logits["acc"].argmax(1), y, num_classes)
    if model.imbalance_keys is None:  # a single-modality model has no ratio
        return out
    key_a, key_v = model.imbalance_keys
    p_a = F.softmax(logits[key_a], 1).gather(1, y[:, None]).mean()
    p_v = F.softmax(logits[key_v], 1).gather(1, y[:, None]).mean()
    out["imbalance_ratio"] = float(p_a / p_v.clamp_min(1e-12))
    return out
