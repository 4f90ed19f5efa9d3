"""``iid``: a uniform shuffle of the samples cut into ``num_clients`` parts whose sizes
differ by at most one."""

from __future__ import annotations

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import Partitioner
from fedcmi.errors import InputError
from fedcmi.registry import PARTITIONERS


def at_most_one_client_per_sample(samples: int, cfg: FederationConfig) -> None:
    if cfg.num_clients > samples:
        raise InputError(
            f"federation.num_clients = {cfg.num_clients} exceeds the {samples} training samples"
        )


@PARTITIONERS.register("iid")
class IID(Partitioner):
    def split(
        self,
        labels: np.ndarray,
        keys: np.ndarray | None,
        cfg: FederationConfig,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        at_most_one_client_per_sample(len(labels), cfg)
        order = rng.permutation(len(labels))
        return [np.sort(part) for part in np.array_split(order, cfg.num_clients)]
