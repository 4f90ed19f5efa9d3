"""``sgd``: theta <- theta + lr Delta; lr = 1 is plain averaging (the aggregate as it is)."""

from __future__ import annotations

from torch import Tensor

from fedcmi.config import ServerConfig
from fedcmi.core.server_opt import ServerOptimizer
from fedcmi.registry import SERVER_OPTIMIZERS


@SERVER_OPTIMIZERS.register("sgd")
class ServerSGD(ServerOptimizer):
    def is_identity(self, cfg: ServerConfig) -> bool:
        return cfg.lr == 1.0

    def step(
        self, delta: Tensor, moments: dict[str, Tensor], cfg: ServerConfig
    ) -> tuple[Tensor, dict[str, Tensor]]:
        return cfg.lr * delta, {}
