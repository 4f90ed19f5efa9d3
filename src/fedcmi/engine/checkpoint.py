"""Atomic, checksummed checkpoints of a run, and the resume that reads them.

A checkpoint holds the global model, the number of finished rounds (and so of metrics
lines it covers) and the RNG states. It is written to a temporary file, fsynced and
renamed over ``checkpoints/latest.pt``; the one before is kept as ``previous.pt``.
Each file starts with the SHA-256 of its payload, so a truncated or corrupt file is
detected; loading then falls back to the previous one with a warning. Clients draw
their randomness from (seed, round, client) alone, so a run resumed from round t
continues exactly as if it had never stopped.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedcmi.core.files import atomic_write
from fedcmi.errors import RunFailure

LATEST, PREVIOUS = "latest.pt", "previous.pt"


class CheckpointError(RunFailure):
    """No usable checkpoint."""


def _rng_states() -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save_checkpoint(folder: Path, payload: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({**payload, "rng": _rng_states()}, buf)
    data = buf.getvalue()
    latest = folder / LATEST
    if latest.exists():
        os.replace(latest, folder / PREVIOUS)
    header = hashlib.sha256(data).hexdigest().encode() + b"\n"
    return atomic_write(latest, lambda fh: fh.write(header + data), binary=True, fsync=True)


def _read(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    digest, _, data = raw.partition(b"\n")
    if len(digest) != 64 or hashlib.sha256(data).hexdigest().encode() != digest:
        raise CheckpointError(f"{path}: checksum mismatch (truncated or corrupt)")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def load_checkpoint(folder: Path) -> dict[str, Any]:
    """The latest valid checkpoint; the previous one (with a warning) if latest is bad."""
    errors = []
    for name in (LATEST, PREVIOUS):
        path = folder / name
        if not path.is_file():
            errors.append(f"{path}: missing")
            continue
        try:
            payload = _read(path)
        except (CheckpointError, EOFError, RuntimeError, ValueError) as exc:
            errors.append(str(exc))
            continue
        if name == PREVIOUS:
            warnings.warn(f"using {path}: {errors[-1]}", stacklevel=2)
        return payload
    raise CheckpointError("no usable checkpoint: " + "; ".join(errors))
