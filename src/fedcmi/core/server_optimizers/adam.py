"""``adam``: FedAdam (Reddi et al. 2021), v <- beta2 v + (1 - beta2) Delta^2."""

from __future__ import annotations

from torch import Tensor

from fedcmi.core.server_opt import AdaptiveOptimizer
from fedcmi.registry import SERVER_OPTIMIZERS


@SERVER_OPTIMIZERS.register("adam")
class FedAdam(AdaptiveOptimizer):
    def second_moment(self, v: Tensor, delta: Tensor, beta2: float) -> Tensor:
        return beta2 * v + (1.0 - beta2) * (delta * delta)
