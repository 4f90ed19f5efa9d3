# src/fedcmi/core/server_optimizers/fedavgm.py
"""Server momentum (FedAvgM; Hsu, Qi, Brown 2019): m <- beta1 m + Delta,
theta <- theta + lr m, with Delta the aggregate minus the global parameters."""

from __future__ import annotations

from torch import Tensor

from fedcmi.config import ServerConfig
from fedcmi.core.server_opt import ServerOptimizer
from fedcmi.registry import SERVER_OPTIMIZERS


@SERVER_OPTIMIZERS.register("fedavgm")
class FedAvgM(ServerOptimizer):
    moment_names = ("m",)  # kept per parameter across rounds, and in checkpoints

    def step(
        self, delta: Tensor, moments: dict[str, Tensor], cfg: ServerConfig
    ) -> tuple[Tensor, dict[str, Tensor]]:
        m = delta if "m" not in moments else cfg.beta1 * moments["m"].double() + delta
        return cfg.lr * m, {"m": m}
