"""Atomic file writes: a half-written file never replaces a good one.

Every file the project writes that a later step reads (run folders, checkpoints,
dataset caches, sweep and calibration tables) goes through :func:`atomic_write`, which
gives every writer its own temporary file, so two processes writing one path at once
each rename a complete file. A file that is expensive to make and the same for every
process (a dataset cache) is made by :func:`build_once`: one process builds it under a
lock, the others wait and then read it. Model files a user passes in are read with
:func:`load_tensors`, which cannot run code.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch
from filelock import FileLock

from fedcmi.errors import InputError


def atomic_write(
    path: Path, write: Callable[[IO[Any]], object], binary: bool = False, fsync: bool = False
) -> Path:
    """Write ``path`` through ``write(file)`` into a temporary sibling of this writer's
    own, then rename it over ``path`` (``fsync``: flush to disk first, for files that
    must survive a crash). A failed write removes its temporary file and leaves ``path``
    as it was."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    mode = "wb" if binary else "w"
    encoding = None if binary else "utf-8"
    try:
        with open(handle, mode, encoding=encoding, newline=None if binary else "") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        tmp.chmod(0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def build_once(path: Path, build: Callable[[Path], object]) -> Path:
    """Make ``path`` with ``build(path)`` unless it exists, once across processes: the
    first process to take the lock (``path`` + ``.lock``) builds, the others wait for it
    and find the finished file. ``build`` must write ``path`` atomically."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path.with_name(f"{path.name}.lock")):
        if not path.is_file():  # another process may have built it while we waited
            build(path)
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
