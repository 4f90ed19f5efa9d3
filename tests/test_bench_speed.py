"""The reference-style loop and the engine compute identical updates in fp32."""

import torch

from fedcmi.bench_speed import bench_workload, reference_round
from fedcmi.data import load_dataset
from fedcmi.engine import EmbeddedEngine
from fedcmi.federation import build_federation
from tests.conftest import synthetic_config


def test_reference_loop_and_engine_give_identical_client_states():
    cfg = synthetic_config("federation.multimodal_ratio=0.5", "train.batch_size=8")
    data = load_dataset(cfg.data.name, cfg.data.params)
    fed = build_federation(data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
    engine = EmbeddedEngine(cfg, data, fed, torch.device("cpu"))
    engine.run_round(0)  # past warm-up, so round 1 exercises the infiltration loss
    host = [data.train.subset(torch.as_tensor(idx)) for idx in fed.client_indices]
    timer: dict = {}
    reference = reference_round(engine, host, timer, round_idx=1)
    for cid, ref_state in zip(engine.federation.schedule[1], reference):
        update, _ = engine.trainer.train(engine.clients[cid], engine.global_state, 1)
        for key, value in update.state.items():
            assert torch.equal(value, ref_state[key]), (cid, key)
    assert timer["forward"] > 0 and timer["backward"] > 0 and timer["step"] > 0


def test_bench_reports_every_variant():
    from fedcmi.bench_speed import Workload

    cfg = synthetic_config()
    work = Workload("synthetic", cfg, load_dataset(cfg.data.name, cfg.data.params))
    rows = bench_workload(work, torch.device("cpu"))
    assert [r["variant"] for r in rows] == ["reference", "default", "fastest"]
    assert rows[0]["speedup_vs_reference"] == 1.0
    for row in rows:
        assert row["samples_per_second"] > 0 and 0.0 <= row["outside_share"] <= 1.0
