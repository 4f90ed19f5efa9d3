"""``shards``: the pathological label split, k = ``classes_per_client`` classes per
client (McMahan et al., 2017; the "#C = k" setting of Li et al.'s NIID-Bench, 2022).

The classes are shuffled and dealt cyclically, client i holding classes
``perm[(i k + j) mod C]`` for j < k, so every class has a holder as soon as N k >= C;
each class's samples are then shuffled and shared evenly (sizes differing by at most
one) among the clients holding it."""

from __future__ import annotations

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import Partitioner
from fedcmi.errors import InputError
from fedcmi.registry import PARTITIONERS


def dealt_classes(
    classes: np.ndarray, num_clients: int, k: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Each client's k distinct classes, dealt cyclically from a shuffled class list."""
    order = rng.permutation(classes)
    return [order[(i * k + np.arange(k)) % len(order)] for i in range(num_clients)]


@PARTITIONERS.register("shards")
class Shards(Partitioner):
    def split(
        self,
        labels: np.ndarray,
        keys: np.ndarray | None,
        cfg: FederationConfig,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        classes = np.unique(labels)
        k, n = cfg.classes_per_client, cfg.num_clients
        if k > len(classes):
            raise InputError(
                f"federation.classes_per_client = {k} exceeds the {len(classes)} classes"
            )
        if n * k < len(classes):
            raise InputError(
                f"federation.classes_per_client = {k} x federation.num_clients = {n} "
                f"leaves {len(classes) - n * k} of the {len(classes)} classes without a "
                "client (their samples would be dropped)"
            )
        held = dealt_classes(classes, n, k, rng)
        parts: list[list[np.ndarray]] = [[] for _ in range(n)]
        for c in classes:
            holders = [i for i in range(n) if c in held[i]]
            samples = rng.permutation(np.flatnonzero(labels == c))
            if len(samples) < len(holders):
                raise InputError(
                    f"federation.partitioner = 'shards': class {c} has {len(samples)} "
                    f"samples for its {len(holders)} clients"
                )
            for client, share in zip(holders, np.array_split(samples, len(holders))):
                parts[client].append(share)
        return [np.sort(np.concatenate(p)) for p in parts]
