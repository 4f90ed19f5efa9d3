"""The speed benchmark: the reference-style loop matches the engine, rows are complete."""

import json

import pytest
import torch

from fedcmi.core.phases import PhaseLog
from fedcmi.data import load_dataset
from fedcmi.engine.federation import build_federation
from fedcmi.engine.speed import resolve_precision
from fedcmi.tools.bench_speed import BENCH_ROUND, Workload, bench_workload, reference_round


def test_reference_loop_and_engine_give_identical_client_states(make_engine, make_config):
    cfg = make_config("federation.multimodal_ratio=0.5", "train.batch_size=8")
    engine = make_engine(cfg)
    data, fed = engine.run.data, engine.federation
    engine.run_round(0)  # past warm-up, so round 1 exercises the infiltration loss
    host = [data.train.subset(torch.as_tensor(idx)) for idx in fed.client_indices]
    log = PhaseLog(torch.device("cpu"))
    reference = reference_round(engine, host, round_idx=1, timer=log)
    assert [u.cid for u in reference] == engine.federation.schedule[1]
    for ref in reference:
        update, _ = engine.trainer.train(engine.clients[ref.cid], engine.global_state, 1)
        assert ref.num_samples == update.num_samples
        for key, value in update.state.items():
            assert torch.equal(value, ref.state[key]), (ref.cid, key)
    seconds = log.seconds()
    assert seconds["forward"] > 0 and seconds["backward"] > 0 and seconds["step"] > 0


@pytest.mark.slow
def test_bench_reports_every_variant_and_benches_a_post_warm_up_round(make_config):
    cfg = make_config("algorithm.warmup_rounds=1")
    work = Workload("synthetic", cfg, load_dataset(cfg.data.name, cfg.data.params))
    seen = []
    rows = bench_workload(work, torch.device("cpu"), on_row=seen.append)
    assert seen == rows
    assert [r["variant"] for r in rows] == ["reference", "default", "tuned"]
    assert rows[0]["speedup_vs_reference"] == 1.0
    assert rows[2]["precision"] == "auto" and rows[2]["channels_last"] is True
    chosen = resolve_precision("auto", torch.device("cpu"))  # the tuned row says what auto chose
    assert (rows[2]["precision_used"], rows[2]["precision_reason"]) == (chosen.name, chosen.reason)
    assert rows[1]["precision_used"] == "fp32"
    fed = build_federation(work.data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
    expected = sum(len(fed.client_indices[c]) for c in fed.schedule[BENCH_ROUND])
    for row in rows:
        assert row["samples"] == expected * cfg.train.local_epochs
        assert row["samples_per_second"] > 0 and 0.0 <= row["outside_share"] < 1.0
        # Evaluation is timed apart from the training round, and both make the whole.
        assert row["evaluation_seconds"] > 0
        whole = row["seconds_per_round"] + row["evaluation_seconds"]
        assert whole == pytest.approx(row["seconds_with_evaluation"], abs=2e-3)
        json.dumps(row)  # every field is JSON-ready


def test_cli_writes_json_after_every_row(make_config, tmp_path, monkeypatch):
    import fedcmi.tools.bench_speed as bench
    from fedcmi.cli import main

    cfg = make_config("algorithm.warmup_rounds=1")
    work = Workload("synthetic", cfg, load_dataset(cfg.data.name, cfg.data.params))
    monkeypatch.setattr(bench, "av_digits", lambda: work)
    out = tmp_path / "speed.json"
    assert main(["bench", "speed", "--workload", "av-digits", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["reference", "default", "tuned"]


def test_crema_shaped_workload_has_cremas_shapes_dtypes_and_split_sizes():
    from fedcmi.tools.bench_speed import crema_shaped

    work = crema_shaped(scale=0.02, epochs=1)
    data = work.data
    # 335 x 0.02 -> 7 clips per client; 744 x 0.02 -> 15 val and 15 test clips.
    assert (len(data.train), len(data.val), len(data.test)) == (35, 15, 15)
    assert data.train.x_a.shape[1:] == (257, 299) and data.train.x_a.dtype == torch.float16
    assert data.train.x_v.shape[1:] == (2, 224, 224, 3) and data.train.x_v.dtype == torch.uint8
    assert work.cfg.federation.clients_per_round == 5 and work.cfg.train.batch_size == 64


def test_compiled_rows_come_after_every_workloads_main_rows(monkeypatch):
    import fedcmi.tools.bench_speed as bench

    calls = []

    def fake_bench_workload(work, device, labels, on_row=None, reference_seconds=None):
        calls.append((work.name, labels, reference_seconds))
        return [{"workload": work.name, "variant": v, "seconds_per_round": 2.0} for v in labels]

    monkeypatch.setattr(bench, "bench_workload", fake_bench_workload)
    monkeypatch.setattr(bench, "crema_shaped", lambda scale, epochs: Workload("crema", None, None))
    monkeypatch.setattr(bench, "av_digits", lambda: Workload("digits", None, None))
    bench.bench_speed(["crema-shaped", "av-digits"], 0.1, 1, compile_=True)
    main = ("reference", "default", "tuned")
    assert calls == [
        ("crema", main, None),
        ("digits", main, None),
        ("crema", ("tuned+compile",), 2.0),  # ratio to the crema reference row
        ("digits", ("tuned+compile",), 2.0),
    ]
