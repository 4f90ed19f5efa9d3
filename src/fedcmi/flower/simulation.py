"""``fedcmi run --engine flower``: a run through Flower's simulation engine (Ray), in
process, writing the same run folder as the embedded engine."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flwr.serverapp import Grid, ServerApp

from fedcmi.config import Config
from fedcmi.data import default_cache_dir
from fedcmi.engine.run_folder import RoundRecord, Summary
from fedcmi.errors import InputError, RunFailure
from fedcmi.flower.app import client_app, serve


def run_flower_simulation(
    cfg: Config,
    out_dir: str | Path,
    on_round: Callable[[RoundRecord], None] | None = None,
    cpus_per_client: float = 1.0,
    resume: bool = False,
    on_start: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Summary:
    """One run on Flower's simulation engine; returns its summary. With ``resume``,
    ``out_dir`` is an interrupted run, continued from its latest checkpoint. ``on_start``:
    as in :func:`fedcmi.engine.runner.run_experiment`."""
    return run_flower_simulations([cfg], [out_dir], on_round, cpus_per_client, resume, on_start)[0]


def run_flower_simulations(
    cfgs: list[Config],
    out_dirs: list[str | Path],
    on_round: Callable[[RoundRecord], None] | None = None,
    cpus_per_client: float = 1.0,
    resume: bool = False,
    on_start: Callable[[list[dict[str, Any]]], None] | None = None,
) -> list[Summary]:
    """Several runs (same number of clients) one after another in one simulation,
    sharing its start-up cost."""
    from flwr.simulation import run_simulation

    if len({c.federation.num_clients for c in cfgs}) != 1:
        raise InputError("runs in one simulation need the same federation.num_clients")
    data_dir = str(default_cache_dir())
    server = ServerApp()
    summaries: list[Summary] = []

    @server.main()
    def main(grid: Grid, context) -> None:
        for cfg, out in zip(cfgs, out_dirs):
            summaries.append(serve(grid, cfg.to_toml(), out, data_dir, on_round, resume, on_start))

    os.environ.setdefault("FEDCMI_CACHE", data_dir)  # Ray workers inherit it
    run_simulation(
        server_app=server,
        client_app=client_app,
        num_supernodes=cfgs[0].federation.num_clients,
        backend_config={
            "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
            "init_args": {"num_cpus": os.cpu_count() or 1, "include_dashboard": False},
        },
    )
    if len(summaries) != len(cfgs):
        raise RunFailure("the Flower simulation ended before every run finished (see its log)")
    return summaries
