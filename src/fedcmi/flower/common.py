"""Conversions between the core's objects and Flower records, and per-process caches."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord

from fedcmi.config import Config, config_from_dict
from fedcmi.data.base import MultimodalData
from fedcmi.engine.embedded import ClientTrainer
from fedcmi.engine.federation import Federation
from fedcmi.engine.setup import RunSetup, set_up
from fedcmi.engine.speed import Precision
from fedcmi.errors import InputError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def config_from_toml(text: str) -> Config:
    return config_from_dict(tomllib.loads(text))


Scalar = int | float | str | bool


def scalar(record: Mapping[str, Any], key: str, default: Scalar | None = None) -> Scalar:
    """A scalar value of a Flower config or metric record (or a node/run config)."""
    value = record.get(key, default)
    if not isinstance(value, (int, float, str, bool)):
        raise InputError(f"{key} = {value!r}: expected a number or a string")
    return value


def to_record(state: dict[str, torch.Tensor]) -> ArrayRecord:
    return ArrayRecord({k: v.detach().cpu() for k, v in state.items()})


def from_record(record: ArrayRecord, device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in record.to_torch_state_dict().items()}


@dataclass
class Workspace:
    """What one process needs to train clients of a run: data, federation, trainer."""

    cfg: Config
    data: MultimodalData
    federation: Federation
    trainer: ClientTrainer
    device: torch.device
    precision: Precision
    # The seeded initial global state, taken before any training: the trainer's model is
    # reused by every run of this config in the process, so its weights move.
    initial_state: dict[str, torch.Tensor]

    def setup(self) -> RunSetup:
        """The run's set-up this workspace was built from."""
        return RunSetup(self.cfg, self.data, self.federation, self.device, self.precision)


_WORKSPACES: dict[str, Workspace] = {}


def workspace(config_toml: str, data_dir: str | None) -> Workspace:
    """Built once per process and run config (datasets load from ``data_dir``'s cache)."""
    key = hashlib.sha256(f"{config_toml}\0{data_dir}".encode()).hexdigest()
    if key not in _WORKSPACES:
        run = set_up(config_from_toml(config_toml), Path(data_dir) if data_dir else None)
        trainer = ClientTrainer(run.cfg, run.data, run.device, run.precision.name)
        _WORKSPACES[key] = Workspace(
            run.cfg,
            run.data,
            run.federation,
            trainer,
            run.device,
            run.precision,
            trainer.initial_state(),
        )
    return _WORKSPACES[key]
