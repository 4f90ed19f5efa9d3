"""``fedcmi bench engines``: per-round wall time of the same workload on the embedded
engine, Flower's simulation engine and (optionally) a loopback TLS deployment."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from fedcmi.config import Config, FaultsConfig, load_config
from fedcmi.engine.run_folder import RunFolder, Summary
from fedcmi.errors import RunFailure

DEFAULT_WORKLOAD = [
    "data.name=synthetic",
    "rounds=5",
    "federation.num_clients=4",
    "federation.clients_per_round=2",
    "federation.min_client_size=5",
    "train.local_epochs=1",
    "model.feature_dim=32",
    "engine.threads=1",
]


def _timed(fn: Callable[[], Summary]) -> tuple[Summary, float]:
    started = time.perf_counter()
    summary = fn()
    return summary, time.perf_counter() - started


def bench_engines(cfg: Config, deployment: bool = False) -> dict[str, Any]:
    from fedcmi.engine.runner import run_experiment

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        summary, wall = _timed(lambda: run_experiment(cfg, work / "embedded"))
        results["embedded"] = _row(summary, wall)
        from fedcmi.flower.simulation import run_flower_simulation

        summary, wall = _timed(lambda: run_flower_simulation(cfg, work / "simulation"))
        results["flower-simulation"] = _row(summary, wall)
        if deployment:
            results["flower-deployment"] = _bench_deployment(cfg, work)
    base = results["embedded"]["seconds_per_round"]
    for row in results.values():
        row["ratio_to_embedded"] = round(row["seconds_per_round"] / base, 2) if base else None
    return results


def _bench_deployment(cfg: Config, work: Path) -> dict[str, Any]:
    from fedcmi.flower.certs import make_certificates
    from fedcmi.flower.deployment import flwr_run, tls_deployment

    config = work / "run.toml"
    config.write_text(cfg.to_toml())
    certs = make_certificates(work / "certs")
    out = work / "deployment"
    started = time.perf_counter()
    with tls_deployment(work, cfg.federation.num_clients, certs, work / "cache") as (env, conn):
        result = flwr_run(env, conn, config, out, timeout=1800)
    if result.returncode != 0:
        raise RunFailure(f"flwr run failed: {result.stderr[-2000:]}")
    return _row(RunFolder(out).summary(), time.perf_counter() - started)


def _row(summary: Summary, wall: float) -> dict[str, Any]:
    return {
        "rounds": summary.rounds,
        "seconds_per_round": summary.seconds_per_round,
        "startup_seconds": round(wall - summary.train_seconds, 2),
        "total_seconds": round(wall, 2),
        "final_test_acc": summary.last["test"]["acc"],
    }


def default_workload(overrides: list[str]) -> Config:
    return load_config(None, DEFAULT_WORKLOAD + overrides)


FAULT_MIX = FaultsConfig(drop_rate=0.2, nan_rate=0.1, slow_rate=0.1, shape_rate=0.05)


def bench_faults(cfg: Config) -> dict[str, Any]:
    """The same run without and with a seeded fault mix, on the embedded engine."""
    from fedcmi.engine.runner import run_experiment

    faulty = replace(
        cfg, faults=FAULT_MIX, robustness=replace(cfg.robustness, client_timeout=600.0)
    )
    out: dict[str, Any] = {"fault_mix": asdict(FAULT_MIX)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, run_cfg in (("fault-free", cfg), ("faulty", faulty)):
            summary = run_experiment(run_cfg, Path(tmp) / label)
            records = RunFolder(Path(tmp) / label).records()
            rejected = [r for rec in records for r in rec.rejected]
            dropped = [r for r in rejected if r["reason"].startswith(("raised", "exceeded"))]
            out[label] = {
                "rounds_completed": len(records),
                "clients_dropped": len(dropped),
                "updates_rejected": len(rejected) - len(dropped),
                "round_retries": sum(rec.attempts - 1 for rec in records),
                "final_test_acc": summary.last["test"]["acc"],
                "best_val_round_test_acc": summary.best["test"]["acc"],
            }
    return out
