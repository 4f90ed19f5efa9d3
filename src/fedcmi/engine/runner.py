"""Runs an experiment end to end on the embedded engine, writing its run folder
(:mod:`fedcmi.engine.run_folder`), checkpointing it and resuming it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedcmi.config import Config
from fedcmi.engine.embedded import EmbeddedEngine
from fedcmi.engine.loop import RunState, run_rounds
from fedcmi.engine.quality import describe_quality
from fedcmi.engine.run_folder import RoundRecord, RunDirError, RunWriter, Summary, to_device
from fedcmi.engine.setup import set_up
from fedcmi.errors import RunInterrupted  # noqa: F401 - re-exported

__all__ = ["RunDirError", "RunInterrupted", "run_experiment"]


def run_experiment(
    cfg: Config,
    out_dir: str | Path,
    on_round: Callable[[RoundRecord], None] | None = None,
    cache_dir: Path | None = None,
    resume: bool = False,
    on_start: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Summary:
    """Run ``cfg`` on the embedded engine, writing the run folder; returns the summary.

    With ``resume``, ``out_dir`` is an interrupted run: it continues from its latest
    valid checkpoint. Every ``engine.checkpoint_every`` rounds (and on Ctrl-C) a
    checkpoint is written; ``checkpoint_every = 0`` writes none
    (:func:`fedcmi.engine.loop.run_rounds`, the loop the Flower adapter runs too).
    ``on_start`` gets the description of the dataset's per-client quality profiles
    (:func:`fedcmi.engine.quality.describe_quality`) when it has some.
    """
    writer, resumed = RunWriter.resume(out_dir, cfg) if resume else (RunWriter(out_dir, cfg), None)
    run = set_up(cfg, cache_dir)
    data, federation, device = run.data, run.federation, run.device
    engine = EmbeddedEngine(run)
    if resumed is not None:
        state = {k: v.to(device) for k, v in resumed.global_state.items()}
        start = RunState(state, to_device(resumed.memory, device), resumed.rounds_done)
    else:
        quality = describe_quality(run)
        writer.start(data, federation, quality)
        if quality and on_start is not None:
            on_start(quality)
        start = RunState(engine.global_state, engine.memory)
    try:
        end = run_rounds(cfg.rounds, writer, start, engine.step, on_round)
    finally:
        engine.close()
    probes = engine.evaluate.probes(end.global_state)
    return writer.finish(end.global_state, run.device, run.precision, "embedded", probes)
