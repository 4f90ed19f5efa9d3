"""Runs an experiment end to end and writes its self-describing run folder.

Run folder contents: ``config.toml`` (resolved config), ``manifest.json`` (dataset and
federation: client partitions, modalities, per-round schedule), ``metrics.jsonl`` (one
JSON object per round, no wall-clock values, so identical runs give identical files),
``summary.json`` (the figures of :mod:`fedcmi.core.protocol`: the mean test metrics over the last
rounds, the best smoothed-val round, the last round, linear probes of both encoders,
timings) and ``final.pt`` (the final global state dict).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fedcmi import __version__
from fedcmi.config import Config
from fedcmi.core.protocol import run_figures
from fedcmi.data import load_dataset
from fedcmi.data.base import MultimodalData
from fedcmi.engine.checkpoint import load_checkpoint, restore_rng_states, save_checkpoint
from fedcmi.engine.embedded import EmbeddedEngine, select_device
from fedcmi.engine.federation import Federation, build_federation
from fedcmi.engine.speed import configure_torch


class RunDirError(RuntimeError):
    """The output folder cannot be used."""


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically: a half-written file never replaces a good one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


MIN_FREE_BYTES = 256 * 2**20  # checked before training starts


def prepare_run_dir(out: Path) -> Path:
    if out.exists() and any(out.iterdir()):
        raise RunDirError(
            f"output folder {out} already exists and is not empty; pass another --out"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"cannot write to output folder {out}: {exc.strerror}") from None
    free = shutil.disk_usage(out).free
    if free < MIN_FREE_BYTES:
        raise RunDirError(
            f"only {free / 2**20:.0f} MiB free under {out}; a run needs at least "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB for checkpoints and metrics"
        )
    return out


def compact(record: dict[str, Any]) -> dict[str, Any]:
    """What the summary needs of a metrics record: round, val and test metrics."""
    return {"round": record["round"], "val": record["val"], "test": record["test"]}


class RunWriter:
    """Writes a run folder for any engine: config and manifest at the start, one
    metrics line per round, the final state and the summary at the end."""

    def __init__(self, out_dir: str | Path, cfg: Config) -> None:
        self.out = prepare_run_dir(Path(out_dir))
        self.cfg = cfg
        self.history: list[dict[str, Any]] = []
        self.started = time.perf_counter()
        self.train_started = self.started
        self._metrics = None

    def start(self, data: MultimodalData, federation: Federation) -> None:
        (self.out / "config.toml").write_text(self.cfg.to_toml(), encoding="utf-8")
        labels = data.train.y.numpy()
        write_json(
            self.out / "manifest.json",
            {"dataset": data.info(), **federation.manifest(labels, data.class_names)},
        )
        self._metrics = open(self.out / "metrics.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.train_started = time.perf_counter()

    @classmethod
    def reopen(cls, out_dir: str | Path, cfg: Config, keep_rounds: int) -> RunWriter:
        """Continue an existing run folder: keep its first ``keep_rounds`` metrics lines
        (later ones came after the checkpoint and will be recomputed identically)."""
        writer = cls.__new__(cls)
        writer.out, writer.cfg = Path(out_dir), cfg
        writer.history = []
        writer.started = writer.train_started = time.perf_counter()
        path = writer.out / "metrics.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()[:keep_rounds] if path.exists() else []
        if len(lines) < keep_rounds:
            raise RunDirError(f"{path} has {len(lines)} rounds, the checkpoint {keep_rounds}")
        tmp = path.with_name("metrics.jsonl.tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, path)
        writer.history = [compact(json.loads(line)) for line in lines]
        writer._metrics = open(path, "a", encoding="utf-8")  # noqa: SIM115
        return writer

    def record(self, record: dict[str, Any]) -> None:
        assert self._metrics is not None, "start() first"
        self._metrics.write(json.dumps(record) + "\n")
        self._metrics.flush()
        self.history.append(compact(record))

    def finish(
        self,
        global_state: dict,
        device: str,
        engine: str,
        probes: dict[str, float | None] | None = None,
    ) -> dict[str, Any]:
        """Close metrics.jsonl, save ``final.pt`` and write ``summary.json``.

        ``probes`` are the linear-probe test accuracies of the final model's encoders
        (``probe_a``, ``probe_v``; see :meth:`fedcmi.engine.embedded.Evaluator.probes`).
        """
        if self._metrics is not None:
            self._metrics.close()
        train_seconds = time.perf_counter() - self.train_started
        torch.save(global_state, self.out / "final.pt")
        cfg = self.cfg
        summary = {
            "fedcmi_version": __version__,
            "engine": engine,
            "algorithm": cfg.algorithm.name,
            "dataset": cfg.data.name,
            "seed": cfg.seed,
            "rounds": cfg.rounds,
            "device": device,
            **run_figures(self.history, cfg.eval.last_rounds, cfg.eval.smooth_rounds),
            **(probes or {}),
            "setup_seconds": round(self.train_started - self.started, 3),
            "train_seconds": round(train_seconds, 3),
            "seconds_per_round": round(train_seconds / cfg.rounds, 4),
        }
        write_json(self.out / "summary.json", summary)
        return summary


def run_experiment(
    cfg: Config,
    out_dir: str | Path,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    cache_dir: Path | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run ``cfg`` on the embedded engine, writing the run folder; returns the summary.

    With ``resume``, ``out_dir`` is an interrupted run: it continues from its latest
    valid checkpoint. Every ``engine.checkpoint_every`` rounds (and on Ctrl-C) a
    checkpoint is written; ``checkpoint_every = 0`` writes none.
    """
    checkpoint = load_checkpoint(Path(out_dir) / "checkpoints") if resume else None
    writer = (
        RunWriter.reopen(out_dir, cfg, checkpoint["rounds_done"])
        if checkpoint
        else RunWriter(out_dir, cfg)
    )
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


def _checkpoint(writer: RunWriter, state: dict, rounds_done: int) -> None:
    save_checkpoint(
        writer.out / "checkpoints",
        {
            "rounds_done": rounds_done,
            "global_state": {k: v.detach().cpu() for k, v in state.items()},
        },
    )
