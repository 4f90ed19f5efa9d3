"""Per-sample missing modalities: reproducible masks, reported rates, no loss term that
reads a missing input, and FedCMI's fill from the infiltration projector."""

import dataclasses

import numpy as np
import pytest
import torch

from fedcmi.algorithms import ALGORITHMS
from fedcmi.config import ConfigError, load_config
from fedcmi.data import load_dataset
from fedcmi.data.base import Split
from fedcmi.engine.embedded import make_client_data
from fedcmi.engine.federation import Missing, build_federation
from fedcmi.models import FedCMIModel

RATES = ("federation.missing_rate_a=0.3", "federation.missing_rate_v=0.4")


@pytest.fixture
def federation_of(make_config):
    """The federation of a half-unimodal synthetic config with ``overrides``, and the labels."""

    def build(*overrides, seed=0):
        cfg = make_config("federation.multimodal_ratio=0.5", f"seed={seed}", *overrides)
        labels = load_dataset(cfg.data.name, cfg.data.params).train.y.numpy()
        return build_federation(labels, cfg.federation, cfg.rounds, cfg.seed), labels

    return build


def test_masks_are_drawn_once_from_the_seed(federation_of):
    one, _ = federation_of(*RATES)
    two, _ = federation_of(*RATES)
    other, _ = federation_of(*RATES, seed=1)
    assert one.missing.keys() == two.missing.keys()
    for cid, m in one.missing.items():
        assert np.array_equal(m.present_a, two.missing[cid].present_a)
        assert np.array_equal(m.present_v, two.missing[cid].present_v)
    assert (
        any(
            not np.array_equal(m.present_a, other.missing[cid].present_a)
            for cid, m in one.missing.items()
            if cid in other.missing and len(m.present_a) == len(other.missing[cid].present_a)
        )
        or one.client_indices[0].tolist() != other.client_indices[0].tolist()
    )


def test_missing_inputs_change_nothing_else_and_only_multimodal_clients(federation_of):
    plain, _ = federation_of()
    masked, labels = federation_of(*RATES)
    assert plain.schedule == masked.schedule and plain.modalities == masked.modalities
    assert all(np.array_equal(a, b) for a, b in zip(plain.client_indices, masked.client_indices))
    assert set(masked.missing) == {c for c, m in enumerate(masked.modalities) if m == "av"}
    assert plain.missing == {}
    manifest = masked.manifest(labels, [str(c) for c in range(int(labels.max()) + 1)])
    summary = manifest["missing"]
    assert summary["missing_rate_a"] == 0.3 and summary["missing_rate_v"] == 0.4
    assert summary["realised_rate_a"] == pytest.approx(0.3, abs=0.08)
    assert summary["realised_rate_v"] == pytest.approx(0.4, abs=0.08)
    dropped = sum(m.counts()["both_missing_dropped"] for m in masked.missing.values())
    assert summary["both_missing_dropped"] == dropped > 0


def test_missing_rates_are_validated():
    with pytest.raises(ConfigError, match="federation.missing_rate_a"):
        load_config(None, ["federation.missing_rate_a=1.0"])


def test_client_data_zeroes_missing_rows_and_drops_samples_missing_both():
    x = torch.arange(1, 6, dtype=torch.float32)[:, None].repeat(1, 2)
    train = Split(x_a=x, x_v=-x, y=torch.arange(5))
    missing = Missing(
        present_a=np.array([True, False, True, False, True]),
        present_v=np.array([True, True, False, False, True]),
    )
    client = make_client_data(train, np.arange(5), "av", 0, torch.device("cpu"), missing)
    assert client.y.tolist() == [0, 1, 2, 4]  # sample 3 holds neither input
    assert client.mask_a.tolist() == [True, False, True, True]
    assert client.mask_v.tolist() == [True, True, False, True]
    assert client.x_a[:, 0].tolist() == [1.0, 0.0, 3.0, 5.0]
    assert client.x_v[:, 0].tolist() == [-1.0, -2.0, 0.0, -5.0]


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_no_loss_term_reads_a_missing_input(make_engine, make_config, name):
    """Local training from the same global state on two copies of a client that differ
    only in what the missing rows hold gives the same model, report and logs."""
    cfg = make_config(f"algorithm.name={name}", "rounds=3", *RATES)
    engine = make_engine(cfg)
    fed = engine.federation
    engine.run_round(0)  # past FedCMI's warm-up: the infiltration term is on in round 1
    cid = next(iter(fed.missing))
    clean = engine.clients[cid]
    generator = torch.Generator().manual_seed(0)

    def noisy(x, mask):
        filler = torch.randn(x.shape, generator=generator) * 100
        return torch.where(mask.view(-1, *[1] * (x.dim() - 1)), x, filler)

    dirty = dataclasses.replace(
        clean, x_a=noisy(clean.x_a, clean.mask_a), x_v=noisy(clean.x_v, clean.mask_v)
    )
    assert not torch.equal(dirty.x_a, clean.x_a)
    runs = [
        engine.trainer.train(c, engine.global_state, 1, memory=engine.memory)
        for c in (clean, dirty)
    ]
    (u1, logs1), (u2, logs2) = runs
    assert logs1 == logs2
    for key in u1.state:
        assert torch.equal(u1.state[key], u2.state[key]), key
    for key in u1.report:
        assert torch.equal(u1.report[key], u2.report[key]), key


def test_fedcmi_fills_a_missing_slot_with_the_infiltration_projection():
    torch.manual_seed(0)
    model = FedCMIModel(torch.nn.Linear(3, 4), torch.nn.Linear(2, 4), 4, 5)
    x_a, x_v = torch.randn(3, 3), torch.randn(3, 2)
    mask_a = torch.tensor([True, False, True])
    mask_v = torch.tensor([True, True, False])
    out = model(x_a, x_v, "av", mask_a, mask_v)
    aa, av = model.project_a(x_a)
    vv, va = model.project_v(x_v)
    torch.testing.assert_close(out[0], model.fuse(aa, vv)[0])
    torch.testing.assert_close(out[1], model.fuse(va, vv)[1])  # a missing: va fills it
    torch.testing.assert_close(out[2], model.fuse(aa, av)[2])  # v missing: av fills it
