"""A run's set-up, once for every runner: a config to the process settings, the dataset,
the federation, the device and the precision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fedcmi.config import Config
from fedcmi.data import load_dataset
from fedcmi.data.base import MultimodalData
from fedcmi.engine.federation import Federation, build_federation
from fedcmi.engine.speed import Precision, configure_torch, resolve_precision


@dataclass
class RunSetup:
    """Everything a run trains with. ``precision`` is decided here, once
    (:func:`~fedcmi.engine.speed.resolve_precision`): the client trainers, the run's
    summary and the benches read it from here."""

    cfg: Config
    data: MultimodalData
    federation: Federation
    device: torch.device
    precision: Precision


def select_device(name: str) -> torch.device:
    """``engine.device``: ``auto`` is the CUDA device where there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def assemble(
    cfg: Config, data: MultimodalData, federation: Federation, device: torch.device
) -> RunSetup:
    """A set-up of parts already at hand (a bench that builds its own federation)."""
    return RunSetup(cfg, data, federation, device, resolve_precision(cfg.engine.precision, device))


def set_up(cfg: Config, cache_dir: Path | None = None, torch_settings: bool = True) -> RunSetup:
    """``cfg``'s dataset (built or read from ``cache_dir``'s cache), its seeded
    federation, the training device and precision; with ``torch_settings`` first the
    process-wide torch settings (:func:`fedcmi.engine.speed.configure_torch`: threads,
    determinism), which a benchmark that sets its own leaves out."""
    if torch_settings:
        configure_torch(cfg.engine)
    data = load_dataset(cfg.data.name, cfg.data.params, cache_dir)
    federation = build_federation(
        data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed, data.train.keys
    )
    return assemble(cfg, data, federation, select_device(cfg.engine.device))
