"""FedAvg with OGM-GE in each client's local training.

OGM-GE: On-the-fly Gradient Modulation with Generalisation Enhancement (Peng, Wei, Deng,
Wang, Hu; "Balanced Multimodal Learning via On-the-fly Gradient Modulation", CVPR 2022),
applied inside local training of the late-fusion model, FedAvg on the server.

Per batch, with the concat fusion head g(u) = W u + b split into halves
``out_a = f_a W_a^T + b/2`` and ``out_v = f_v W_v^T + b/2``, the paper's Eq. (10)::

    s_m = sum_i softmax(out_m,i)[y_i],     rho = s_a / s_v
    rho >= 1: k_a = 1 - tanh(alpha * rho),       k_v = 1
    rho < 1:  k_v = 1 - tanh(alpha * (1/rho)),   k_a = 1

as the official code branches (github.com/GeWu-Lab/OGM-GE_CVPR2022, ``main.py`` lines
105-124: the visual encoder is modulated when ``ratio_v = 1/rho > 1``, the audio one
otherwise, so at rho = 1 exactly audio is slowed; the paper's Eq. (10) modulates neither
there). After backward, every encoder weight tensor of both modalities gets
``grad <- k_m grad + N(0, (std(grad) + 1e-8)^2)``: the GE noise, with the std of the
unscaled gradient, is added to both encoders at every step, as in the official code.
The official encoders are ResNets, whose modulated tensors are their conv kernels (the
4-D parameters); here every encoder weight of at least 2 dimensions is modulated (conv
kernels of any dimension and linear weights, not biases or BatchNorm), so the same rule
applies to the Conv1d and MLP encoders.

Knobs: ``alpha = 0.8``; ``noise = false`` gives plain OGM; ``modulation_ends`` is the
last round (counted from 1) in which multimodal clients modulate, plain FedAvg training
after it (the official code's ``modulation_ends``; None = every round);
``aggregation = "all" | "modality-aware"`` as for FedAvg. Unimodal clients have
nothing to balance and train plain CE with zero-fill. With per-sample missing
modalities the missing inputs' features are zero-filled and rho uses only the samples
holding both inputs (no modulation in a batch without any).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.algorithms.fedavg import BalancedFedAvg
from fedcmi.bounds import NonNegative
from fedcmi.core.dominance import dominance_ratio
from fedcmi.core.training import Batch, ClientData, LocalResult, RoundContext, train_local
from fedcmi.models import LateFusionModel
from fedcmi.models.base import fill_missing
from fedcmi.registry import ALGORITHMS

GE_NOISE_EPS = 1e-8  # added to the noise std, as in the official code


def ogm_coefficients(rho: float, alpha: float) -> tuple[float, float]:
    """(k_a, k_v): the audio encoder slowed by 1 - tanh(alpha rho) when rho >= 1, the
    visual one by 1 - tanh(alpha / rho) when rho < 1 (the official branch)."""
    if rho < 1:
        return 1.0, 1.0 - math.tanh(alpha / rho)
    return 1.0 - math.tanh(alpha * rho), 1.0


def fusion_halves(model: LateFusionModel, f_a: Tensor, f_v: Tensor) -> tuple[Tensor, Tensor]:
    """Each modality's share of the concat fusion logits, the bias split evenly."""
    d = model.feature_dim
    weight, bias = model.fusion.weight, model.fusion.bias
    return f_a @ weight[:, :d].T + bias / 2, f_v @ weight[:, d:].T + bias / 2


def modulate_gradients(
    params: list[nn.Parameter], coeff: float, noise: bool, generator: torch.Generator | None
) -> None:
    """grad <- coeff * grad (+ N(0, (std + 1e-8)^2) noise, std of the unscaled gradient)."""
    for p in params:
        if p.grad is None:
            continue
        std = p.grad.std() + GE_NOISE_EPS if noise and p.grad.numel() > 1 else None
        p.grad.mul_(coeff)
        if std is not None:
            p.grad.add_(torch.randn(p.grad.shape, generator=generator, device=p.grad.device) * std)


def encoder_weights(encoder: nn.Module) -> list[nn.Parameter]:
    return [p for p in encoder.parameters() if p.dim() >= 2]


def device_generator(ctx: RoundContext, device: torch.device) -> torch.Generator:
    seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator))
    return torch.Generator(device=device).manual_seed(seed)


@ALGORITHMS.register("fedavg-ogm")
class FedAvgOGM(BalancedFedAvg):
    @dataclass
    class Params(BalancedFedAvg.Params):
        alpha: NonNegative = 0.8
        """Modulation strength: the dominant encoder's gradients times
        1 - tanh(alpha rho) (rho >= 1) or 1 - tanh(alpha / rho) (rho < 1)."""
        noise: bool = True
        """Generalisation enhancement: Gaussian noise on both encoders' gradients."""

    params: Params

    def train_multimodal(
        self, model: LateFusionModel, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        generator = device_generator(ctx, client.y.device)
        weights = {"a": encoder_weights(model.enc_a), "v": encoder_weights(model.enc_v)}
        coeffs = {"a": 1.0, "v": 1.0}
        a_dominant = 0

        def loss_fn(batch: Batch) -> Tensor:
            nonlocal a_dominant
            f_a = fill_missing(model.enc_a(batch.x_a), None, batch.mask_a)
            f_v = fill_missing(model.enc_v(batch.x_v), None, batch.mask_v)
            both = batch.both_present()
            coeffs.update(a=1.0, v=1.0)
            if both is None or bool(both.any()):
                with torch.no_grad():
                    out_a, out_v = fusion_halves(model, f_a, f_v)
                    rho = float(dominance_ratio(out_a, out_v, batch.y, both))
                coeffs["a"], coeffs["v"] = ogm_coefficients(rho, self.params.alpha)
                a_dominant += rho > 1
            return F.cross_entropy(model.fuse(f_a, f_v), batch.y)

        def after_backward() -> None:
            for side in ("a", "v"):
                modulate_gradients(weights[side], coeffs[side], self.params.noise, generator)

        stats = train_local(model, client, ctx, loss_fn, after_backward=after_backward)
        stats.logs["a_dominant_frac"] = a_dominant / max(stats.logs["steps"], 1)
        return stats
