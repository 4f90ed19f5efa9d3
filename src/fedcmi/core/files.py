"""Atomic file writes: a half-written file never replaces a good one.

Every file the project writes that a later step reads (run folders, checkpoints,
dataset caches, sweep and calibration tables) goes through :func:`atomic_write`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


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
