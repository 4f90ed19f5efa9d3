"""FedAvg with AGM in each client's local training.

AGM: Adaptive Gradient Modulation (Li, Li, Hu, Yang, Shi, Zhao; "Boosting Multi-modal
Model Performance with Adaptive Gradient Modulation", ICCV 2023), applied inside local
training of the late-fusion model like OGM-GE and PMR, FedAvg on the server.

Per batch, the mono-modal responses are the two-modality Shapley form of the official
code, with f(a, 0) the model's output when v is absent (zero-filled)::

    o_a = (f(a, v) - f(0, v) + f(a, 0)) / 2,    o_v = (f(a, v) - f(a, 0) + f(0, v)) / 2

For the late-fusion head g(u) = W u + b with zero-fill this is exactly
o_a = W_a f_a + b/2 and o_v = W_v f_v + b/2 (OGM-GE's fusion halves), so no extra forward
passes are needed. Then, with M = 2 modalities::

    s_m     = mean_i -log max(softmax(o_m,i)[y_i], 1e-8)           (mono-modal score)
    r_m     = exp(M/(M-1) (s_m - mean_m' s_m'))                     (discrepancy ratio)
    eta_m   = exp(M/(M-1) (S_m - mean_m' S_m'))                     (from running scores)
    kappa_m = exp(alpha min(eta_m - r_m, 7))                        (modulation coefficient)
    S_m    <- S_m (t - 1)/t + s_m / t                               (t: steps so far)

and after backward every encoder parameter of modality m with more than one dimension
(weights, not biases or BatchNorm scales) has its gradient multiplied by kappa_m. As in
the official code, when any entry of the fusion head's weight gradient leaves
[-grad_clip, grad_clip] all gradients are clipped to norm ``grad_clip``.

The running scores S_m and the step count t carry over between a client's rounds (its
kept state; the centralised method accumulates them over all of training). Knobs:
``alpha = 0.1`` (the official default); ``grad_clip = 5.0`` (None: no clipping);
``modulation_ends`` and ``aggregation`` as for OGM-GE. Per-sample missing modalities:
scores use only the samples holding both inputs (kappa = 1 and no score update in a
batch without any).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.algorithms.fedavg import BalancedFedAvg
from fedcmi.algorithms.fedavg_ogm import fusion_halves
from fedcmi.core.training import Batch, ClientData, RoundContext, rows, train_local
from fedcmi.models import LateFusionModel
from fedcmi.models.base import fill_missing
from fedcmi.registry import ALGORITHMS

SCORE_FLOOR = 1e-8  # the smallest true-class probability a score takes the log of
EXPONENT_CAP = 7.0  # kappa = exp(alpha * min(eta - r, 7)), as in the official code


def mono_modal_score(logits: Tensor, labels: Tensor) -> float:
    """s = mean_i -log max(softmax(logits_i)[y_i], 1e-8)."""
    p = F.softmax(logits.float(), dim=1).gather(1, labels[:, None])[:, 0]
    return float(-torch.log(p.clamp_min(SCORE_FLOOR)).mean())


def agm_coefficients(
    scores: dict[str, float], running: dict[str, float], alpha: float
) -> dict[str, float]:
    """kappa_m = exp(alpha min(eta_m - r_m, 7)) for every modality m."""
    n = len(scores)
    mean_now = sum(scores.values()) / n
    mean_run = sum(running.values()) / n
    out = {}
    for m in scores:
        ratio = math.exp(n / (n - 1) * (scores[m] - mean_now))
        target = math.exp(n / (n - 1) * (running[m] - mean_run))
        out[m] = math.exp(alpha * min(target - ratio, EXPONENT_CAP))
    return out


def modality_weights(encoder: nn.Module) -> list[nn.Parameter]:
    return [p for p in encoder.parameters() if p.dim() != 1]


@ALGORITHMS.register("fedavg-agm")
class FedAvgAGM(BalancedFedAvg):
    @dataclass
    class Params(BalancedFedAvg.Params):
        alpha: float = 0.1
        """Modulation strength: kappa_m = exp(alpha min(eta_m - r_m, 7))."""
        grad_clip: float | None = 5.0
        """Gradient-norm clip after modulation, as the official code (absent: none)."""

    params: Params

    def train_multimodal(
        self, model: LateFusionModel, client: ClientData, ctx: RoundContext
    ) -> dict[str, Any]:
        kept = ctx.client_state.get("agm.running")
        running = {"a": 0.0, "v": 0.0} if kept is None else dict(zip("av", kept[:2].tolist()))
        step = 0 if kept is None else int(kept[2])
        coeffs = {"a": 1.0, "v": 1.0}
        weights = {"a": modality_weights(model.enc_a), "v": modality_weights(model.enc_v)}
        a_dominant = 0

        def loss_fn(batch: Batch) -> Tensor:
            nonlocal step, running, a_dominant
            f_a = fill_missing(model.enc_a(batch.x_a), None, batch.mask_a)
            f_v = fill_missing(model.enc_v(batch.x_v), None, batch.mask_v)
            both = batch.both_present()
            coeffs.update(a=1.0, v=1.0)
            if both is None or bool(both.any()):
                with torch.no_grad():
                    o_a, o_v = fusion_halves(model, f_a, f_v)
                    y = rows(batch.y, both)
                    scores = {
                        "a": mono_modal_score(rows(o_a, both), y),
                        "v": mono_modal_score(rows(o_v, both), y),
                    }
                step += 1
                coeffs.update(agm_coefficients(scores, running, self.params.alpha))
                running = {m: running[m] * (step - 1) / step + scores[m] / step for m in running}
                a_dominant += scores["a"] < scores["v"]
            return F.cross_entropy(model.fuse(f_a, f_v), batch.y)

        def after_backward() -> None:
            for side in ("a", "v"):
                for p in weights[side]:
                    if p.grad is not None:
                        p.grad.mul_(coeffs[side])
            self._clip(model)

        stats = train_local(model, client, ctx, loss_fn, after_backward=after_backward)
        ctx.new_client_state = {
            "agm.running": torch.tensor(
                [running["a"], running["v"], float(step)], dtype=torch.float64
            )
        }
        stats["a_dominant_frac"] = a_dominant / max(stats["steps"], 1)
        return stats

    def _clip(self, model: LateFusionModel) -> None:
        limit = self.params.grad_clip
        grad = model.fusion.weight.grad
        if limit is None or grad is None:
            return
        if float(grad.max()) > limit or float(grad.min()) < -limit:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=limit)
