"""Preparation of the paper's datasets from a user's disk (CREMA-D, AVE, CrisisMMD).

``prepare(name, src, out, overrides, workers)`` indexes the raw layout, decodes every
clip in ``workers`` processes and writes a cache (see :mod:`fedcmi.data.prepare.cache`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fedcmi.config import build_dataclass
from fedcmi.data.prepare.cache import CacheSpec, Preparer, build_cache
from fedcmi.errors import InputError
from fedcmi.registry import PREPARERS


def prepare(
    name: str,
    src: str | Path,
    out: str | Path,
    overrides: dict[str, Any] | None = None,
    workers: int = 1,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Index ``src`` and build the cache of dataset ``name`` in ``out``; returns its manifest."""
    if name not in PREPARERS:
        raise InputError(f"cannot prepare {name!r}; preparable: {', '.join(PREPARERS.names())}")
    preparer: Preparer = PREPARERS.get(name)
    params = build_dataclass(preparer.params, overrides or {}, "prepare")
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"--src {src}: not a folder")
    jobs, skipped, classes = preparer.index_clips(src, params)
    spec = CacheSpec(
        name,
        {"src": str(src.resolve()), **asdict(params), **preparer.derived_params(params)},
        preparer.array_specs(params),
        classes,
        jobs,
        skipped,
    )
    return build_cache(out, spec, preparer.prepare_clip, workers, force, on_progress)
