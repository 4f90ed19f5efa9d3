# src/fedcmi/algorithms/fedavg_ls.py
"""FedAvg whose local loss is cross-entropy with label smoothing eps."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

from fedcmi.algorithms.base import global_parameters
from fedcmi.algorithms.fedavg import FedAvg
from fedcmi.bounds import Fraction
from fedcmi.core.aggregation import State
from fedcmi.core.training import Batch, ClientData, LocalResult, RoundContext, train_local
from fedcmi.registry import ALGORITHMS


@ALGORITHMS.register("fedavg-ls")
class FedAvgLS(FedAvg):
    @dataclass
    class Params(FedAvg.Params):  # the [algorithm] keys: aggregation (inherited), eps
        eps: Fraction = 0.1  # a float in [0, 1): --set algorithm.eps=1.5 is refused
        """Label smoothing: the target puts 1 - eps on the label, eps spread evenly."""

    params: Params  # typed: self.params.eps is a float to mypy

    def local_train(
        self, model: nn.Module, global_state: State, client: ClientData, ctx: RoundContext
    ) -> LocalResult:
        def loss_fn(batch: Batch):
            # The masks say which samples hold each input (per-sample missing modalities).
            logits = model(batch.x_a, batch.x_v, client.modalities, batch.mask_a, batch.mask_v)
            return F.cross_entropy(logits, batch.y, label_smoothing=self.params.eps)

        anchor = global_parameters(model, global_state)
        return train_local(model, client, ctx, loss_fn, anchor, prox_mu=self.prox_mu())
