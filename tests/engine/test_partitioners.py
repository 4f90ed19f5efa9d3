"""The registered partitioners: hand-counted splits, their refusals, and the manifest's
account of a split."""

import numpy as np
import pytest

from fedcmi.config import FederationConfig
from fedcmi.engine.federation import build_federation, partition_summary
from fedcmi.errors import InputError
from fedcmi.registry import PARTITIONERS


def split(name, labels, keys=None, **knobs):
    cfg = FederationConfig(partitioner=name, min_client_size=1, clients_per_round=1, **knobs)
    fed = build_federation(np.asarray(labels), cfg, rounds=1, seed=0, keys=keys)
    return fed.client_indices


def test_every_partitioner_is_registered():
    assert PARTITIONERS.names() == ["dirichlet", "iid", "natural", "quantity", "shards"]


def test_iid_cuts_a_shuffle_into_sizes_that_differ_by_at_most_one():
    parts = split("iid", np.zeros(10, dtype=int), num_clients=3)
    assert sorted(len(p) for p in parts) == [3, 3, 4]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(10))


def test_shards_give_each_client_k_classes_shared_evenly():
    labels = np.repeat(np.arange(4), 6)  # 4 classes x 6 samples
    parts = split("shards", labels, num_clients=4, classes_per_client=2)
    # 4 clients x 2 classes = 8 holdings: each class held by 2 clients, 3 samples each.
    for p in parts:
        assert len(np.unique(labels[p])) == 2 and len(p) == 6
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(24))


@pytest.mark.parametrize(
    ("clients", "k", "message"),
    [(4, 5, "classes_per_client = 5 exceeds the 4 classes"), (1, 2, "leaves 2 of the 4")],
)
def test_shards_refuse_what_cannot_be_dealt(clients, k, message):
    labels = np.repeat(np.arange(4), 6)
    with pytest.raises(InputError, match=message):
        split("shards", labels, num_clients=clients, classes_per_client=k)


def test_power_law_sizes_are_the_rank_shares():
    # Exponent 1 over 3 clients: shares 1 : 1/2 : 1/3 = 6/11, 3/11, 2/11 of 110 samples.
    parts = split(
        "quantity",
        np.zeros(110, dtype=int),
        num_clients=3,
        size_distribution="power-law",
        size_alpha=1.0,
    )
    assert sorted(len(p) for p in parts) == [20, 30, 60]


def test_dirichlet_sizes_cover_every_sample_and_respect_the_minimum():
    cfg = FederationConfig(partitioner="quantity", num_clients=5, size_alpha=0.5)
    fed = build_federation(np.zeros(200, dtype=int), cfg, rounds=1, seed=3)
    sizes = [len(p) for p in fed.client_indices]
    assert sum(sizes) == 200 and min(sizes) >= cfg.min_client_size
    assert max(sizes) > 2 * min(sizes)  # unequal, as the skew means


KEYS = {"actor": np.array(["x", "y", "x", "z", "y", "x"])}


def test_natural_gives_one_client_per_key_value_in_sorted_order():
    parts = split("natural", np.zeros(6, dtype=int), KEYS, num_clients=3, natural_key="actor")
    assert [p.tolist() for p in parts] == [[0, 2, 5], [1, 4], [3]]


def test_natural_groups_the_values_into_fewer_clients():
    parts = split("natural", np.zeros(6, dtype=int), KEYS, num_clients=2, natural_key="actor")
    groups = sorted(sorted(set(KEYS["actor"][p])) for p in parts)
    assert len(groups) == 2 and sorted(v for g in groups for v in g) == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"num_clients": 4, "natural_key": "actor"}, "num_clients = 4 exceeds the 3 values"),
        ({"num_clients": 2}, "needs federation.natural_key"),
        ({"num_clients": 2, "natural_key": "room"}, "natural_key = 'room'.*has: actor"),
    ],
)
def test_natural_refuses_a_missing_key_or_too_many_clients(knobs, message):
    with pytest.raises(InputError, match=message):
        split("natural", np.zeros(6, dtype=int), KEYS, **knobs)


def test_a_client_below_the_minimum_size_is_refused_naming_it():
    cfg = FederationConfig(partitioner="iid", num_clients=3, clients_per_round=1)
    with pytest.raises(InputError, match="min_client_size = 10"):
        build_federation(np.zeros(12, dtype=int), cfg, rounds=1, seed=0)


def test_more_clients_than_samples_is_refused():
    with pytest.raises(InputError, match="num_clients = 3 exceeds the 2 training samples"):
        split("iid", np.zeros(2, dtype=int), num_clients=3)


def test_manifest_summary_of_a_split():
    labels = np.array([0, 0, 1, 1, 1, 2])
    summary = partition_summary("shards", [np.array([0, 1, 2]), np.array([3, 4, 5])], labels)
    assert summary == {
        "partitioner": "shards",
        "client_sizes": {"min": 3.0, "median": 3.0, "max": 3.0},
        # client 0 holds classes {0, 1} (largest share 2/3), client 1 {1, 2} (2/3)
        "classes_per_client": {"min": 2.0, "median": 2.0, "max": 2.0},
        "largest_class_share": {"min": 2 / 3, "median": 2 / 3, "max": 2 / 3},
    }
