"""Dirichlet split invariants, modality assignment, sampling and seeded reproducibility."""

import numpy as np
import pytest

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import (
    assign_modalities,
    build_federation,
    dirichlet_partition,
    sample_schedule,
)

LABELS = np.repeat(np.arange(10), 100)


@pytest.mark.parametrize("alpha", [0.1, 1.0, 100.0])
def test_every_sample_in_exactly_one_client(alpha):
    parts = dirichlet_partition(LABELS, 20, alpha, 10, np.random.default_rng(0))
    joined = np.concatenate(parts)
    assert len(joined) == len(LABELS)
    assert np.array_equal(np.sort(joined), np.arange(len(LABELS)))
    assert min(len(p) for p in parts) >= 10


def test_large_alpha_is_close_to_iid():
    parts = dirichlet_partition(LABELS, 10, 1e5, 10, np.random.default_rng(0))
    for p in parts:
        counts = np.bincount(LABELS[p], minlength=10)
        assert counts.min() >= 8 and counts.max() <= 12


def test_small_alpha_is_skewed():
    parts = dirichlet_partition(LABELS, 10, 0.1, 5, np.random.default_rng(0))
    dominant_share = [np.bincount(LABELS[p]).max() / len(p) for p in parts]
    assert np.mean(dominant_share) > 0.5


def test_impossible_minimum_size_is_a_clear_error():
    with pytest.raises(ValueError, match="min_client_size"):
        dirichlet_partition(LABELS, 20, 1.0, 100, np.random.default_rng(0))


def test_modality_assignment_counts():
    kinds = assign_modalities(20, 0.5, np.random.default_rng(0))
    assert (kinds.count("av"), kinds.count("a"), kinds.count("v")) == (10, 5, 5)
    kinds = assign_modalities(5, 0.0, np.random.default_rng(0))
    assert (kinds.count("av"), kinds.count("a"), kinds.count("v")) == (0, 3, 2)
    assert assign_modalities(4, 1.0, np.random.default_rng(0)) == ["av"] * 4


def test_schedule_samples_without_replacement():
    schedule = sample_schedule(20, 5, 50, np.random.default_rng(0))
    assert len(schedule) == 50
    assert all(len(set(s)) == 5 and all(0 <= c < 20 for c in s) for s in schedule)


def test_federation_is_reproducible_from_the_seed():
    cfg = FederationConfig(num_clients=8, clients_per_round=3, alpha=0.5, multimodal_ratio=0.5)
    one, two = (build_federation(LABELS, cfg, 5, seed=3) for _ in range(2))
    other = build_federation(LABELS, cfg, 5, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(one.client_indices, two.client_indices))
    assert one.modalities == two.modalities and one.schedule == two.schedule
    assert not all(np.array_equal(a, b) for a, b in zip(one.client_indices, other.client_indices))


def test_more_rounds_do_not_change_the_partition():
    cfg = FederationConfig(num_clients=8, clients_per_round=3, alpha=0.5)
    short, long = build_federation(LABELS, cfg, 2, 0), build_federation(LABELS, cfg, 9, 0)
    assert all(np.array_equal(a, b) for a, b in zip(short.client_indices, long.client_indices))
    assert long.schedule[:2] == short.schedule


def test_manifest_describes_clients():
    cfg = FederationConfig(num_clients=4, clients_per_round=2, multimodal_ratio=0.5)
    fed = build_federation(LABELS, cfg, 3, 0)
    manifest = fed.manifest(LABELS, [str(c) for c in range(10)])
    assert manifest["modality_counts"] == {"av": 2, "a": 1, "v": 1}
    assert sum(c["num_samples"] for c in manifest["clients"]) == len(LABELS)
    assert sum(sum(c["class_counts"]) for c in manifest["clients"]) == len(LABELS)
