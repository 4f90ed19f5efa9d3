"""``scale``: the client sends g + f (theta - g), f = ``faults.attack_factor``: the honest
step amplified."""

from __future__ import annotations

import torch

from fedcmi.config import FaultsConfig
from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.engine.faults import Attack, scaled_update
from fedcmi.registry import ATTACKS


@ATTACKS.register("scale")
class Scale(Attack):
    direction = 1.0  # the sign of the sent step relative to the honest one

    def poison_update(
        self,
        update: ClientUpdate,
        global_state: State,
        faults: FaultsConfig,
        generator: torch.Generator | None,
    ) -> ClientUpdate:
        return scaled_update(update, global_state, self.direction * faults.attack_factor)
