"""``noise``: the client sends theta + eps, eps Gaussian scaled to an L2 norm of
``faults.attack_norm`` over all floating-point entries together."""

from __future__ import annotations

from dataclasses import replace

import torch

from fedcmi.config import FaultsConfig
from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.engine.faults import Attack, float_keys
from fedcmi.registry import ATTACKS


@ATTACKS.register("noise")
class Noise(Attack):
    def poison_update(
        self,
        update: ClientUpdate,
        global_state: State,
        faults: FaultsConfig,
        generator: torch.Generator | None,
    ) -> ClientUpdate:
        keys = float_keys(update)
        state = dict(update.state)
        noise = {
            k: torch.randn(state[k].shape, generator=generator, dtype=torch.float64) for k in keys
        }
        norm = torch.sqrt(torch.stack([(n**2).sum() for n in noise.values()]).sum())
        for k in keys:
            scaled = noise[k] * (faults.attack_norm / norm)
            state[k] = state[k] + scaled.to(state[k].device, state[k].dtype)
        return replace(update, state=state)
