"""``fedcmi bench scale``: how a round's cost grows with the number of clients.

Two sweeps on the embedded engine, FedCMI on the synthetic dataset (MLP encoders), each
configuration in a fresh process so its peak memory is its own:

1. **clients per round** at a fixed number of samples per round: 5, 50 and 500 clients
   share the same training samples (all take part every round), so a round does the same
   arithmetic split into more, smaller clients; at 500 each client holds one batch.
2. **clients in the federation** with 10 taking part per round: 20 to 10,000 clients,
   each with a few samples; the set-up (dataset split, schedule, client partitions on
   the device, engine) and one round are timed.

Rows: set-up seconds, seconds per round (the round after the warm-up round, training +
aggregation + evaluation), peak resident memory of the process (MiB) and the growth of
resident memory from before the set-up to after the round.
"""

from __future__ import annotations

import multiprocessing
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

SAMPLES_PER_ROUND = 2_000  # training samples shared by the clients in sweep 1
PER_ROUND = (5, 50, 500)
FEDERATION = (20, 100, 1_000, 10_000)
FEDERATION_SAMPLES_PER_CLIENT = 20


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:  # resident pages now (Linux)
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _measure(overrides: list[str]) -> dict[str, Any]:
    """Worker: set up, warm-up round, timed round; in its own process."""
    import torch

    from fedcmi.config import load_config
    from fedcmi.engine.embedded import EmbeddedEngine
    from fedcmi.engine.setup import set_up

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = load_config(None, ["engine.device=cpu", *overrides])
    before = _rss_mib()
    started = time.perf_counter()
    run = set_up(cfg, torch_settings=False)  # the bench keeps torch's own thread count
    data = run.data
    engine = EmbeddedEngine(run)
    setup = time.perf_counter() - started
    engine.run_round(0)  # FedCMI's warm-up round: no teacher yet
    started = time.perf_counter()
    engine.run_round(1)
    seconds = time.perf_counter() - started
    return {
        "setup_seconds": round(setup, 3),
        "seconds_per_round": round(seconds, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_growth_mib": round(_rss_mib() - before, 1),
        "train_samples": len(data.train),
    }


def _in_fresh_process(overrides: list[str]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return dict(pool.apply(_measure, (overrides,)))


def _base(num_classes: int, per_class: int) -> list[str]:
    return [
        "data.name=synthetic",
        f"data.num_classes={num_classes}",
        f"data.per_class={per_class}",
        "data.val_fraction=0.05",
        "data.test_fraction=0.05",
        "rounds=2",
        "train.local_epochs=1",
        "train.batch_size=64",
        "federation.alpha=1000.0",
        "federation.min_client_size=1",
        "engine.checkpoint_every=0",
    ]


def per_round_rows(on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict]:
    """Sweep 1: the same samples per round split over 5, 50, 500 clients."""
    rows = []
    per_class = round(SAMPLES_PER_ROUND / 0.9 / 4)  # 90 % of the pool is training data
    for k in PER_ROUND:
        sets = [
            *_base(4, per_class),
            f"federation.num_clients={k}",
            f"federation.clients_per_round={k}",
        ]
        row: dict[str, Any] = {"sweep": "clients per round", "clients": k, "per_round": k}
        row.update(_in_fresh_process(sets))
        row["samples_per_client"] = round(row["train_samples"] / k, 1)
        rows.append(row)
        if on_row:
            on_row(row)
    base = rows[0]["seconds_per_round"]
    for row in rows:
        row["x_5_clients"] = round(row["seconds_per_round"] / base, 2)
    return rows


def federation_rows(on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict]:
    """Sweep 2: 20 to 10,000 clients in the federation, 10 of them per round."""
    rows = []
    for n in FEDERATION:
        # at least 40 per class, so that the 5 % val and test splits hold every class
        per_class = max(40, round(n * FEDERATION_SAMPLES_PER_CLIENT / 0.9 / 10) + 1)
        sets = [
            *_base(10, per_class),
            f"federation.num_clients={n}",
            "federation.clients_per_round=10",
        ]
        row: dict[str, Any] = {"sweep": "clients in the federation", "clients": n, "per_round": 10}
        row.update(_in_fresh_process(sets))
        row["samples_per_client"] = round(row["train_samples"] / n, 1)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def bench_scale(on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    import torch

    return {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "rows": per_round_rows(on_row) + federation_rows(on_row),
    }


SCALE_HEADER = (
    f"{'sweep':26s} {'clients':>8s} {'per round':>9s} {'samples/client':>14s} "
    f"{'setup s':>8s} {'s/round':>8s} {'peak MiB':>9s} {'growth MiB':>10s}"
)


def scale_line(r: dict[str, Any]) -> str:
    """One measured row of ``fedcmi bench scale`` under :data:`SCALE_HEADER`."""
    return (
        f"{r['sweep']:26s} {r['clients']:8d} {r['per_round']:9d} "
        f"{r['samples_per_client']:14.1f} {r['setup_seconds']:8.2f} "
        f"{r['seconds_per_round']:8.3f} {r['peak_rss_mib']:9.0f} {r['rss_growth_mib']:10.1f}"
    )
