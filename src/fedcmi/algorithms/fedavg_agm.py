"""FedAvg with AGM in each client's local training.

AGM: Adaptive Gradient Modulation (Li, Li, Hu, Yang, Shi, Zhao; "Boosting Multi-modal
Model Performance with Adaptive Gradient Modulation", ICCV 2023), applied inside local
training of the late-fusion model like OGM-GE and PMR, FedAvg on the server. It follows
the official CREMA-D script (github.com/lihong2303/AGM_ICCV2023, ``run/CREMAD_main.py``
and ``model/CREMAD_net.py``); ``tests/reference/test_agm.py`` runs a transcription of it.

Per batch the fused logits ``t = f(a, v)`` and the two padded passes ``f(a, 0)`` and
``f(0, v)`` give the mono-modal responses (the two-modality Shapley form)::

    o_a = (t - f(0, v) + f(a, 0)) / 2,      o_v = (t - f(a, 0) + f(0, v)) / 2

and the model is trained on ``CE(o_a + o_v, y)`` (``o_a + o_v = t`` in value). With
``mono_modal = "input"`` (the official form) a padded pass zeroes that modality's *input*
and runs the whole model in eval mode (BatchNorm on its running statistics), so each
batch costs four extra encoder passes; ``"feature"`` zeroes the *feature* instead, which
for the concat head ``W [f_a; f_v] + b`` is exactly ``o_a = W_a f_a + b/2`` and costs
nothing extra. Then, with M = 2 modalities and s_m the mono-modal loss::

    s_m     = mean_i -log max(softmax(o_m,i)[y_i], 1e-8)           (mono-modal score)
    r_m     = exp(M/(M-1) (mean_m' s_m' - s_m))                     (discrepancy ratio)
    eta_m   = exp(M/(M-1) (mean_m' S_m' - S_m))                     (from running scores)
    kappa_m = exp(alpha min(eta_m - r_m, cap))                      (modulation coefficient)
    S_m    <- S_m (t - 1)/t + s_m / t                               (t: steps so far)

(for M = 2: ``r_a = exp(s_v - s_a)``, the official ``ratio_a``). A modality whose loss
falls faster than its running average (r_m > eta_m) is damped, one that lags is boosted.
The backward pass multiplies the gradient flowing out of ``o_m`` by kappa_m (the official
backward hook), so the whole of branch m, its share of the fusion head included, is
scaled. When any entry of the fusion head's weight gradient leaves [-grad_clip,
grad_clip], all gradients are clipped to norm ``grad_clip``.

The running scores S_m and the step count t carry over between a client's rounds (its
kept state; the centralised method accumulates them over all of training). Knobs, the
CREMA-D script's defaults: ``alpha = 1.0``, ``exponent_cap = 10`` (the URFunny script uses
7), ``grad_clip = 1.0`` (None: no clipping); ``modulation_ends`` and ``aggregation`` as for
OGM-GE. Per-sample missing modalities: a missing input's feature is zero-filled in every
pass; scores use only the samples holding both inputs (kappa = 1 and no score update in a
batch without any). The official forward also computes ``f(0, 0)``, which no loss uses;
it is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.algorithms.fedavg import BalancedFedAvg
from fedcmi.algorithms.fedavg_ogm import fusion_halves
from fedcmi.bounds import NonNegative, Positive
from fedcmi.core.training import Batch, ClientData, LocalResult, RoundContext, rows, train_local
from fedcmi.models import LateFusionModel
from fedcmi.models.base import fill_missing
from fedcmi.registry import ALGORITHMS

SCORE_FLOOR = 1e-8  # the smallest true-class probability a score takes the log of


def mono_modal_score(logits: Tensor, labels: Tensor) -> float:
    """s = mean_i -log max(softmax(logits_i)[y_i], 1e-8)."""
    p = F.softmax(logits.float(), dim=1).gather(1, labels[:, None])[:, 0]
    return float(-torch.log(p.clamp_min(SCORE_FLOOR)).mean())


def agm_coefficients(
    scores: dict[str, float], running: dict[str, float], alpha: float, cap: float = 10.0
) -> dict[str, float]:
    """kappa_m = exp(alpha min(eta_m - r_m, cap)) for every modality m, with
    r_m = exp(M/(M-1) (mean s - s_m)) and eta_m the same of the running scores."""
    n = len(scores)
    mean_now = sum(scores.values()) / n
    mean_run = sum(running.values()) / n
    out = {}
    for m in scores:
        ratio = math.exp(n / (n - 1) * (mean_now - scores[m]))
        target = math.exp(n / (n - 1) * (mean_run - running[m]))
        out[m] = math.exp(alpha * min(target - ratio, cap))
    return out


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the backward multiplies the incoming gradient by ``scale``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    return x if scale == 1.0 else _ScaleGrad.apply(x, scale)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode inside, each back in its own mode after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def padded_logits(model: LateFusionModel, batch: Batch) -> tuple[Tensor, Tensor]:
    """``f(a, 0)`` and ``f(0, v)`` with the zeroed modality's input, in eval mode."""
    x_a, x_v = batch.x_a, batch.x_v
    assert x_a is not None and x_v is not None
    with eval_mode(model):
        f_a = fill_missing(model.enc_a(x_a), None, batch.mask_a)
        f_v = fill_missing(model.enc_v(x_v), None, batch.mask_v)
        pad_v = model.fuse(f_a, model.enc_v(torch.zeros_like(x_v)))
        pad_a = model.fuse(model.enc_a(torch.zeros_like(x_a)), f_v)
    return pad_v, pad_a


@ALGORITHMS.register("fedavg-agm")
class FedAvgAGM(BalancedFedAvg):
    @dataclass
    class Params(BalancedFedAvg.Params):
        alpha: NonNegative = 1.0
        """Modulation strength: kappa_m = exp(alpha min(eta_m - r_m, cap))."""
        exponent_cap: Positive = 10.0
        """The cap on eta_m - r_m (official CREMA-D script 10, URFunny script 7)."""
        grad_clip: Positive | None = 1.0
        """Clip threshold on the fusion weight gradient and the norm clipped to, as the
        official CREMA-D script (absent: no clipping)."""
        mono_modal: Literal["input", "feature"] = "input"
        """How a modality is removed for the mono-modal responses: its input zeroed and
        the model in eval mode (official), or its feature zeroed (no extra passes)."""

    params: Params

    def mono_modal_logits(
        self, model: LateFusionModel, batch: Batch, f_a: Tensor, f_v: Tensor, fused: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(o_a, o_v), each half of the Shapley split of the fused logits."""
        if self.params.mono_modal == "feature":
            return fusion_halves(model, f_a, f_v)
        pad_v, pad_a = padded_logits(model, batch)
        return 0.5 * (fused - pad_a + pad_v), 0.5 * (fused - pad_v + pad_a)

    def train_multimodal(
        self, model: LateFusionModel, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        kept = ctx.client_state.get("agm.running")
        running = {"a": 0.0, "v": 0.0} if kept is None else dict(zip("av", kept[:2].tolist()))
        step = 0 if kept is None else int(kept[2])
        a_dominant = 0

        def loss_fn(batch: Batch) -> Tensor:
            nonlocal step, running, a_dominant
            f_a = fill_missing(model.enc_a(batch.x_a), None, batch.mask_a)
            f_v = fill_missing(model.enc_v(batch.x_v), None, batch.mask_v)
            o_a, o_v = self.mono_modal_logits(model, batch, f_a, f_v, model.fuse(f_a, f_v))
            coeffs = {"a": 1.0, "v": 1.0}
            both = batch.both_present()
            if both is None or bool(both.any()):
                y = rows(batch.y, both)
                scores = {
                    "a": mono_modal_score(rows(o_a.detach(), both), y),
                    "v": mono_modal_score(rows(o_v.detach(), both), y),
                }
                step += 1
                coeffs = agm_coefficients(
                    scores, running, self.params.alpha, self.params.exponent_cap
                )
                running = {m: running[m] * (step - 1) / step + scores[m] / step for m in running}
                a_dominant += scores["a"] < scores["v"]
            out = scale_grad(o_a, coeffs["a"]) + scale_grad(o_v, coeffs["v"])
            return F.cross_entropy(out, batch.y)

        stats = train_local(model, client, ctx, loss_fn, after_backward=lambda: self._clip(model))
        stats.kept = {
            "agm.running": torch.tensor(
                [running["a"], running["v"], float(step)], dtype=torch.float64
            )
        }
        stats.logs["a_dominant_frac"] = a_dominant / max(stats.logs["steps"], 1)
        return stats

    def _clip(self, model: LateFusionModel) -> None:
        limit = self.params.grad_clip
        grad = model.fusion.weight.grad
        if limit is None or grad is None:
            return
        if float(grad.max()) > limit or float(grad.min()) < -limit:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=limit)
