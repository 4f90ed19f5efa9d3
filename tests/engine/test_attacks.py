"""Malicious clients: finite attacks, seeded like the other faults, checked by hand."""

import pytest
import torch

from fedcmi.config import FaultsConfig
from fedcmi.core.aggregation import ClientUpdate
from fedcmi.core.training import ClientData
from fedcmi.engine.attacks.label_flip import flip_labels
from fedcmi.engine.faults import attack_generator, attack_of, malicious_clients, poison
from fedcmi.engine.runner import run_experiment

GLOBAL = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
HONEST = ClientUpdate(0, "av", 10, {"w": torch.tensor([2.0, 0.0]), "n": torch.tensor(4)})


def test_sign_flip_and_scale_by_hand():
    # theta - g = [1, -2]; sign-flip f=4: g - 4 [1, -2] = [-3, 10]; scale: g + 4 [1, -2]
    flip = poison(HONEST, GLOBAL, FaultsConfig(attack="sign-flip", attack_factor=4.0), None)
    scale = poison(HONEST, GLOBAL, FaultsConfig(attack="scale", attack_factor=4.0), None)
    assert flip.state["w"].tolist() == [-3.0, 10.0]
    assert scale.state["w"].tolist() == [5.0, -6.0]
    assert flip.state["n"] == 4 and scale.num_samples == 10  # integers and counts untouched


def test_noise_has_the_requested_norm_and_is_seeded():
    faults = FaultsConfig(attack="noise", attack_norm=3.0)
    a = poison(HONEST, GLOBAL, faults, attack_generator(0, 1, 2, 0))
    b = poison(HONEST, GLOBAL, faults, attack_generator(0, 1, 2, 0))
    c = poison(HONEST, GLOBAL, faults, attack_generator(0, 1, 3, 0))
    assert float((a.state["w"] - HONEST.state["w"]).norm()) == pytest.approx(3.0, rel=1e-6)
    assert torch.equal(a.state["w"], b.state["w"]) and not torch.equal(a.state["w"], c.state["w"])


def test_label_flipping_maps_y_to_c_minus_1_minus_y():
    client = ClientData(0, "av", None, None, torch.tensor([0, 1, 3]))
    assert flip_labels(client, 4).y.tolist() == [3, 2, 0]


def test_the_malicious_set_is_fixed_by_the_seed(make_config):
    cfg = make_config("faults.malicious_clients=2", "faults.attack=scale")
    bad = malicious_clients(cfg)
    assert len(bad) == 2 and bad == malicious_clients(cfg)
    assert [attack_of(cfg, c) for c in range(cfg.federation.num_clients)].count("scale") == 2
    assert malicious_clients(make_config()) == frozenset()


@pytest.mark.slow
def test_a_scaling_attacker_breaks_the_mean_and_the_median_resists(make_config, tmp_path):
    common = [
        "federation.num_clients=5",
        "federation.clients_per_round=5",
        "federation.alpha=100.0",
        "rounds=5",
        "train.local_epochs=2",
        "data.signal_v=3.0",
        "faults.malicious_clients=1",
        "faults.attack=scale",
        "faults.attack_factor=50.0",
    ]
    clean = run_experiment(make_config(*common[:6]), tmp_path / "clean")
    mean = run_experiment(make_config(*common), tmp_path / "mean")
    median = run_experiment(make_config(*common, "robustness.rule=median"), tmp_path / "median")
    acc = {
        k: s.last["test"]["acc"] for k, s in [("clean", clean), ("mean", mean), ("median", median)]
    }
    assert acc["mean"] < acc["clean"] - 0.2, acc
    assert acc["median"] > acc["mean"] + 0.2, acc
