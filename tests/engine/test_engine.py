"""The embedded engine and FedCMI's local training on the synthetic dataset."""

import json

import pytest
import torch

from fedcmi.algorithms import ALGORITHMS
from fedcmi.config import TrainConfig
from fedcmi.data import load_dataset
from fedcmi.engine.embedded import ClientTrainer
from fedcmi.engine.evaluation import Evaluator
from fedcmi.engine.runner import RunDirError, run_experiment
from fedcmi.engine.schedule import client_generator, lr_at


def test_two_identical_runs_write_identical_metrics(make_config, tmp_path):
    cfg = make_config("federation.multimodal_ratio=0.5")
    run_experiment(cfg, tmp_path / "one")
    run_experiment(cfg, tmp_path / "two")
    one = (tmp_path / "one" / "metrics.jsonl").read_bytes()
    assert one == (tmp_path / "two" / "metrics.jsonl").read_bytes()
    assert len(one.splitlines()) == 2


def test_different_seed_changes_metrics(make_config, tmp_path):
    run_experiment(make_config(), tmp_path / "one")
    run_experiment(make_config("seed=1"), tmp_path / "two")
    assert (tmp_path / "one" / "metrics.jsonl").read_text() != (
        tmp_path / "two" / "metrics.jsonl"
    ).read_text()


def test_run_folder_is_self_describing(make_config, tmp_path):
    out = tmp_path / "run"
    summary = run_experiment(make_config(), out)
    assert {p.name for p in out.iterdir()} == {
        "config.toml",
        "manifest.json",
        "metrics.jsonl",
        "summary.json",
        "final.pt",
        "checkpoints",
    }
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # 2 rounds, smoothing over 3: round 2 scores the mean of both, round 1 its own value
    mean_both = (records[0]["val"]["acc"] + records[1]["val"]["acc"]) / 2
    best = records[1] if mean_both >= records[0]["val"]["acc"] else records[0]
    assert summary.best_round == best["round"]
    assert summary.best["test"]["acc"] == best["test"]["acc"]
    assert summary.last["test"]["acc"] == records[-1]["test"]["acc"]
    # the primary figure: the mean over the last 5 rounds (here both)
    expected = (records[0]["test"]["acc"] + records[1]["test"]["acc"]) / 2
    assert summary.last_mean["test"]["acc"] == pytest.approx(expected)
    assert summary.last_rounds == 2 and summary.val_gain is None
    # probes of the final model's encoders: the label-rich modality a (signal 3) probes
    # better than v (signal 1), and the figure is the final state's
    assert summary.probe_a > summary.probe_v > 0.25
    cfg = make_config()
    data = load_dataset("synthetic", cfg.data.params)
    trainer = ClientTrainer(cfg, data, torch.device("cpu"), "fp32")
    evaluator = Evaluator(cfg.eval, data, trainer.model, torch.device("cpu"))
    probes = evaluator.probes(torch.load(out / "final.pt", weights_only=True))
    assert probes == {"probe_a": summary.probe_a, "probe_v": summary.probe_v}
    for key in (
        "acc",
        "acc_a",
        "acc_v",
        "acc_av",
        "acc_va",
        "acc_a_head",
        "acc_v_head",
        "imbalance_ratio",
    ):
        assert key in records[-1]["test"]
    assert len(records[-1]["test"]["per_class_acc"]) == 4
    state = torch.load(out / "final.pt", weights_only=True)
    assert "fusion.weight" in state
    with pytest.raises(RunDirError, match="not empty"):
        run_experiment(make_config(), out)


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_algorithm_learns_on_synthetic(make_config, tmp_path, name):
    cfg = make_config(
        f"algorithm.name={name}",
        "rounds=4",
        "train.local_epochs=2",
        "federation.multimodal_ratio=0.5",
        "data.signal_v=3.0",  # both modalities informative, so unimodal-v can learn too
    )
    summary = run_experiment(cfg, tmp_path / name)
    assert summary.last["test"]["acc"] > 0.5  # 4 classes: chance is 0.25


def test_warmup_round_has_no_temperatures_then_class_wise_ones(make_engine, make_config):
    engine = make_engine(make_config())
    first = engine.run_round(0).client_logs
    second = engine.run_round(1).client_logs
    assert all("temperatures" not in c for c in first)
    assert all(len(c["temperatures"]) == 4 for c in second)
    assert all(0 < t <= 1 for c in second for t in c["temperatures"])
    assert all(0.0 <= c["a_dominant_frac"] <= 1.0 for c in first + second)


def test_uniform_temperature_ablation_logs_ones(make_engine, make_config):
    engine = make_engine(make_config("algorithm.temperature=uniform"))
    engine.run_round(0)
    logs = engine.run_round(1).client_logs
    assert all(c["temperatures"] == [1.0] * 4 for c in logs)


@pytest.fixture
def trained(make_engine):
    """The global state and last record after ``rounds`` rounds of ``cfg``."""

    def train(cfg, rounds=2):
        engine = make_engine(cfg)
        records = [engine.run_round(t) for t in range(rounds)]
        return engine.global_state, records[-1]

    return train


# Each switch, and what it must change against the full method after 2 rounds: the
# parameter names (a part removed or added) or only their trained values.
ABLATIONS = {
    "algorithm.teacher=local": "values",
    "algorithm.infiltration_projector=false": "names",
    "algorithm.shared_classifier=false": "names",
    "algorithm.prox_mu=0.0": "values",
    "model.projector=mlp": "names",
}


@pytest.mark.parametrize("override", ABLATIONS)
def test_each_ablation_switch_changes_what_is_trained(trained, make_config, override):
    full_state, full = trained(make_config())
    state, record = trained(make_config(override))
    if ABLATIONS[override] == "names":
        assert set(state) != set(full_state)
    else:
        assert set(state) == set(full_state)
        assert any(not torch.equal(state[k], full_state[k]) for k in state)
    # Without an infiltration projector there is no infiltration fill to evaluate.
    has_fill = override != "algorithm.infiltration_projector=false"
    assert ("acc_va" in record.test) == has_fill and "acc_va" in full.test
    again, _ = trained(make_config(override))  # and the switch is reproducible
    assert all(torch.equal(again[k], state[k]) for k in state)


def test_teacher_stays_frozen_at_the_global_state(make_engine, make_config):
    engine = make_engine(make_config())
    engine.run_round(0)
    global_before = {k: v.clone() for k, v in engine.global_state.items()}
    engine.train_client(engine.federation.schedule[1][0], 1)
    teacher = engine.algorithm._teacher
    assert teacher is not None and not teacher.training
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, global_before[key]), key
    assert all(not p.requires_grad for p in teacher.parameters())


def test_a_only_client_never_touches_the_v_side_or_the_a_head(make_engine, make_config):
    cfg = make_config(
        "federation.multimodal_ratio=0.0",
        "federation.num_clients=2",
        "federation.clients_per_round=1",
    )
    engine = make_engine(cfg)
    cid = engine.federation.modalities.index("a")
    update, _ = engine.train_client(cid, 1)
    for key, value in update.state.items():
        changed = not torch.equal(value, engine.global_state[key])
        if key.startswith(("enc_v", "self_v", "inf_v", "head_v", "head_a")):
            assert not changed, key
        if key.startswith(("enc_a.", "self_a", "inf_a", "fusion")) and key.endswith("weight"):
            assert changed, key


def test_lr_schedule_is_constant_then_linear():
    train = TrainConfig(lr=0.1, lr_min=0.01, lr_decay_start=2)
    assert [round(lr_at(t, train, 5), 6) for t in range(5)] == [0.1, 0.1, 0.1, 0.055, 0.01]
    assert lr_at(4, TrainConfig(lr=0.1), 5) == 0.1


def test_client_generator_depends_on_seed_round_and_client():
    draws = {
        key: torch.randperm(50, generator=client_generator(*key)).tolist()
        for key in [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 0, 0)]
    }
    assert len({tuple(v) for v in draws.values()}) == 4
    assert torch.randperm(50, generator=client_generator(0, 0, 0)).tolist() == draws[(0, 0, 0)]


def test_unwritable_or_full_output_folder_is_refused_before_training(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from fedcmi.engine import run_folder

    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10, 10, 5 * 2**20))
    with pytest.raises(RunDirError, match="MiB free"):
        run_folder.prepare_run_dir(tmp_path / "run")
