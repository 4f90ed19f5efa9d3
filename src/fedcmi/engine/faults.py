"""Client faults: seeded injection for tests and studies (crashes, non-finite or misshaped
updates, slowness, and finite attacks by malicious clients), and validation of updates."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from fedcmi.config import Config, FaultsConfig
from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.core.training import ClientData
from fedcmi.registry import ATTACKS


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
    return replace(update, state=state)


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


def malicious_clients(cfg: Config) -> frozenset[int]:
    """The ``faults.malicious_clients`` attackers: a fixed set drawn from the run seed, so
    every engine and every attempt agrees on who attacks."""
    k = cfg.faults.malicious_clients
    if k == 0:
        return frozenset()
    order = np.random.default_rng([cfg.seed, 7_919]).permutation(cfg.federation.num_clients)
    return frozenset(int(c) for c in order[:k])


class Attack:
    """One ``faults.attack``: what a malicious client does to its training data, to the
    update it sends, or both.

    An entry is a subclass registered with ``@ATTACKS.register("name")`` in a module of
    :mod:`fedcmi.engine.attacks`; both engines call it through
    :func:`fedcmi.engine.rounds.train_client`.
    """

    def poison_data(self, client: ClientData, num_classes: int) -> ClientData:
        """The data the client trains on (its own, for an attack on the update)."""
        return client

    def poison_update(
        self,
        update: ClientUpdate,
        global_state: State,
        faults: FaultsConfig,
        generator: torch.Generator | None,
    ) -> ClientUpdate:
        """What the client sends instead of its honest update ``update`` (g: the global
        state; ``generator``: the attack's own seeded randomness)."""
        return update


HONEST = Attack()  # the base class changes nothing: an honest client's data and update


def attack_of(cfg: Config, cid: int) -> str | None:
    """The attack client ``cid`` mounts, or None for an honest client."""
    return cfg.faults.attack if cid in malicious_clients(cfg) else None


def attack_for(cfg: Config, cid: int) -> Attack | None:
    """The registered attack of client ``cid``, or None for an honest client."""
    name = attack_of(cfg, cid)
    return None if name is None else ATTACKS.get(name)()


def poison(
    update: ClientUpdate,
    global_state: State,
    faults: FaultsConfig,
    generator: torch.Generator | None,
) -> ClientUpdate:
    """The update a ``faults.attack`` client sends instead of its honest one."""
    attack: Attack = ATTACKS.get(faults.attack)()
    return attack.poison_update(update, global_state, faults, generator)


def float_keys(update: ClientUpdate) -> list[str]:
    """The floating-point entries of an update (an attack leaves integer buffers, such as
    BatchNorm's batch counter, as they are)."""
    return [k for k, v in update.state.items() if torch.is_floating_point(v)]


def scaled_update(update: ClientUpdate, global_state: State, factor: float) -> ClientUpdate:
    """g + factor (theta - g) on every floating-point entry."""
    state = dict(update.state)
    for k in float_keys(update):
        state[k] = global_state[k] + factor * (state[k] - global_state[k])
    return replace(update, state=state)


def attack_generator(seed: int, round_idx: int, cid: int, attempt: int) -> torch.Generator:
    """The CPU generator of one attack's randomness (the noise attack)."""
    state = np.random.SeedSequence([seed, 15_485_863, round_idx, cid, attempt])
    return torch.Generator().manual_seed(int(state.generate_state(1, dtype=np.uint64)[0] >> 1))
