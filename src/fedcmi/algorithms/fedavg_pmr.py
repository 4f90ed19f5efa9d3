"""FedAvg with PMR in each client's local training.

PMR: Prototypical Modal Rebalance (Fan, Xu, Wang, Zhu, Wang; CVPR 2023), applied inside
local training of the late-fusion model, FedAvg on the server.

At the start of local training the received global model (eval mode) computes class
prototypes per modality on the client's data, ``P_c^m = mean of E_m(x^m) over local
samples of class c``. Per batch, prototype logits are negative Euclidean distances
``s_m = -||f_m - P^m||`` (classes absent locally are masked out), and::

    rho = sum_i softmax(s_a,i)[y_i] / sum_i softmax(s_v,i)[y_i]
    L = CE(g([f_a ; f_v]), y) + beta * CE(s_weak, y)
    beta = alpha                                  (scaling = "constant", the default)
    beta = alpha * tanh(rho_strong/weak - 1)      (scaling = "ratio")
    beta = 0 when rho = 1 (balanced)

where the weak modality is v when rho > 1 and a when rho < 1. ``"constant"`` is the
official PMR code (the prototype loss of the slower modality weighted by alpha);
``"ratio"`` is an option that scales the stimulation with the imbalance through the
bounded tanh(rho - 1). PMR's early-stage entropy regulariser is not included. With
per-sample missing modalities, prototypes, rho and the prototype loss use only the
samples holding the inputs they need; the fusion head zero-fills missing features. Knobs:
``alpha = 1.0`` as in the official code; ``modulation_ends``, the last round (counted
from 1) with the prototype loss (None = every round); ``aggregation = "all" |
"modality-aware"`` as for FedAvg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from fedcmi.algorithms.fedavg import BalancedFedAvg
from fedcmi.bounds import NonNegative
from fedcmi.core.dominance import dominance_ratio
from fedcmi.core.training import (
    Batch,
    ClientData,
    LossTerms,
    RoundContext,
    cross_entropy_rows,
    present,
    rows,
    timed,
    train_local,
)
from fedcmi.models import LateFusionModel
from fedcmi.models.base import fill_missing
from fedcmi.registry import ALGORITHMS


def class_prototypes(features: Tensor, labels: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per-class mean features (C, d) and the mask of classes present in ``labels``."""
    counts = torch.bincount(labels, minlength=num_classes)
    sums = torch.zeros(num_classes, features.shape[1], device=features.device, dtype=features.dtype)
    sums.index_add_(0, labels, features)
    return sums / counts.clamp_min(1)[:, None].to(features.dtype), counts > 0


def prototype_logits(features: Tensor, prototypes: Tensor, present: Tensor) -> Tensor:
    """Negative Euclidean distance to each prototype; absent classes get -inf."""
    logits = -torch.cdist(features, prototypes)
    return logits.masked_fill(~present[None, :], float("-inf"))


def pmr_coefficient(rho: float, alpha: float, scaling: str = "constant") -> float:
    """Weight of the weak modality's prototype loss for a strong/weak ratio ``rho``."""
    if rho <= 1:
        return 0.0
    return alpha * math.tanh(rho - 1.0) if scaling == "ratio" else alpha


@torch.no_grad()
def local_prototypes(
    model: LateFusionModel, client: ClientData, num_classes: int, batch_size: int
) -> dict[str, tuple[Tensor, Tensor]]:
    """Each modality's class prototypes over the client's samples holding that input."""
    model.eval()
    feats: dict[str, list[Tensor]] = {"a": [], "v": []}
    for start in range(0, len(client), batch_size):
        sl = slice(start, start + batch_size)
        feats["a"].append(model.enc_a(present(client.x_a)[sl]))
        feats["v"].append(model.enc_v(present(client.x_v)[sl]))
    masks = {"a": client.mask_a, "v": client.mask_v}
    return {
        m: class_prototypes(rows(torch.cat(f), masks[m]), rows(client.y, masks[m]), num_classes)
        for m, f in feats.items()
    }


@ALGORITHMS.register("fedavg-pmr")
class FedAvgPMR(BalancedFedAvg):
    @dataclass
    class Params(BalancedFedAvg.Params):
        alpha: NonNegative = 1.0
        """Weight of the weak modality's prototype loss."""
        scaling: Literal["constant", "ratio"] = "constant"
        """``"constant"``: alpha (the official code); ``"ratio"``:
        alpha tanh(rho - 1) (the paper's text)."""

    params: Params

    def train_multimodal(
        self, model: LateFusionModel, client: ClientData, ctx: RoundContext
    ) -> dict[str, Any]:
        with timed(ctx, "forward"):
            protos = local_prototypes(
                model, client, ctx.num_classes, max(256, ctx.train.batch_size)
            )
        a_dominant = 0

        def loss_fn(batch: Batch) -> LossTerms:
            nonlocal a_dominant
            f_a, f_v = model.enc_a(batch.x_a), model.enc_v(batch.x_v)
            fused = model.fuse(
                fill_missing(f_a, None, batch.mask_a), fill_missing(f_v, None, batch.mask_v)
            )
            ce = F.cross_entropy(fused, batch.y)
            sim_a = prototype_logits(f_a, *protos["a"])
            sim_v = prototype_logits(f_v, *protos["v"])
            rho = float(dominance_ratio(sim_a, sim_v, batch.y, batch.both_present()))
            a_dominant += rho > 1
            weak, ratio = ("v", rho) if rho > 1 else ("a", 1.0 / rho)
            beta = pmr_coefficient(ratio, self.params.alpha, self.params.scaling)
            proto = torch.zeros((), device=ce.device)
            if beta > 0:
                weak_sim, mask = (sim_v, batch.mask_v) if weak == "v" else (sim_a, batch.mask_a)
                proto = beta * cross_entropy_rows(weak_sim, batch.y, mask)
            return {"ce": ce, "proto": proto}

        stats = train_local(model, client, ctx, loss_fn)
        stats["a_dominant_frac"] = a_dominant / max(stats["steps"], 1)
        return stats
