"""``power-of-choice`` (Cho, Wang, Joshi, "Towards Understanding Biased Client Selection in
Federated Learning", AISTATS 2022: pow-d): d candidates drawn with probability
proportional to their sample count; the ``clients_per_round`` with the highest local
loss of the global model take part, and their updates are averaged equally (the size
already counted in the draw)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import Selection
from fedcmi.registry import SELECTIONS


def num_candidates(cfg: FederationConfig) -> int:
    """The candidate count d: ``federation.candidates``, by default min(2 K, N)."""
    if cfg.candidates is not None:
        return cfg.candidates
    return min(2 * cfg.clients_per_round, cfg.num_clients)


def power_of_choice(candidates: Sequence[int], losses: Sequence[float], k: int) -> list[int]:
    """The ``k`` candidates with the highest local loss (ties: lower client id first),
    in client-id order."""
    ranked = sorted(zip(candidates, losses), key=lambda pair: (-pair[1], pair[0]))
    return sorted(cid for cid, _ in ranked[:k])


@SELECTIONS.register("power-of-choice")
class PowerOfChoice(Selection):
    needs_losses = True
    equal_weights = True

    def draw_count(self, cfg: FederationConfig) -> int:
        return num_candidates(cfg)

    def draw_weights(self, sizes: np.ndarray) -> np.ndarray | None:
        return sizes

    def choose(
        self, drawn: list[int], losses: list[float] | None, cfg: FederationConfig
    ) -> list[int]:
        assert losses is not None  # needs_losses
        return power_of_choice(drawn, losses, cfg.clients_per_round)
