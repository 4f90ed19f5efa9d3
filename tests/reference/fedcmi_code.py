"""FedCMI's distillation as the authors' reference code computes it, transcribed loop by
loop for parity checks (not used by the package).

Source: github.com/fanyunfeng-bit/Balanced-Modality-Selection-in-MFL, commit 14c762c,
``client/FedCMI.py``: class-wise temperatures lines 122-149 (per-class mean true-class
probabilities from ``get_average_probs``, lines 286-318); the cross-modal distillation
with ``class_wise_t`` lines 202-213 (audio dominant: teacher ``g_av_out``, student
``va_out``) and 228-239 (visual dominant, mirrored); ``loss += coef2 * loss_rd`` line 246.
The reference takes ``torch.log`` of a softmax, where this package takes ``log_softmax``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def reference_temperatures(
    probs_audio: list[float], probs_visual: list[float], coef3: float = 2.0
) -> list[float]:
    """Lines 124-148: ``probs_*[c]`` are the class means of the true-class probability
    (0 for a class the client does not hold, which the loop skips)."""
    n = len(probs_audio)
    pa = [torch.tensor(float(p)) for p in probs_audio]
    pv = [torch.tensor(float(p)) for p in probs_visual]
    average = 0.0
    zero_class = 0
    for c in range(n):
        if pv[c] == 0:
            zero_class += 1
        else:
            average += pa[c] / pv[c]
    average /= n - zero_class
    temp = [1.0] * n
    for c in range(n):
        if pv[c] == 0:
            continue
        if average > 1:
            ratio = pa[c] / pv[c]
            temp[c] = float(1 / (1 + coef3 * torch.log(ratio / average))) if ratio > average else 1
        else:
            ratio = pv[c] / pa[c]
            inverse = 1 / average
            temp[c] = float(1 / (1 + coef3 * torch.log(ratio / inverse))) if ratio > inverse else 1
    return temp


def reference_distillation(
    teacher_logits: Tensor, student_logits: Tensor, temps: list[float], labels: Tensor
) -> Tensor:
    """Lines 203-213 (and 229-239 mirrored): per sample, softmax of teacher and student
    logits divided by the temperature of its label, then -sum q * log(p), batch mean."""
    q = torch.zeros_like(teacher_logits)
    p = torch.zeros_like(student_logits)
    for i in range(labels.shape[0]):
        q[i] = F.softmax(teacher_logits[i] / temps[labels[i]], dim=0)
        p[i] = F.softmax(student_logits[i] / temps[labels[i]], dim=0)
    return -torch.sum(q.detach() * torch.log(p), dim=1).mean()
