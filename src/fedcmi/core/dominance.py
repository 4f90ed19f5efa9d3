"""Which modality dominates: ratios of true-class probabilities, floored once.

FedCMI's per-batch dominance decision and class-wise temperatures, OGM-GE's and PMR's
modulation coefficients and the reported ``imbalance_ratio`` all compare how much
probability two modalities give the true class. Every one of them divides through
:func:`floored_ratio`, so a softmax that underflows to 0 gives a large finite ratio, not
inf or NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

PROB_FLOOR = 1e-12  # the smallest probability a ratio divides by


def true_class_probability(logits: Tensor, labels: Tensor) -> Tensor:
    """p_i = softmax(logits_i)[y_i] for each sample i (shape ``(n,)``)."""
    return F.softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]


def floored_ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / max(denominator, 1e-12), elementwise."""
    return numerator / denominator.clamp_min(PROB_FLOOR)


def dominance_ratio(
    logits_a: Tensor, logits_v: Tensor, labels: Tensor, rows: Tensor | None = None
) -> Tensor:
    """rho = sum_i p(z_a,i)[y_i] / max(sum_i p(z_v,i)[y_i], 1e-12), no gradient.

    The batch dominance ratio of FedCMI (self-projector heads), OGM-GE (the fusion
    head's halves) and PMR (prototype logits): rho > 1 means modality a dominates.
    ``rows`` (bool) restricts the sums to the samples holding both inputs; with none,
    rho = 1 (no evidence either way).
    """
    with torch.no_grad():
        p_a = true_class_probability(logits_a, labels)
        p_v = true_class_probability(logits_v, labels)
        if rows is None:
            return floored_ratio(p_a.sum(), p_v.sum())
        keep = rows.to(p_a.dtype)
        ratio = floored_ratio((p_a * keep).sum(), (p_v * keep).sum())
        return torch.where(keep.sum() > 0, ratio, torch.ones_like(ratio))
