"""``uniform``: ``clients_per_round`` clients drawn uniformly without replacement, each
update weighed by its sample count."""

from __future__ import annotations

from fedcmi.engine.federation import Selection
from fedcmi.registry import SELECTIONS

SELECTIONS.register("uniform")(Selection)
