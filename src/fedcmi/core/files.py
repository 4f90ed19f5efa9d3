"""Atomic file writes: a half-written file never replaces a good one.

Every file the project writes that a later step reads (run folders, checkpoints,
dataset caches, sweep and calibration tables) goes through :func:`atomic_write`; model
files a user passes in are read with :func:`load_tensors`, which cannot run code.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from fedcmi.errors import InputError


def atomic_write(
    path: Path, write: Callable[[IO[Any]], object], binary: bool = False, fsync: bool = False
) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary sibling, then rename it
    over ``path`` (``fsync``: flush to disk first, for files that must survive a crash)."""
    tmp = path.with_name(f".{path.name}.tmp")
    mode = "wb" if binary else "w"
    encoding = None if binary else "utf-8"
    with open(tmp, mode, encoding=encoding, newline=None if binary else "") as fh:
        write(fh)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda fh: fh.write(text))


def write_json(path: Path, obj: Any, indent: int = 2) -> Path:
    """JSON with a trailing newline; values JSON cannot hold are written with ``str``."""
    return write_text(path, json.dumps(obj, indent=indent, default=str) + "\n")


def load_tensors(path: Path) -> Any:
    """A ``torch.save`` file of tensors and plain values (a state dict), read with
    ``weights_only=True``: a file that holds anything else (a pickled callable, a
    module) is refused with :class:`~fedcmi.errors.InputError` and nothing in it runs."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(f"{path}: refused, it holds more than tensors ({reason})") from None
