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

State = dict[str, Tensor]


def is_plain_average(cfg: ServerConfig) -> bool:
    """Whether the server step leaves the aggregate unchanged (sgd with lr = 1)."""
    return cfg.optimizer == "sgd" and cfg.lr == 1.0


def second_moment(kind: str, v: Tensor, delta: Tensor, beta2: float) -> Tensor:
    """v_t of FedAdagrad, FedAdam or FedYogi from v_{t-1} and the pseudo-gradient."""
    sq = delta * delta
    if kind == "adagrad":
        return v + sq
    if kind == "adam":
        return beta2 * v + (1.0 - beta2) * sq
    if kind == "yogi":
        return v - (1.0 - beta2) * sq * torch.sign(v - sq)
    raise ValueError(f"server.optimizer = {kind!r}: no second moment")


def server_step(
    global_state: State,
    aggregate: State,
    moments: State,
    cfg: ServerConfig,
    keys: Iterable[str],
) -> tuple[State, State]:
    """The new global state and optimizer moments (``m.<key>``, ``v.<key>``) after one
    server step on ``keys``; other keys take the aggregate."""
    if is_plain_average(cfg):
        return aggregate, moments
    new_state, new_moments = dict(aggregate), dict(moments)
    for key in keys:
        x = global_state[key].double()
        delta = aggregate[key].double() - x
        if cfg.optimizer == "sgd":
            step = cfg.lr * delta
        else:
            m_prev = moments.get(f"m.{key}")
            v_prev = moments.get(f"v.{key}")
            m = (1.0 - cfg.beta1) * delta
            if m_prev is not None:
                m = m + cfg.beta1 * m_prev.double()
            v_start = torch.full_like(x, cfg.tau**2) if v_prev is None else v_prev.double()
            v = second_moment(cfg.optimizer, v_start, delta, cfg.beta2)
            step = cfg.lr * m / (v.sqrt() + cfg.tau)
            dtype = global_state[key].dtype
            new_moments[f"m.{key}"], new_moments[f"v.{key}"] = m.to(dtype), v.to(dtype)
        new_state[key] = (x + step).to(global_state[key].dtype)
    return new_state, new_moments
