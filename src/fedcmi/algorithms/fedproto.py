"""FedProto-style prototype regularisation (Tan, Long, Liu, Zhou, Lu, Jiang, Zhang;
"FedProto: Federated Prototype Learning across Heterogeneous Clients", AAAI 2022) on the
late-fusion model, per modality, with FedAvg of the model parameters.

After local training, client i sends per modality m and class c the prototype
P_i,c^m = mean of E_m(x^m) over its samples of class c holding input m (eval mode) and
their count n_i,c^m. The server averages them (FedProto Eq. 6)::

    P_c^m = sum_i n_i,c^m P_i,c^m / sum_i n_i,c^m

over the round's clients that hold class c in modality m; a class no client of the
round reported keeps its previous global prototype. Local training adds the distance of
each sample's features to its class's global prototype (the official code's MSE)::

    L = CE(g([f_a ; f_v]), y) + lambda sum_m (1 / n_m) sum_i ||f_m,i - P_{y_i}^m||^2 / d

where the sum runs over the batch's samples holding input m whose class has a global
prototype (none in round 1) and n_m counts the batch's samples holding input m: the
official ``MSELoss`` against a target that equals the sample's own features where its
class has no prototype. Unlike FedProto, the model parameters are still averaged
(FedAvg): the prototypes regularise a shared model, the form used as a baseline in
multimodal FL.

Choices: ``client_prototypes = "training"`` (default, the official client) averages the
features of the last local epoch's training passes (train mode, each taken before its
batch's step); ``"eval"`` recomputes them from the trained model in eval mode over all
the client's samples. Unlike the official loader (``drop_last=True``) no sample is left
out. ``lambda = 1.0`` (``proto_weight``, the official ``ld``); ``server_mean`` weighted
as the paper's Eq. 6 or unweighted as the official server; ``aggregation`` as for
FedAvg.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.algorithms.fedavg import FedAvg
from fedcmi.algorithms.fedavg_pmr import class_prototypes
from fedcmi.bounds import NonNegative
from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.core.training import (
    Batch,
    ClientData,
    EpochClock,
    LocalResult,
    LossTerms,
    RoundContext,
    present,
    rows,
    train_local,
)
from fedcmi.models import LateFusionModel
from fedcmi.models.base import fill_missing
from fedcmi.registry import ALGORITHMS


def average_prototypes(
    previous: Tensor,
    previous_count: Tensor,
    reports: Sequence[tuple[Tensor, Tensor]],
    weighted: bool = True,
) -> tuple[Tensor, Tensor]:
    """P_c = sum_i n_i,c P_i,c / sum_i n_i,c over the reports holding class c (with
    ``weighted`` false: the plain mean over those reports); classes nobody reported keep
    ``previous`` (and ``previous_count``)."""
    if not reports:
        return previous, previous_count
    counts = torch.stack([n.double() for _, n in reports])  # (clients, C)
    protos = torch.stack([p.double() for p, _ in reports])  # (clients, C, d)
    total = counts.sum(dim=0)
    weights = counts if weighted else (counts > 0).double()
    mean = (protos * weights[:, :, None]).sum(dim=0) / weights.sum(dim=0).clamp_min(1)[:, None]
    seen = total > 0
    proto = torch.where(seen[:, None], mean.to(previous.dtype), previous)
    count = torch.where(seen, total.to(previous_count.dtype), previous_count)
    return proto, count


def prototype_distance(
    features: Tensor, prototypes: Tensor, valid: Tensor, batch: Batch, mask: Tensor | None
) -> Tensor:
    """sum over kept samples of ||f_i - P_{y_i}||^2 / d, divided by the number of
    samples holding the input; kept: holding the input and with a global prototype for
    their class (the others count as distance 0, as in the official MSE)."""
    keep = valid[batch.y]
    holding = torch.ones_like(keep) if mask is None else mask
    per_sample = ((features - prototypes[batch.y]) ** 2).mean(dim=1)
    kept = torch.where(keep & holding, per_sample, torch.zeros_like(per_sample))
    return kept.sum() / holding.sum().clamp_min(1).to(per_sample.dtype)


@torch.no_grad()
def client_prototypes(
    model: LateFusionModel, client: ClientData, num_classes: int, batch_size: int
) -> dict[str, tuple[Tensor, Tensor]]:
    """Per held modality: the class prototypes (C, d) and class counts (C) over the
    client's samples holding that input, from the model in eval mode."""
    model.eval()
    out = {}
    for side, x, mask, enc in (
        ("a", client.x_a, client.mask_a, model.enc_a),
        ("v", client.x_v, client.mask_v, model.enc_v),
    ):
        if side not in client.modalities:
            continue
        feats = torch.cat(
            [enc(present(x)[s : s + batch_size]) for s in range(0, len(client), batch_size)]
        ).float()
        labels = rows(client.y, mask)
        protos, _ = class_prototypes(rows(feats, mask), labels, num_classes)
        out[side] = (protos, torch.bincount(labels, minlength=num_classes).float())
    return out


class TrainingPrototypes:
    """Per held modality, class sums and counts of the features of the last local
    epoch's training passes (detached); ``enabled`` false collects nothing."""

    def __init__(self, client: ClientData, num_classes: int, epochs: int, enabled: bool) -> None:
        self.last_epoch = epochs - 1 if enabled else epochs  # epochs: never reached
        self.clock = EpochClock(client)
        self.num_classes = num_classes
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, Tensor] = {}

    def add(self, side: str, features: Tensor, batch: Batch, mask: Tensor | None) -> None:
        if self.clock.done < self.last_epoch:
            return
        f = rows(features.detach().float(), mask)
        y = rows(batch.y, mask)
        if side not in self.sums:
            self.sums[side] = torch.zeros(self.num_classes, f.shape[1], device=f.device)
            self.counts[side] = torch.zeros(self.num_classes, device=f.device)
        self.sums[side].index_add_(0, y, f)
        self.counts[side] += torch.bincount(y, minlength=self.num_classes).float()

    def end_batch(self, batch: Batch) -> None:
        self.clock.tick(batch)

    def report(self) -> dict[str, tuple[Tensor, Tensor]]:
        return {
            side: (self.sums[side] / self.counts[side].clamp_min(1)[:, None], self.counts[side])
            for side in self.sums
        }


@ALGORITHMS.register("fedproto")
class FedProto(FedAvg):
    @dataclass
    class Params(FedAvg.Params):
        proto_weight: NonNegative = 1.0
        """lambda: weight of the MSE between local features and the global prototype."""
        server_mean: Literal["weighted", "unweighted"] = "weighted"
        """``"weighted"``: each class's global prototype weighs the clients by their
        sample counts of that class (the paper's Eq. 6); ``"unweighted"``: the plain mean
        over the clients holding the class (the official code's ``proto_aggregation``)."""
        client_prototypes: Literal["training", "eval"] = "training"
        """``"training"``: the class means of the last local epoch's training features
        (the official client); ``"eval"``: recomputed from the trained model in eval
        mode over all the client's samples."""

    params: Params

    def init_server_state(self, global_state: State) -> State:
        weight = global_state["fusion.weight"]
        classes, d = weight.shape[0], weight.shape[1] // 2
        state = {}
        for side in "av":
            state[f"proto.{side}"] = torch.zeros(
                classes, d, dtype=weight.dtype, device=weight.device
            )
            state[f"count.{side}"] = torch.zeros(classes, dtype=weight.dtype, device=weight.device)
        return state

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        assert isinstance(model, LateFusionModel)
        lam = self.params.proto_weight
        globals_ = {
            side: (ctx.server_state[f"proto.{side}"], ctx.server_state[f"count.{side}"] > 0)
            for side in "av"
        }

        training = self.params.client_prototypes == "training"
        seen = TrainingPrototypes(client, ctx.num_classes, ctx.train.local_epochs, training)

        def loss_fn(batch: Batch) -> LossTerms:
            f_a = model.enc_a(batch.x_a) if "a" in client.modalities else None
            f_v = model.enc_v(batch.x_v) if "v" in client.modalities else None
            for side, f, mask in (("a", f_a, batch.mask_a), ("v", f_v, batch.mask_v)):
                if f is not None:
                    seen.add(side, f, batch, mask)
            seen.end_batch(batch)
            fused = model.fuse(
                None if f_a is None else fill_missing(f_a, None, batch.mask_a),
                None if f_v is None else fill_missing(f_v, None, batch.mask_v),
            )
            terms = {"ce": F.cross_entropy(fused, batch.y)}
            for side, f, mask in (("a", f_a, batch.mask_a), ("v", f_v, batch.mask_v)):
                protos, valid = globals_[side]
                if f is not None and lam:
                    terms[f"proto_{side}"] = lam * prototype_distance(f, protos, valid, batch, mask)
            return terms

        stats = train_local(model, client, ctx, loss_fn)
        if training:
            local = seen.report()
        else:
            local = client_prototypes(
                model, client, ctx.num_classes, max(256, ctx.train.batch_size)
            )
        for side, (protos, counts) in local.items():
            stats.report[f"proto.{side}"] = protos
            stats.report[f"count.{side}"] = counts
        return stats

    def server_update(
        self, server_state: State, updates: Sequence[ClientUpdate], modalities: Sequence[str]
    ) -> State:
        new = dict(server_state)
        for side in "av":
            reports = [
                (u.report[f"proto.{side}"], u.report[f"count.{side}"])
                for u in updates
                if f"proto.{side}" in u.report
            ]
            new[f"proto.{side}"], new[f"count.{side}"] = average_prototypes(
                server_state[f"proto.{side}"],
                server_state[f"count.{side}"],
                reports,
                weighted=self.params.server_mean == "weighted",
            )
        return new
