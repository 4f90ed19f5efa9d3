# src/fedcmi/engine/partitioners/label_sorted.py
"""The samples sorted by label and cut into ``num_clients`` contiguous runs (the
sort-and-partition split of McMahan et al., 2017, with one shard per client): each
client holds one or two neighbouring classes."""

from __future__ import annotations

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import Partitioner
from fedcmi.registry import PARTITIONERS


@PARTITIONERS.register("label-sorted")
class LabelSorted(Partitioner):
    def split(
        self,
        labels: np.ndarray,
        keys: np.ndarray | None,
        cfg: FederationConfig,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        order = np.argsort(labels, kind="stable")
        return [np.sort(run) for run in np.array_split(order, cfg.num_clients)]
