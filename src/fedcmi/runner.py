"""Runs an experiment end to end and writes its self-describing run folder.

Run folder contents: ``config.toml`` (resolved config), ``manifest.json`` (dataset and
federation: client partitions, modalities, per-round schedule), ``metrics.jsonl`` (one
JSON object per round, no wall-clock values, so identical runs give identical files),
``summary.json`` (best round chosen on val accuracy, test metrics there and at the last
round, timings) and ``final.pt`` (the final global state dict).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fedcmi import __version__
from fedcmi.config import Config
from fedcmi.data import load_dataset
from fedcmi.engine import EmbeddedEngine, select_device
from fedcmi.federation import build_federation

SELECTION_KEY = "acc"  # best round = highest val fused accuracy (earliest on ties)


class RunDirError(RuntimeError):
    """The output folder cannot be used."""


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically: a half-written file never replaces a good one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
    return out


def configure_torch(cfg: Config) -> None:
    if cfg.engine.threads:
        torch.set_num_threads(cfg.engine.threads)
    if cfg.engine.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


class BestTracker:
    """Keeps the round with the best val accuracy and the test metrics at that round."""

    def __init__(self) -> None:
        self.best: dict[str, Any] | None = None

    def update(self, record: dict[str, Any]) -> None:
        if self.best is None or record["val"][SELECTION_KEY] > self.best["val"][SELECTION_KEY]:
            self.best = {"round": record["round"], "val": record["val"], "test": record["test"]}


def run_experiment(
    cfg: Config,
    out_dir: str | Path,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Run ``cfg`` on the embedded engine, writing the run folder; returns the summary."""
    out = prepare_run_dir(Path(out_dir))
    configure_torch(cfg)
    started = time.perf_counter()
    data = load_dataset(cfg.data.name, cfg.data.params, cache_dir)
    federation = build_federation(data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
    (out / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
    write_json(
        out / "manifest.json",
        {"dataset": data.info(), **federation.manifest(data.train.y.numpy(), data.class_names)},
    )
    device = select_device(cfg.engine.device)
    engine = EmbeddedEngine(cfg, data, federation, device)
    setup_seconds = time.perf_counter() - started
    tracker = BestTracker()
    last: dict[str, Any] = {}
    train_started = time.perf_counter()
    with open(out / "metrics.jsonl", "w", encoding="utf-8") as fh:
        for t in range(cfg.rounds):
            last = engine.run_round(t)
            fh.write(json.dumps(last) + "\n")
            fh.flush()
            tracker.update(last)
            if on_round is not None:
                on_round(last)
    train_seconds = time.perf_counter() - train_started
    torch.save(engine.global_state, out / "final.pt")
    assert tracker.best is not None
    summary = {
        "fedcmi_version": __version__,
        "algorithm": cfg.algorithm.name,
        "dataset": cfg.data.name,
        "seed": cfg.seed,
        "rounds": cfg.rounds,
        "device": str(device),
        "selection": f"best round by val {SELECTION_KEY}",
        "best_round": tracker.best["round"],
        "best": {"val": _scalars(tracker.best["val"]), "test": _scalars(tracker.best["test"])},
        "last": {"val": _scalars(last["val"]), "test": _scalars(last["test"])},
        "best_test_per_class_acc": tracker.best["test"]["per_class_acc"],
        "setup_seconds": round(setup_seconds, 3),
        "train_seconds": round(train_seconds, 3),
        "seconds_per_round": round(train_seconds / cfg.rounds, 4),
    }
    write_json(out / "summary.json", summary)
    return summary


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, float)}
