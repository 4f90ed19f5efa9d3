"""Runs an experiment end to end on the embedded engine, writing its run folder
(:mod:`fedcmi.engine.run_folder`), checkpointing it and resuming it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fedcmi.config import Config
from fedcmi.core.aggregation import State
from fedcmi.data import load_dataset
from fedcmi.engine.checkpoint import load_checkpoint, restore_rng_states, save_checkpoint
from fedcmi.engine.embedded import EmbeddedEngine, select_device
from fedcmi.engine.federation import build_federation
from fedcmi.engine.run_folder import RoundRecord, RunDirError, RunWriter, Summary
from fedcmi.engine.speed import configure_torch

__all__ = ["RunDirError", "RunInterrupted", "run_experiment"]


def run_experiment(
    cfg: Config,
    out_dir: str | Path,
    on_round: Callable[[RoundRecord], None] | None = None,
    cache_dir: Path | None = None,
    resume: bool = False,
) -> Summary:
    """Run ``cfg`` on the embedded engine, writing the run folder; returns the summary.

    With ``resume``, ``out_dir`` is an interrupted run: it continues from its latest
    valid checkpoint. Every ``engine.checkpoint_every`` rounds (and on Ctrl-C) a
    checkpoint is written; ``checkpoint_every = 0`` writes none.
    """
    checkpoint = load_checkpoint(Path(out_dir) / "checkpoints") if resume else None
    writer = RunWriter(out_dir, cfg, checkpoint["rounds_done"] if checkpoint else None)
    configure_torch(cfg)
    data = load_dataset(cfg.data.name, cfg.data.params, cache_dir)
    federation = build_federation(data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
    device = select_device(cfg.engine.device)
    engine = EmbeddedEngine(cfg, data, federation, device)
    start = 0
    if checkpoint:
        engine.global_state = {k: v.to(device) for k, v in checkpoint["global_state"].items()}
        restore_rng_states(checkpoint["rng"])
        start = checkpoint["rounds_done"]
    else:
        writer.start(data, federation)
    every = cfg.engine.checkpoint_every
    done, done_state = start, engine.global_state  # the last round written to metrics
    try:
        for t in range(start, cfg.rounds):
            record = engine.run_round(t)
            writer.record(record)
            done, done_state = t + 1, engine.global_state
            if every and (done % every == 0 or done == cfg.rounds):
                _checkpoint(writer, done_state, done)
            if on_round is not None:
                on_round(record)
    except KeyboardInterrupt:
        _checkpoint(writer, done_state, done)
        raise RunInterrupted(
            f"interrupted after round {done}; continue with `fedcmi run --resume {writer.out}`"
        ) from None
    finally:
        engine.close()
    probes = engine.evaluate.probes(engine.global_state)
    return writer.finish(engine.global_state, str(device), engine="embedded", probes=probes)


class RunInterrupted(RuntimeError):
    """Ctrl-C: a checkpoint was written, the run can be resumed."""


def _checkpoint(writer: RunWriter, state: State, rounds_done: int) -> None:
    save_checkpoint(
        writer.out / "checkpoints",
        {
            "rounds_done": rounds_done,
            "global_state": {k: v.detach().cpu() for k, v in state.items()},
        },
    )
