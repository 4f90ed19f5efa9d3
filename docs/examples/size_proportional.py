# src/fedcmi/engine/selection/size_proportional.py
"""Clients drawn with probability proportional to their sample count and averaged
equally (Li et al., "On the Convergence of FedAvg on Non-IID Data", ICLR 2020, sampling
scheme I): the aggregate is unbiased without weighing the size twice."""

from __future__ import annotations

import numpy as np

from fedcmi.engine.federation import Selection
from fedcmi.registry import SELECTIONS


@SELECTIONS.register("size-proportional")
class SizeProportional(Selection):
    equal_weights = True

    def draw_weights(self, sizes: np.ndarray) -> np.ndarray | None:
        return sizes
