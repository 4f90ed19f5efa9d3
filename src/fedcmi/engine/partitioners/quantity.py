"""``quantity``: IID labels with unequal client sizes (the quantity skew of Li et al.'s
NIID-Bench, 2022). The size shares q are Dirichlet(``size_alpha``), redrawn until every
client holds ``min_client_size`` samples, or a power law q_i proportional to
rank_i^-``size_alpha`` over shuffled ranks; a shuffle of the samples is then cut at the
rounded cumulative shares."""

from __future__ import annotations

import numpy as np

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import MAX_PARTITION_TRIES, Partitioner
from fedcmi.engine.partitioners.iid import at_most_one_client_per_sample
from fedcmi.errors import InputError
from fedcmi.registry import PARTITIONERS


def cut_by_shares(order: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
    """``order`` cut into parts of sizes round(cumsum(shares) x len) differences."""
    cuts = np.round(np.cumsum(shares)[:-1] * len(order)).astype(int)
    return [np.sort(part) for part in np.split(order, cuts)]


def power_law_shares(num_clients: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    ranks = rng.permutation(num_clients) + 1
    weights = ranks.astype(np.float64) ** -exponent
    return weights / weights.sum()


@PARTITIONERS.register("quantity")
class Quantity(Partitioner):
    def split(
        self,
        labels: np.ndarray,
        keys: np.ndarray | None,
        cfg: FederationConfig,
        rng: np.random.Generator,
    ) -> list[np.ndarray]:
        at_most_one_client_per_sample(len(labels), cfg)
        order = rng.permutation(len(labels))
        if cfg.size_distribution == "power-law":
            return cut_by_shares(order, power_law_shares(cfg.num_clients, cfg.size_alpha, rng))
        for _ in range(MAX_PARTITION_TRIES):
            shares = rng.dirichlet(np.full(cfg.num_clients, cfg.size_alpha))
            parts = cut_by_shares(order, shares)
            if min(len(p) for p in parts) >= cfg.min_client_size:
                return parts
        raise InputError(
            f"no Dirichlet(size_alpha={cfg.size_alpha}) sizes gave every one of "
            f"{cfg.num_clients} clients >= {cfg.min_client_size} samples in "
            f"{MAX_PARTITION_TRIES} draws; raise federation.size_alpha or lower "
            "federation.min_client_size"
        )
