"""The server's step on the aggregated update: FedOpt (Reddi et al., "Adaptive Federated
Optimization", ICLR 2021, Algorithm 2).

With theta the global parameters, a the aggregate of the clients' states (the weighted
mean, or the robust rule of ``[robustness]``) and the pseudo-gradient Delta = a - theta::

    sgd:      theta <- theta + lr Delta                        (lr = 1: plain averaging)
    m <- beta1 m + (1 - beta1) Delta                           (m starts at 0)
    adagrad:  v <- v + Delta^2
    adam:     v <- beta2 v + (1 - beta2) Delta^2
    yogi:     v <- v - (1 - beta2) Delta^2 sign(v - Delta^2)
    theta <- theta + lr m / (sqrt(v) + tau)                    (v starts at tau^2)

as in the paper: no bias correction, v initialised to tau^2 (the smallest value the
paper's ``v_{-1} >= tau^2`` allows). The step applies to the model's parameters that
the round updated; buffers (BatchNorm statistics) take the aggregate as they are, and a
modality branch no selected client holds (modality-aware methods) keeps its value and
its moments. Computed in float64, stored in the parameters' dtype.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from fedcmi.config import ServerConfig
from fedcmi.registry import SERVER_OPTIMIZERS

State = dict[str, Tensor]


class ServerOptimizer:
    """One ``server.optimizer``: the step on one parameter from its pseudo-gradient.

    An entry is a subclass registered with ``@SERVER_OPTIMIZERS.register("name")`` in a
    module of :mod:`fedcmi.core.server_optimizers`; the registered name is the value of
    ``server.optimizer``.
    """

    moment_names: tuple[str, ...] = ()  # what it keeps per parameter across rounds

    def is_identity(self, cfg: ServerConfig) -> bool:
        """Whether the step leaves the aggregate as it is (then no step is taken)."""
        return False

    def step(
        self, delta: Tensor, moments: dict[str, Tensor], cfg: ServerConfig
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The change to one parameter (float64) from its pseudo-gradient Delta (float64)
        and its moments of the last round (name -> tensor; empty before the first step),
        and the moments to keep."""
        raise NotImplementedError


class AdaptiveOptimizer(ServerOptimizer):
    """FedOpt's adaptive step: m <- beta1 m + (1 - beta1) Delta, v from
    :meth:`second_moment` (v starts at tau^2), theta <- theta + lr m / (sqrt(v) + tau)."""

    moment_names = ("m", "v")

    def second_moment(self, v: Tensor, delta: Tensor, beta2: float) -> Tensor:
        raise NotImplementedError

    def step(
        self, delta: Tensor, moments: dict[str, Tensor], cfg: ServerConfig
    ) -> tuple[Tensor, dict[str, Tensor]]:
        m = (1.0 - cfg.beta1) * delta
        if "m" in moments:
            m = m + cfg.beta1 * moments["m"].double()
        v_start = (
            torch.full_like(delta, cfg.tau**2) if "v" not in moments else moments["v"].double()
        )
        v = self.second_moment(v_start, delta, cfg.beta2)
        return cfg.lr * m / (v.sqrt() + cfg.tau), {"m": m, "v": v}


def optimizer_of(cfg: ServerConfig) -> ServerOptimizer:
    return SERVER_OPTIMIZERS.get(cfg.optimizer)()


def server_step(
    global_state: State,
    aggregate: State,
    moments: State,
    cfg: ServerConfig,
    keys: Iterable[str],
) -> tuple[State, State]:
    """The new global state and optimizer moments (``<name>.<key>``: ``m.<key>``,
    ``v.<key>``) after one server step on ``keys``; other keys take the aggregate."""
    optimizer = optimizer_of(cfg)
    if optimizer.is_identity(cfg):
        return aggregate, moments
    new_state, new_moments = dict(aggregate), dict(moments)
    for key in keys:
        x = global_state[key].double()
        delta = aggregate[key].double() - x
        dtype = global_state[key].dtype
        kept = {n: moments[f"{n}.{key}"] for n in optimizer.moment_names if f"{n}.{key}" in moments}
        step, kept = optimizer.step(delta, kept, cfg)
        for name, value in kept.items():
            new_moments[f"{name}.{key}"] = value.to(dtype)
        new_state[key] = (x + step).to(dtype)
    return new_state, new_moments
