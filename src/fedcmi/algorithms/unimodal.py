"""Unimodal FedAvg baselines: ``unimodal-a`` and ``unimodal-v``.

FedAvg (McMahan et al., AISTATS 2017) on one modality's encoder and linear head,
objective CE(h_m(E_m(x^m)), y). Clients that do not hold modality m sit out (they are
still sampled, so a round can have fewer, or no, participants); the others average
theta = sum_k n_k theta_k / sum_k n_k. With per-sample missing modalities the loss
averages over the samples that hold modality m; a batch with fewer than two of them
(BatchNorm cannot train on one) is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.algorithms.base import Algorithm
from fedcmi.config import ModelConfig
from fedcmi.core.aggregation import State
from fedcmi.core.training import (
    Batch,
    ClientData,
    LocalResult,
    RoundContext,
    present,
    rows,
    train_local,
)
from fedcmi.data.base import MultimodalData
from fedcmi.models import UnimodalModel
from fedcmi.models.base import build_encoders
from fedcmi.registry import ALGORITHMS


class Unimodal(Algorithm):
    side: str

    @dataclass
    class Params:
        pass

    params: Params

    def participates(self, modalities: str) -> bool:
        return self.side in modalities

    def build_model(self, data: MultimodalData, cfg: ModelConfig) -> UnimodalModel:
        encoder = build_encoders(data, cfg)[0 if self.side == "a" else 1]
        return UnimodalModel(encoder, cfg.feature_dim, data.num_classes, self.side)

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        assert isinstance(model, UnimodalModel)

        def loss_fn(batch: Batch) -> Tensor:
            mask = batch.mask_a if self.side == "a" else batch.mask_v
            x = present(batch.x_a if self.side == "a" else batch.x_v)
            if mask is not None and int(mask.sum()) < 2:
                return torch.zeros((), device=batch.y.device, requires_grad=True)
            return F.cross_entropy(model.logits(rows(x, mask)), rows(batch.y, mask))

        return train_local(model, client, ctx, loss_fn)


@ALGORITHMS.register("unimodal-a")
class UnimodalA(Unimodal):
    side = "a"


@ALGORITHMS.register("unimodal-v")
class UnimodalV(Unimodal):
    side = "v"
