"""``label-flip``: the client trains honestly on flipped labels, y -> C - 1 - y, and
sends that update."""

from __future__ import annotations

from dataclasses import replace

from fedcmi.core.training import ClientData
from fedcmi.engine.faults import Attack
from fedcmi.registry import ATTACKS


def flip_labels(client: ClientData, num_classes: int) -> ClientData:
    """Every local label y becomes C - 1 - y."""
    return replace(client, y=num_classes - 1 - client.y)


@ATTACKS.register("label-flip")
class LabelFlip(Attack):
    def poison_data(self, client: ClientData, num_classes: int) -> ClientData:
        return flip_labels(client, num_classes)
