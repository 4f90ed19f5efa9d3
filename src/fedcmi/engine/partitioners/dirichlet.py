"""``dirichlet``: per-class Dirichlet(alpha) label skew (the default; Hsu, Qi and Brown,
2019), redrawn until every client holds ``federation.min_client_size`` samples."""

from __future__ import annotations

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import Partitioner, dirichlet_partition
from fedcmi.registry import PARTITIONERS


@PARTITIONERS.register("dirichlet")
class Dirichlet(Partitioner):
    def split(
        self,
        labels: np.ndarray,
        keys: np.ndarray | None,
        cfg: FederationConfig,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        return dirichlet_partition(labels, cfg.num_clients, cfg.alpha, cfg.min_client_size, rng)
