"""Atomic, checksummed checkpoints of a run, and the resume that reads them.

A checkpoint holds the global model, the number of finished rounds (and so of metrics
lines it covers) and the RNG states, all as tensors and plain values: it is read with
``torch.load(weights_only=True)``, so a crafted file cannot run code when a run folder
someone sent is resumed. It is written to a temporary file, fsynced and
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
import pickle
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
    """The process's RNG states as tensors and plain values, which the safe loader
    (``weights_only=True``) reads back: no pickled numpy or Python objects."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(internal), "gauss_next": gauss_next},
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


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
    try:  # tensors and plain values only: a crafted file cannot run code here
        payload: dict[str, Any] = torch.load(
            io.BytesIO(data), map_location="cpu", weights_only=True
        )
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0]
        raise CheckpointError(
            f"{path}: refused, it holds more than tensors and plain values ({reason})"
        ) from None
    return payload


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
