"""Client faults (crash, timeout, NaN, shape), retries and robust aggregation."""

import json

import pytest
import torch

from fedcmi.config import RobustnessConfig
from fedcmi.core.aggregation import ClientUpdate, aggregate, coordinate_median, trimmed_mean
from fedcmi.engine.faults import validate_update
from fedcmi.engine.rounds import RoundFailedError
from fedcmi.engine.runner import run_experiment
from fedcmi.models import side_of


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_median_and_trimmed_mean_by_hand():
    assert coordinate_median([t(1.0), t(2.0), t(10.0)]).tolist() == [2.0]
    assert coordinate_median([t(1.0), t(2.0), t(3.0), t(100.0)]).tolist() == [2.5]
    # trim 0.25 of 4 values drops one at each end: mean(2, 3) = 2.5
    assert trimmed_mean([t(1.0), t(2.0), t(3.0), t(100.0)], 0.25).tolist() == [2.5]
    assert trimmed_mean([t(1.0), t(5.0)], 0.0).tolist() == [3.0]


def test_robust_rules_resist_one_outlier():
    g = {"enc_a.w": t(0.0, 0.0), "fusion.w": t(0.0, 0.0)}
    ups = [
        ClientUpdate(i, "av", 10, {k: t(v, v) for k in g}) for i, v in enumerate((1.0, 1.2, 1e6))
    ]
    mean = aggregate(g, ups, side_of, True)["fusion.w"]
    median = aggregate(g, ups, side_of, True, RobustnessConfig(rule="median"))["fusion.w"]
    assert float(mean[0]) > 1e5 and median.tolist() == pytest.approx([1.2, 1.2])


def test_update_norm_clipping_per_side():
    g = {"enc_a.w": t(0.0, 0.0), "enc_v.w": t(0.0, 0.0), "fusion.w": t(0.0)}
    up = ClientUpdate(
        0, "av", 1, {"enc_a.w": t(3.0, 4.0), "enc_v.w": t(0.3, 0.4), "fusion.w": t(2.0)}
    )
    new = aggregate(g, [up], side_of, True, RobustnessConfig(clip_norm=1.0))
    assert new["enc_a.w"].tolist() == pytest.approx([0.6, 0.8])  # norm 5 scaled to 1
    assert new["enc_v.w"].tolist() == pytest.approx([0.3, 0.4])  # norm 0.5: untouched
    assert new["fusion.w"].tolist() == pytest.approx([1.0])


def test_validate_update_reasons():
    g = {"a.w": t(0.0, 0.0), "a.n": torch.tensor(3)}
    ok = ClientUpdate(0, "av", 5, {"a.w": t(1.0, 2.0), "a.n": torch.tensor(4)})
    assert validate_update(ok, g) is None
    bad_shape = ClientUpdate(0, "av", 5, {"a.w": t(1.0), "a.n": torch.tensor(4)})
    assert "shape" in validate_update(bad_shape, g)
    nan = ClientUpdate(0, "av", 5, {"a.w": t(float("nan"), 0.0), "a.n": torch.tensor(4)})
    assert "non-finite" in validate_update(nan, g)
    assert "names" in validate_update(ClientUpdate(0, "av", 5, {"a.w": t(1.0, 2.0)}), g)


def records(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ("faults.drop_rate=0.5", "injected crash"),
        ("faults.nan_rate=0.5", "non-finite"),
        ("faults.shape_rate=0.5", "shape"),
        ("faults.slow_rate=0.5", "client_timeout"),
    ],
)
def test_faulty_clients_are_left_out_with_their_reason(make_config, tmp_path, faults, reason):
    cfg = make_config(
        faults, "robustness.client_timeout=600.0", "rounds=4", "federation.clients_per_round=3"
    )
    summary = run_experiment(cfg, tmp_path / "run")
    rejected = [r for rec in records(tmp_path / "run") for r in rec.get("rejected", [])]
    assert rejected and all(reason in r["reason"] for r in rejected)
    assert summary.rounds == 4


def test_round_fails_clearly_after_retries_and_stays_resumable(make_config, tmp_path):
    cfg = make_config("faults.nan_rate=1.0", "robustness.max_round_retries=1")
    with pytest.raises(RoundFailedError, match=r"0 of 2 clients succeeded.*non-finite"):
        run_experiment(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_raising_client_is_recorded(make_config, tmp_path, monkeypatch):
    from fedcmi.algorithms.fedcmi import FedCMI

    real = FedCMI.local_train

    def sometimes_broken(self, model, global_state, client, ctx):
        if client.cid == 0:
            raise RuntimeError("disk on fire")
        return real(self, model, global_state, client, ctx)

    monkeypatch.setattr(FedCMI, "local_train", sometimes_broken)
    cfg = make_config("federation.clients_per_round=4", "federation.num_clients=4")
    run_experiment(cfg, tmp_path / "run")
    rejected = records(tmp_path / "run")[0]["rejected"]
    assert rejected[0]["cid"] == 0 and "disk on fire" in rejected[0]["reason"]


def test_fault_bench_counts_drops_and_rejections(make_config):
    from fedcmi.tools.bench import bench_faults

    result = bench_faults(make_config("rounds=6", "federation.clients_per_round=3"))
    clean, faulty = result["fault-free"], result["faulty"]
    assert clean["clients_dropped"] == clean["updates_rejected"] == 0
    assert faulty["rounds_completed"] == 6
    assert faulty["clients_dropped"] + faulty["updates_rejected"] > 0
