"""Modality-aware aggregation with a-only, v-only and empty sides."""

import pytest
import torch

from fedcmi.core.aggregation import ClientUpdate, aggregate
from fedcmi.models import side_of

KEYS = ("enc_a.weight", "head_a.bias", "enc_v.weight", "inf_v.weight", "fusion.weight")


def state(value: float, tracked: int = 0) -> dict[str, torch.Tensor]:
    out = {k: torch.full((2,), value) for k in KEYS}
    out["enc_a.bn.num_batches_tracked"] = torch.tensor(tracked)
    return out


GLOBAL = state(0.0)


def test_side_of_follows_module_suffix():
    assert side_of("enc_a.net.0.weight") == "a"
    assert side_of("inf_head_v.bias") == "v"
    assert side_of("fusion.weight") is None


def test_each_side_averages_over_the_clients_holding_it():
    updates = [
        ClientUpdate(0, "av", 1, state(1.0, tracked=7)),
        ClientUpdate(1, "a", 3, state(3.0)),
        ClientUpdate(2, "v", 2, state(2.0)),
    ]
    new = aggregate(GLOBAL, updates, side_of, modality_aware=True)
    # a side: (1*1 + 3*3) / 4; v side: (1*1 + 2*2) / 3; fusion: (1 + 9 + 4) / 6.
    assert new["enc_a.weight"].tolist() == pytest.approx([2.5, 2.5])
    assert new["head_a.bias"].tolist() == pytest.approx([2.5, 2.5])
    assert new["enc_v.weight"].tolist() == pytest.approx([5 / 3, 5 / 3])
    assert new["inf_v.weight"].tolist() == pytest.approx([5 / 3, 5 / 3])
    assert new["fusion.weight"].tolist() == pytest.approx([14 / 6, 14 / 6])
    assert int(new["enc_a.bn.num_batches_tracked"]) == 7  # taken from the first contributor


def test_side_without_clients_keeps_its_global_value():
    updates = [ClientUpdate(0, "a", 2, state(4.0)), ClientUpdate(1, "a", 2, state(2.0))]
    new = aggregate(GLOBAL, updates, side_of, modality_aware=True)
    assert new["enc_a.weight"].tolist() == [3.0, 3.0]
    assert new["enc_v.weight"].tolist() == [0.0, 0.0]
    assert new["fusion.weight"].tolist() == [3.0, 3.0]


def test_only_v_clients_leave_the_a_side_unchanged():
    new = aggregate(GLOBAL, [ClientUpdate(0, "v", 5, state(1.0))], side_of, modality_aware=True)
    assert new["enc_a.weight"].tolist() == [0.0, 0.0]
    assert new["enc_v.weight"].tolist() == [1.0, 1.0]


def test_plain_fedavg_averages_everything_over_everyone():
    updates = [ClientUpdate(0, "a", 1, state(1.0)), ClientUpdate(1, "v", 3, state(5.0))]
    new = aggregate(GLOBAL, updates, side_of, modality_aware=False)
    for key in KEYS:
        assert new[key].tolist() == [4.0, 4.0]


def test_aggregate_needs_updates():
    with pytest.raises(ValueError, match="at least one"):
        aggregate(GLOBAL, [], side_of, modality_aware=True)
