"""The run folder: its files, its typed records, and the one place that writes and reads it.

A run folder holds

- ``config.toml``: the resolved config;
- ``manifest.json``: the dataset and the federation (client partitions, modalities,
  per-round schedule);
- ``metrics.jsonl``: one :class:`RoundRecord` per round, with no wall-clock values, so
  identical runs give byte-identical files;
- ``summary.json``: the :class:`Summary` (figures of :mod:`fedcmi.core.protocol`, linear
  probes, timings);
- ``final.pt``: the final global state dict; ``checkpoints/``: see
  :mod:`fedcmi.engine.checkpoint`;
- ``tensorboard/`` (``[logging] tensorboard = true``): the same per-round numbers as
  TensorBoard event files, see :mod:`fedcmi.engine.tensorboard`.

Every runner writes it through :class:`RunWriter` and every tool (resume, sweep, tables,
plots, report, benches) reads it through :class:`RunFolder`. The record types live apart,
in :mod:`fedcmi.engine.records` (the round builds records without the writer).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch

from fedcmi import __version__
from fedcmi.config import Config
from fedcmi.core.aggregation import ServerMemory, State
from fedcmi.core.files import atomic_write, write_json, write_text
from fedcmi.core.protocol import run_figures
from fedcmi.data.base import MultimodalData
from fedcmi.engine.checkpoint import load_checkpoint, restore_rng_states, save_checkpoint
from fedcmi.engine.federation import Federation
from fedcmi.engine.records import RoundRecord, Summary
from fedcmi.engine.speed import Precision
from fedcmi.engine.tensorboard import TensorBoardLog
from fedcmi.errors import RunFailure

__all__ = ["RoundRecord", "RunDirError", "RunFolder", "RunWriter", "Summary"]


class RunDirError(RunFailure):
    """The output folder cannot be used."""


class RunFolder:
    """The files of one run folder, read as typed objects."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config_file = property(lambda self: self.path / "config.toml")
    manifest_file = property(lambda self: self.path / "manifest.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    summary_file = property(lambda self: self.path / "summary.json")
    final_file = property(lambda self: self.path / "final.pt")
    checkpoints = property(lambda self: self.path / "checkpoints")

    def is_run(self) -> bool:
        return self.metrics_file.is_file()

    def is_finished(self) -> bool:
        return self.summary_file.is_file()

    def records(self) -> list[RoundRecord]:
        if not self.is_run():
            missing = self.metrics_file
            raise FileNotFoundError(f"{self.path} is not a run folder: {missing} is missing")
        lines = self.metrics_file.read_text(encoding="utf-8").splitlines()
        return [RoundRecord.from_dict(json.loads(line)) for line in lines if line.strip()]

    def summary(self) -> Summary:
        return Summary.from_dict(json.loads(self.summary_file.read_text(encoding="utf-8")))

    def write_summary(self, summary: Summary) -> None:
        write_json(self.summary_file, summary.to_dict())

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest_file.read_text(encoding="utf-8")))

    def config_text(self) -> str:
        return self.config_file.read_text(encoding="utf-8")

    def keep_rounds(self, rounds: int) -> list[RoundRecord]:
        """Cut ``metrics.jsonl`` to its first ``rounds`` lines (those a checkpoint covers);
        returns them."""
        path = self.metrics_file
        lines = path.read_text(encoding="utf-8").splitlines()[:rounds] if path.exists() else []
        if len(lines) < rounds:
            raise RunDirError(f"{path} has {len(lines)} rounds, the checkpoint {rounds}")
        write_text(path, "".join(line + "\n" for line in lines))
        return [RoundRecord.from_dict(json.loads(line)) for line in lines]


MIN_FREE_BYTES = 256 * 2**20  # checked before training starts


def prepare_run_dir(out: Path) -> Path:
    """Create an empty, writable output folder with room for a run, or say why not."""
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


@dataclass
class Resumed:
    """Where an interrupted run continues: rounds already done, global state and server
    memory after them."""

    rounds_done: int
    global_state: State
    memory: ServerMemory = field(default_factory=ServerMemory)


def _cpu(state: State) -> State:
    return {k: v.detach().cpu() for k, v in state.items()}


def to_device(memory: ServerMemory, device: torch.device) -> ServerMemory:
    """The server memory with every tensor on ``device``."""

    def move(state: State) -> State:
        return {k: v.to(device) for k, v in state.items()}

    clients = {cid: move(st) for cid, st in memory.clients.items()}
    return ServerMemory(move(memory.server), clients, move(memory.optimizer))


def memory_payload(memory: ServerMemory) -> dict[str, Any]:
    """The server memory as nested dicts of tensors (what the safe loader reads)."""
    return {
        "server": _cpu(memory.server),
        "optimizer": _cpu(memory.optimizer),
        "clients": {str(cid): _cpu(st) for cid, st in sorted(memory.clients.items())},
    }


def memory_from_payload(raw: dict[str, Any] | None) -> ServerMemory:
    if not raw:
        return ServerMemory()
    clients = {int(cid): dict(st) for cid, st in raw["clients"].items()}
    return ServerMemory(dict(raw["server"]), clients, dict(raw["optimizer"]))


class RunWriter:
    """Writes a run folder for any engine: config and manifest at the start, one
    metrics line per round, the final state and the summary at the end."""

    def __init__(self, out_dir: str | Path, cfg: Config, resume_rounds: int | None = None):
        """A new run folder, or (``resume_rounds``) an existing one continued after its
        first ``resume_rounds`` rounds (later lines came after the checkpoint and will be
        recomputed identically)."""
        self.folder = RunFolder(out_dir)
        self.cfg = cfg
        self.history: list[dict[str, Any]] = []
        self.started = self.train_started = time.perf_counter()
        self._metrics: IO[str] | None = None
        if resume_rounds is None:
            prepare_run_dir(self.folder.path)
        else:
            kept = self.folder.keep_rounds(resume_rounds)
            self.history = [r.evaluation() for r in kept]
            self._metrics = open(self.folder.metrics_file, "a", encoding="utf-8")  # noqa: SIM115
        self._live = (
            TensorBoardLog(self.folder.path, resume_rounds) if cfg.logging.tensorboard else None
        )

    @property
    def out(self) -> Path:
        return self.folder.path

    def start(
        self,
        data: MultimodalData,
        federation: Federation,
        quality: list[dict[str, Any]] | None = None,
    ) -> None:
        """Write the config and the manifest (``quality``: the description of the
        dataset's per-client quality profiles, :func:`fedcmi.engine.quality.describe_quality`)
        and open the metrics file."""
        write_text(self.folder.config_file, self.cfg.to_toml())
        labels = data.train.y.numpy()
        per_client = [
            {"profile": p, **data.quality[p].settings}
            for cid in range(len(federation.client_indices))
            if (p := data.client_profile(cid)) is not None
        ]
        manifest = {
            "dataset": data.info(),
            **federation.manifest(labels, data.class_names, per_client),
            **({"client_quality": quality} if quality else {}),
        }
        write_json(self.folder.manifest_file, manifest)
        self._metrics = open(self.folder.metrics_file, "w", encoding="utf-8")  # noqa: SIM115
        self.train_started = time.perf_counter()

    @classmethod
    def resume(cls, out_dir: str | Path, cfg: Config) -> tuple[RunWriter, Resumed]:
        """Continue an interrupted run folder from its latest valid checkpoint: the
        writer (metrics cut to the checkpoint's rounds) and what the engine restarts
        from. The process's RNG states are restored."""
        payload = load_checkpoint(RunFolder(out_dir).checkpoints)
        restore_rng_states(payload["rng"])
        resumed = Resumed(
            int(payload["rounds_done"]),
            payload["global_state"],
            memory_from_payload(payload.get("memory")),
        )
        return cls(out_dir, cfg, resumed.rounds_done), resumed

    def record(
        self, record: RoundRecord, state: State | None = None, memory: ServerMemory | None = None
    ) -> None:
        """Append the round's line; with ``state`` (the global state after the round) and
        ``memory`` (the server memory), also write a checkpoint when
        ``engine.checkpoint_every`` says one is due."""
        if self._metrics is None:
            raise RuntimeError("RunWriter.start() must come before record()")
        line = record.to_dict()
        self._metrics.write(json.dumps(line) + "\n")
        self._metrics.flush()
        if self._live is not None:
            self._live.log(line)
        self.history.append(record.evaluation())
        every, done = self.cfg.engine.checkpoint_every, record.round
        if state is not None and every and (done % every == 0 or done == self.cfg.rounds):
            self.checkpoint(state, done, memory)

    def checkpoint(
        self, state: State, rounds_done: int, memory: ServerMemory | None = None
    ) -> None:
        """An atomic checkpoint of the global state and server memory after
        ``rounds_done`` rounds (:mod:`fedcmi.engine.checkpoint`); what :meth:`resume`
        continues from."""
        payload = {"rounds_done": rounds_done, "global_state": _cpu(state)}
        if memory is not None:
            payload["memory"] = memory_payload(memory)
        save_checkpoint(self.folder.checkpoints, payload)

    def finish(
        self,
        global_state: dict[str, torch.Tensor],
        device: torch.device,
        precision: Precision,
        engine: str,
        probes: dict[str, float | None],
    ) -> Summary:
        """Close metrics.jsonl, save ``final.pt`` and write ``summary.json`` (the run's
        ``device`` and the ``precision`` it trained in, as set up).

        ``probes`` are the linear-probe test accuracies of the final model's encoders
        (``probe_a``, ``probe_v``; see :meth:`fedcmi.engine.evaluation.Evaluator.probes`).
        """
        if self._metrics is not None:
            self._metrics.close()
        if self._live is not None:
            self._live.close()
        train_seconds = time.perf_counter() - self.train_started
        atomic_write(self.folder.final_file, lambda fh: torch.save(global_state, fh), binary=True)
        cfg = self.cfg
        summary = Summary(
            fedcmi_version=__version__,
            engine=engine,
            algorithm=cfg.algorithm.name,
            dataset=cfg.data.name,
            seed=cfg.seed,
            rounds=cfg.rounds,
            device=str(device),
            **run_figures(self.history, cfg.eval.last_rounds, cfg.eval.smooth_rounds),
            probe_a=probes.get("probe_a"),
            probe_v=probes.get("probe_v"),
            setup_seconds=round(self.train_started - self.started, 3),
            train_seconds=round(train_seconds, 3),
            seconds_per_round=round(train_seconds / cfg.rounds, 4),
        )
        summary.precision, summary.precision_reason = precision.name, precision.reason
        self.folder.write_summary(summary)
        return summary
