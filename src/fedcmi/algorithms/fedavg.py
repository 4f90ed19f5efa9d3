"""FedAvg (McMahan et al., AISTATS 2017) on the late-fusion model.

Local objective: CE(g([f_a ; f_v]), y), a missing modality (a client's, or a sample's
with per-sample missing modalities) zero-filled. Server:
theta = sum_k n_k theta_k / sum_k n_k over the selected clients, every parameter over
every client (``aggregation = "all"``); ``"modality-aware"`` averages each modality's
branch over the clients that hold it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.algorithms.base import Algorithm, global_parameters
from fedcmi.bounds import PositiveInt
from fedcmi.core.aggregation import State
from fedcmi.core.training import Batch, ClientData, LocalResult, RoundContext, train_local
from fedcmi.models import LateFusionModel
from fedcmi.registry import ALGORITHMS


@ALGORITHMS.register("fedavg")
class FedAvg(Algorithm):
    @dataclass
    class Params:
        aggregation: Literal["all", "modality-aware"] = "all"
        """``"all"``: every parameter averaged over every sampled client (an a-only
        client contributes its unchanged v branch); ``"modality-aware"``: each modality's
        branch over the clients holding it, as FedCMI's server does."""

    params: Params

    @property
    def modality_aware(self) -> bool:
        return self.params.aggregation == "modality-aware"

    def prox_mu(self) -> float:
        """The proximal coefficient of local training (0: none; FedProx sets it)."""
        return 0.0

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        anchor = global_parameters(model, global_state)
        loss_fn = fused_cross_entropy(model, client.modalities)
        return train_local(model, client, ctx, loss_fn, anchor, prox_mu=self.prox_mu())


def fused_cross_entropy(model: nn.Module, modalities: str) -> Callable[[Batch], Tensor]:
    """The batch loss CE(g([f_a ; f_v]), y) of a client holding ``modalities``."""

    def loss_fn(batch: Batch) -> Tensor:
        logits = model(batch.x_a, batch.x_v, modalities, batch.mask_a, batch.mask_v)
        return F.cross_entropy(logits, batch.y)

    return loss_fn


class BalancedFedAvg(FedAvg):
    """FedAvg whose multimodal clients run a modality-balancing local objective
    (``train_multimodal``) in rounds 1..``modulation_ends`` (every round when None, as
    the ``Params`` of subclasses default to); unimodal clients have nothing to balance,
    and after ``modulation_ends`` every client trains plain CE."""

    @dataclass
    class Params(FedAvg.Params):
        modulation_ends: PositiveInt | None = None
        """The last round (1-based) that balances the modalities; later rounds train
        plain cross-entropy (absent: every round)."""

    params: Params

    def balancing(self, round_idx: int) -> bool:
        """Whether round ``round_idx`` (0-based) still balances the modalities."""
        ends = self.params.modulation_ends
        return ends is None or round_idx + 1 <= ends

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        if client.modalities != "av" or not self.balancing(ctx.round):
            return super().local_train(model, global_state, client, ctx)
        if not isinstance(model, LateFusionModel):
            raise TypeError(f"{type(self).__name__} needs the late-fusion model")
        return self.train_multimodal(model, client, ctx)

    def train_multimodal(
        self, model: LateFusionModel, client: ClientData, ctx: RoundContext
    ) -> LocalResult:  # pragma: no cover
        raise NotImplementedError
