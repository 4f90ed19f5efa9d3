"""``adagrad``: FedAdagrad (Reddi et al. 2021), v <- v + Delta^2."""

from __future__ import annotations

from torch import Tensor

from fedcmi.core.server_opt import AdaptiveOptimizer
from fedcmi.registry import SERVER_OPTIMIZERS


@SERVER_OPTIMIZERS.register("adagrad")
class FedAdagrad(AdaptiveOptimizer):
    def second_moment(self, v: Tensor, delta: Tensor, beta2: float) -> Tensor:
        return v + delta * delta
