"""FedAvg with PMR in each client's local training.

PMR: Prototypical Modal Rebalance (Fan, Xu, Wang, Zhu, Wang; CVPR 2023), applied inside
local training of the late-fusion model, FedAvg on the server.

Prototypes per modality are class means of the encoder's features, computed in eval
mode under ``no_grad``, ``P_c^m = mean of E_m(x^m) over samples of class c``, on the
schedule of the official code (``prototypes = "epoch"``, the default): before the first
local epoch, from the received global model, and after each local epoch, from the
local model, each time over the first max(1, floor(``prototype_fraction`` x batches))
batches of a fresh shuffle of the client's samples; from the second local epoch on the
new means are blended with the previous prototypes,
``P <- (1 - prototype_momentum) P_new + prototype_momentum P_old``.
``prototypes = "round"`` computes them once per round from the global model over all
the client's samples. Per batch, prototype logits are negative Euclidean distances
``s_m = -||f_m - P^m||`` (classes absent from the prototype samples are masked out, and
a sample whose class has no prototype in a modality stays out of rho and of that
modality's prototype loss), and::

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
``alpha = 1.0``, ``prototype_fraction = 0.1`` and ``prototype_momentum = 0.2`` as in the
official code; ``modulation_ends``, the last round (counted
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
from fedcmi.bounds import Fraction, NonNegative
from fedcmi.core.dominance import dominance_ratio
from fedcmi.core.training import (
    Batch,
    ClientData,
    EpochClock,
    LocalResult,
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


Prototypes = dict[str, tuple[Tensor, Tensor]]  # modality -> (C x d means, class present)


@torch.no_grad()
def local_prototypes(
    model: LateFusionModel, client: ClientData | Batch, num_classes: int, batch_size: int
) -> Prototypes:
    """Each modality's class prototypes over the client's samples holding that input, in
    eval mode; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    feats: dict[str, list[Tensor]] = {"a": [], "v": []}
    for start in range(0, len(client.y), batch_size):
        sl = slice(start, start + batch_size)
        feats["a"].append(model.enc_a(present(client.x_a)[sl]))
        feats["v"].append(model.enc_v(present(client.x_v)[sl]))
    model.train(was_training)
    masks = {"a": client.mask_a, "v": client.mask_v}
    return {
        m: class_prototypes(rows(torch.cat(f), masks[m]), rows(client.y, masks[m]), num_classes)
        for m, f in feats.items()
    }


def prototype_rows(batch: Batch, protos: Prototypes) -> dict[str, Tensor]:
    """Per modality, the samples that hold its input and whose class has a prototype:
    the only ones with a finite prototype logit for their label."""
    masks = {"a": batch.mask_a, "v": batch.mask_v}
    out = {}
    for m, (_, has_class) in protos.items():
        usable, holds = has_class[batch.y], masks[m]
        out[m] = usable if holds is None else usable & holds
    return out


def prototype_sample(
    client: ClientData, batch_size: int, fraction: float, generator: torch.Generator
) -> Batch:
    """The samples of the first max(1, floor(fraction x batches)) batches of a shuffle:
    what the official ``calculate_prototype`` reads from its shuffled loader."""
    batches = max(1, math.ceil(len(client) / batch_size))
    keep = max(1, math.floor(fraction * batches)) * batch_size
    order = torch.randperm(len(client), generator=generator)[:keep]
    return client.take(order.to(client.y.device))


def blend_prototypes(new: Prototypes, old: Prototypes, momentum: float) -> Prototypes:
    """``(1 - momentum) new + momentum old`` per modality and class; a class missing from
    one of them keeps the other's prototype (the official code divides by its zero count
    and gets NaN)."""
    out = {}
    for m in new:
        (p_new, has_new), (p_old, has_old) = new[m], old[m]
        blend = (1 - momentum) * p_new + momentum * p_old
        only_new = (has_new & ~has_old)[:, None]
        only_old = (has_old & ~has_new)[:, None]
        out[m] = (
            torch.where(only_new, p_new, torch.where(only_old, p_old, blend)),
            has_new | has_old,
        )
    return out


@ALGORITHMS.register("fedavg-pmr")
class FedAvgPMR(BalancedFedAvg):
    @dataclass
    class Params(BalancedFedAvg.Params):
        alpha: NonNegative = 1.0
        """Weight of the weak modality's prototype loss."""
        prototypes: Literal["epoch", "round"] = "epoch"
        """``"epoch"``: the official schedule (before the first local epoch and after
        each one, on a ``prototype_fraction`` share of the batches, blended by
        ``prototype_momentum``); ``"round"``: once per round from the global model over
        all the client's samples."""
        prototype_fraction: Fraction = 0.1
        """Share of a shuffled epoch's batches the prototypes are computed on (at least
        one batch); ``"epoch"`` only."""
        prototype_momentum: Fraction = 0.2
        """Weight of the previous prototypes in the blend from the second local epoch
        on; ``"epoch"`` only."""
        scaling: Literal["constant", "ratio"] = "constant"
        """``"constant"``: alpha (the official code); ``"ratio"``:
        alpha tanh(rho - 1) (the paper's text)."""

    params: Params

    def train_multimodal(
        self, model: LateFusionModel, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        schedule = PrototypeSchedule(model, client, ctx, self.params)
        a_dominant = 0

        def loss_fn(batch: Batch) -> LossTerms:
            nonlocal a_dominant
            protos = schedule.before(batch)
            f_a, f_v = model.enc_a(batch.x_a), model.enc_v(batch.x_v)
            fused = model.fuse(
                fill_missing(f_a, None, batch.mask_a), fill_missing(f_v, None, batch.mask_v)
            )
            ce = F.cross_entropy(fused, batch.y)
            sim_a = prototype_logits(f_a, *protos["a"])
            sim_v = prototype_logits(f_v, *protos["v"])
            usable = prototype_rows(batch, protos)
            rho = float(dominance_ratio(sim_a, sim_v, batch.y, usable["a"] & usable["v"]))
            a_dominant += rho > 1
            weak, ratio = ("v", rho) if rho > 1 else ("a", 1.0 / rho)
            beta = pmr_coefficient(ratio, self.params.alpha, self.params.scaling)
            proto = torch.zeros((), device=ce.device)
            if beta > 0:
                weak_sim = sim_v if weak == "v" else sim_a
                proto = beta * cross_entropy_rows(weak_sim, batch.y, usable[weak])
            return {"ce": ce, "proto": proto}

        stats = train_local(model, client, ctx, loss_fn)
        stats.logs["a_dominant_frac"] = a_dominant / max(stats.logs["steps"], 1)
        return stats


class PrototypeSchedule:
    """The prototypes each batch of one client's local training uses.

    ``"epoch"`` recomputes them whenever a local epoch has been completed (counted in
    samples, so any batch source works), the first blend coming after the second
    computation, as the official loop's ``epoch > 0``; ``"round"`` computes them once.
    """

    def __init__(
        self, model: LateFusionModel, client: ClientData, ctx: RoundContext, params: Any
    ) -> None:
        self.model, self.client, self.ctx, self.params = model, client, ctx, params
        # Its own stream, so the batch order is the same under either schedule.
        self.generator = torch.Generator().manual_seed(ctx.generator.initial_seed() + 1)
        self.clock = EpochClock(client)
        self.computed = 0
        with timed(ctx, "forward"):
            self.current = self._compute()

    def _compute(self) -> Prototypes:
        ctx, p = self.ctx, self.params
        sample: ClientData | Batch = self.client
        if p.prototypes == "epoch":
            sample = prototype_sample(
                self.client, ctx.train.batch_size, p.prototype_fraction, self.generator
            )
        # fp32 means, also when a later epoch's computation runs inside the bf16 autocast
        # of the training step
        with torch.autocast(self.client.y.device.type, enabled=False):
            new = local_prototypes(
                self.model, sample, ctx.num_classes, max(256, ctx.train.batch_size)
            )
        self.computed += 1
        if p.prototypes == "epoch" and self.computed > 2:
            return blend_prototypes(new, self.current, p.prototype_momentum)
        return new

    def before(self, batch: Batch) -> Prototypes:
        """The prototypes for ``batch``; recomputed first when an epoch just ended."""
        if self.params.prototypes == "epoch" and self.clock.done >= self.computed:
            self.current = self._compute()
        self.clock.tick(batch)
        return self.current
