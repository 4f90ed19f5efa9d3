"""``sign-flip``: the client sends g - f (theta - g), f = ``faults.attack_factor``: the
honest step reversed and amplified."""

from __future__ import annotations

from fedcmi.engine.attacks.scale import Scale
from fedcmi.registry import ATTACKS


@ATTACKS.register("sign-flip")
class SignFlip(Scale):
    direction = -1.0
