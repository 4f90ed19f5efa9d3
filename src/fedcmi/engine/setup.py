"""A run's set-up, once for every runner: a config to the process settings, the dataset,
the federation and the device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fedcmi.config import Config
from fedcmi.data import load_dataset
from fedcmi.data.base import MultimodalData
from fedcmi.engine.embedded import select_device
from fedcmi.engine.federation import Federation, build_federation
from fedcmi.engine.speed import configure_torch


@dataclass
class RunSetup:
    cfg: Config
    data: MultimodalData
    federation: Federation
    device: torch.device


def set_up(cfg: Config, cache_dir: Path | None = None, torch_settings: bool = True) -> RunSetup:
    """``cfg``'s dataset (built or read from ``cache_dir``'s cache), its seeded
    federation and the training device; with ``torch_settings`` first the process-wide
    torch settings (:func:`fedcmi.engine.speed.configure_torch`: threads, determinism),
    which a benchmark that sets its own leaves out."""
    if torch_settings:
        configure_torch(cfg)
    data = load_dataset(cfg.data.name, cfg.data.params, cache_dir)
    federation = build_federation(data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
    return RunSetup(cfg, data, federation, select_device(cfg.engine.device))
