"""``natural``: clients by a per-sample key of the dataset (``federation.natural_key``:
CREMA-D's actor, AVE's video, CrisisMMD's crisis event), as a real federation is split
by speaker, recording or source. With as many clients as key values, one client per
value (in sorted order); with fewer, the values are shuffled and dealt into
``num_clients`` groups whose value counts differ by at most one."""

from __future__ import annotations

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import Partitioner
from fedcmi.errors import InputError
from fedcmi.registry import PARTITIONERS


@PARTITIONERS.register("natural")
class Natural(Partitioner):
    needs_key = True

    def split(
        self,
        labels: np.ndarray,
        keys: np.ndarray | None,
        cfg: FederationConfig,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        assert keys is not None  # build_federation hands a needs_key entry its keys
        values = np.unique(keys)
        if cfg.num_clients > len(values):
            raise InputError(
                f"federation.num_clients = {cfg.num_clients} exceeds the {len(values)} "
                f"values of federation.natural_key = {cfg.natural_key!r}"
            )
        if cfg.num_clients < len(values):
            groups = np.array_split(rng.permutation(values), cfg.num_clients)
        else:
            groups = [values[i : i + 1] for i in range(len(values))]
        return [np.flatnonzero(np.isin(keys, group)) for group in groups]
