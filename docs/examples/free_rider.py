# src/fedcmi/engine/attacks/free_rider.py
"""A free rider (Lin et al. 2019): trains nothing of its own and sends the global model
back as its update, with its sample count, to be paid for a share of the aggregate."""

from __future__ import annotations

from dataclasses import replace

import torch

from fedcmi.config import FaultsConfig
from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.engine.faults import Attack
from fedcmi.registry import ATTACKS


@ATTACKS.register("free-rider")
class FreeRider(Attack):
    def poison_update(
        self,
        update: ClientUpdate,
        global_state: State,
        faults: FaultsConfig,
        generator: torch.Generator | None,
    ) -> ClientUpdate:
        state = {k: global_state[k].clone() for k in update.state}
        return replace(update, state=state)
