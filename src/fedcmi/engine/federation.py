"""Federation set-up: Dirichlet label split, modality assignment, per-round sampling.

Three independent random streams are spawned from the run seed, so changing the number
of rounds never changes the partition or the modality assignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.errors import InputError

MAX_PARTITION_TRIES = 10_000


@dataclass
class Federation:
    client_indices: list[np.ndarray]  # indices into the training split
    modalities: list[str]  # "av", "a" or "v" per client
    schedule: list[list[int]]  # clients selected in each round

    def manifest(self, labels: np.ndarray, class_names: list[str]) -> dict[str, Any]:
        num_classes = len(class_names)
        clients = [
            {
                "cid": cid,
                "modalities": mods,
                "num_samples": int(len(idx)),
                "class_counts": np.bincount(labels[idx], minlength=num_classes).tolist(),
            }
            for cid, (idx, mods) in enumerate(zip(self.client_indices, self.modalities))
        ]
        return {
            "num_clients": len(self.client_indices),
            "modality_counts": {m: self.modalities.count(m) for m in ("av", "a", "v")},
            "class_names": class_names,
            "clients": clients,
            "schedule": self.schedule,
            "client_indices": [idx.tolist() for idx in self.client_indices],
        }


def dirichlet_partition(
    labels: np.ndarray, num_clients: int, alpha: float, min_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Split sample indices over clients with per-class proportions ~ Dirichlet(alpha).

    Every sample lands in exactly one client. Draws are repeated until each client holds
    at least ``min_size`` samples; a very large alpha approaches an IID split.
    """
    if min_size * num_clients > len(labels):
        raise InputError(
            f"federation.min_client_size = {min_size} x {num_clients} clients exceeds the "
            f"{len(labels)} training samples"
        )
    classes = np.unique(labels)
    for _ in range(MAX_PARTITION_TRIES):
        shards: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            props = rng.dirichlet(np.full(num_clients, alpha))
            # Rounded (not floored) cut points: flooring would hand a small class's
            # samples to the last clients only.
            cuts = np.round(np.cumsum(props)[:-1] * len(idx)).astype(int)
            for client, part in enumerate(np.split(idx, cuts)):
                shards[client].append(part)
        parts = [np.sort(np.concatenate(s)) for s in shards]
        if min(len(p) for p in parts) >= min_size:
            return parts
    raise InputError(
        f"no Dirichlet(alpha={alpha}) split gave every one of {num_clients} clients "
        f">= {min_size} samples in {MAX_PARTITION_TRIES} draws; lower "
        "federation.min_client_size or federation.num_clients, or raise federation.alpha"
    )


def assign_modalities(
    num_clients: int, multimodal_ratio: float, rng: np.random.Generator
) -> list[str]:
    """round(r N) multimodal clients; the rest half a-only, half v-only (a gets the odd one)."""
    n_av = int(round(multimodal_ratio * num_clients))
    rest = num_clients - n_av
    n_a = (rest + 1) // 2
    kinds = ["av"] * n_av + ["a"] * n_a + ["v"] * (rest - n_a)
    return [kinds[i] for i in rng.permutation(num_clients)]


def sample_schedule(
    num_clients: int, per_round: int, rounds: int, rng: np.random.Generator
) -> list[list[int]]:
    """Clients per round, uniform without replacement within a round."""
    return [
        sorted(rng.choice(num_clients, per_round, replace=False).tolist()) for _ in range(rounds)
    ]


def build_federation(
    labels: np.ndarray, cfg: FederationConfig, rounds: int, seed: int
) -> Federation:
    part_rng, mod_rng, sched_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    return Federation(
        client_indices=dirichlet_partition(
            labels, cfg.num_clients, cfg.alpha, cfg.min_client_size, part_rng
        ),
        modalities=assign_modalities(cfg.num_clients, cfg.multimodal_ratio, mod_rng),
        schedule=sample_schedule(cfg.num_clients, cfg.clients_per_round, rounds, sched_rng),
    )
