"""``yogi``: FedYogi (Reddi et al. 2021), v <- v - (1 - beta2) Delta^2 sign(v - Delta^2)."""

from __future__ import annotations

import torch
from torch import Tensor

from fedcmi.core.server_opt import AdaptiveOptimizer
from fedcmi.registry import SERVER_OPTIMIZERS


@SERVER_OPTIMIZERS.register("yogi")
class FedYogi(AdaptiveOptimizer):
    def second_moment(self, v: Tensor, delta: Tensor, beta2: float) -> Tensor:
        sq = delta * delta
        return v - (1.0 - beta2) * sq * torch.sign(v - sq)
