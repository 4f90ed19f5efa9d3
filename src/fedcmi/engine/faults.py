"""Client faults: seeded injection for tests and studies, and validation of updates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fedcmi.config import FaultsConfig
from fedcmi.core.aggregation import ClientUpdate, State


class InjectedFault(RuntimeError):
    """A crash injected by ``faults.drop_rate``."""


@dataclass(frozen=True)
class FaultDraw:
    drop: bool = False
    nan: bool = False
    slow: bool = False
    shape: bool = False


def draw_faults(cfg: FaultsConfig, seed: int, round_idx: int, cid: int, attempt: int) -> FaultDraw:
    """Faults of one client in one attempt of a round, from (seed, round, client, attempt)."""
    rates = (cfg.drop_rate, cfg.nan_rate, cfg.slow_rate, cfg.shape_rate)
    if not any(rates):
        return FaultDraw()
    u = np.random.default_rng([seed, 104_729, round_idx, cid, attempt]).random(4)
    return FaultDraw(*(bool(x < r) for x, r in zip(u, rates)))


def corrupt(update: ClientUpdate, draw: FaultDraw) -> ClientUpdate:
    """Apply an injected non-finite or wrongly shaped parameter to a client's update."""
    if not (draw.nan or draw.shape):
        return update
    state = dict(update.state)
    key = next(k for k, v in state.items() if torch.is_floating_point(v))
    if draw.nan:
        state[key] = torch.full_like(state[key], float("nan"))
    if draw.shape:
        state[key] = state[key].flatten()[:-1].clone()
    return ClientUpdate(update.cid, update.modalities, update.num_samples, state)


def validate_update(update: ClientUpdate, global_state: State) -> str | None:
    """Why ``update`` must be rejected (missing or extra keys, wrong shapes or dtypes,
    non-finite values, no samples), or None when it is acceptable."""
    keys, expected = set(update.state), set(global_state)
    if keys != expected:
        missing, extra = sorted(expected - keys)[:3], sorted(keys - expected)[:3]
        return f"wrong parameter names (missing {missing}, unexpected {extra})"
    for key, ref in global_state.items():
        value = update.state[key]
        if value.shape != ref.shape:
            return f"{key}: shape {tuple(value.shape)}, expected {tuple(ref.shape)}"
        if value.dtype != ref.dtype:
            return f"{key}: dtype {value.dtype}, expected {ref.dtype}"
        if torch.is_floating_point(value) and not torch.isfinite(value).all():
            return f"{key}: non-finite values"
    if update.num_samples <= 0:
        return f"num_samples = {update.num_samples}"
    return None
