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
from fedcmi.engine.rounds import RoundFailedError
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


# The malicious-client table: every attack against every server rule, 1 and 2 attackers
# among 5 clients that all take part in every round.
ATTACK_WORKLOAD = ["federation.num_clients=5", "federation.clients_per_round=5", "rounds=30"]
ATTACKS = ("sign-flip", "scale", "noise", "label-flip")
ATTACKERS = (1, 2)
# clip-norm: honest per-side updates measure 0.5-1.5 on this workload (L2, round 1-12).
RULES = {
    "mean": ["robustness.rule=mean"],
    "median": ["robustness.rule=median"],
    "trimmed-mean": ["robustness.rule=trimmed-mean", "robustness.trim_fraction=0.2"],
    "clip-norm": ["robustness.rule=mean", "robustness.clip_norm=1.0"],
}


def attack_cells() -> list[tuple[str, int]]:
    """(attack, attackers) of every row, the fault-free row first."""
    return [("none", 0)] + [(a, k) for a in ATTACKS for k in ATTACKERS]


def bench_attacks(
    preset: Path,
    overrides: list[str],
    on_cell: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Last-rounds test accuracy (fused, weak modality zero-filled) and the weak
    encoder's linear probe for every (attack, attackers, rule); the weak modality is v."""
    from fedcmi.engine.runner import run_experiment

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for attack, k in attack_cells():
            for rule, rule_sets in RULES.items():
                sets = [*ATTACK_WORKLOAD, *overrides, *rule_sets]
                if k:
                    sets += [f"faults.malicious_clients={k}", f"faults.attack={attack}"]
                cfg = load_config(preset, sets)
                row: dict[str, Any] = {"attack": attack, "attackers": k, "rule": rule}
                try:
                    summary = run_experiment(cfg, Path(tmp) / f"{attack}-{k}-{rule}")
                except RoundFailedError as exc:  # the global model was destroyed
                    row.update(acc=None, acc_v=None, probe_v=None, failed=str(exc))
                else:
                    test = summary.last_mean["test"]
                    row.update(acc=test["acc"], acc_v=test.get("acc_v"), probe_v=summary.probe_v)
                rows.append(row)
                if on_cell is not None:
                    on_cell(row)
    return rows


def attack_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per (attack, attackers), fused / weak accuracy per rule."""
    header = "| attack | attackers of 5 | " + " | ".join(RULES) + " |"
    lines = [header, "|---|---|" + "---|" * len(RULES)]
    for attack, k in attack_cells():
        cells = []
        for rule in RULES:
            row = next(
                r for r in rows if (r["attack"], r["attackers"], r["rule"]) == (attack, k, rule)
            )
            if row["acc"] is None:
                cells.append("diverged (round " + row["failed"].split(":")[0].split()[-1] + ")")
                continue
            weak = "–" if row["acc_v"] is None else f"{row['acc_v']:.3f}"
            cells.append(f"{row['acc']:.3f} / {weak}")
        lines.append(f"| {attack} | {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_engines(cfg: Config, results: dict[str, Any]) -> None:
    """``fedcmi bench``'s table: seconds per round and start-up per engine."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"engines: {cfg.algorithm.name} on {cfg.data.name}, {cfg.rounds} rounds, "
        f"{cfg.federation.num_clients} clients"
    )
    for col in ("engine", "s/round", "x embedded", "start-up s", "total s", "test acc"):
        table.add_column(col, justify="right")
    for name, row in results.items():
        table.add_row(
            name,
            f"{row['seconds_per_round']:.3f}",
            f"{row['ratio_to_embedded']:.1f}",
            f"{row['startup_seconds']:.1f}",
            f"{row['total_seconds']:.1f}",
            f"{row['final_test_acc']:.4f}",
        )
    Console(width=120).print(table)


def attack_line(row: dict[str, Any]) -> str:
    """One measured attack cell of ``fedcmi bench faults``, as it finishes."""
    head = f"  {row['attack']:10s} {row['attackers']} of 5  {row['rule']:12s} "
    if row["acc"] is None:
        return head + f"diverged: {row['failed'][:80]}"
    weak = "–" if row["acc_v"] is None else f"{row['acc_v']:.4f}"
    return head + f"acc {row['acc']:.4f}  acc_v {weak}"


def print_fault_mix(result: dict[str, Any]) -> None:
    """``fedcmi bench faults``' fault-mix table: the faulty run beside the fault-free one."""
    print(f"fault mix: {result['fault_mix']} (client_timeout 600 s; slow = over the timeout)")
    print(
        f"{'':12s} {'rounds':>7s} {'dropped':>8s} {'rejected':>9s} {'retries':>8s} "
        f"{'final acc':>10s} {'best-val acc':>13s}"
    )
    for label in ("fault-free", "faulty"):
        r = result[label]
        print(
            f"{label:12s} {r['rounds_completed']:7d} {r['clients_dropped']:8d} "
            f"{r['updates_rejected']:9d} {r['round_retries']:8d} {r['final_test_acc']:10.4f} "
            f"{r['best_val_round_test_acc']:13.4f}"
        )
