"""Preparation of the paper's datasets from a user's disk (CREMA-D, AVE).

``prepare(name, src, out, overrides, workers)`` indexes the raw layout, decodes every
clip in ``workers`` processes and writes a cache (see :mod:`fedcmi.prepare.cache`).
CrisisMMD's index parser is in :mod:`fedcmi.prepare.crisismmd`; its cache is not done yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fedcmi.config import build_dataclass
from fedcmi.prepare import ave, crema_d
from fedcmi.prepare.cache import ArraySpec, CacheSpec, build_cache

PREPARERS = {"crema-d": crema_d, "ave": ave}
FREQ_BINS = 257


def _arrays(params: Any) -> dict[str, ArraySpec]:
    from fedcmi.prepare.spectrogram import NOVERLAP, NPERSEG, SAMPLE_RATE

    samples = int(round(params.seconds * SAMPLE_RATE))
    frames_t = 1 + (samples - NPERSEG) // (NPERSEG - NOVERLAP)
    s = params.frame_size
    return {
        "audio": ArraySpec((FREQ_BINS, frames_t), "float16"),
        "frames": ArraySpec((params.frames, s, s, 3), "uint8"),
    }


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
        raise ValueError(f"cannot prepare {name!r}; preparable: {', '.join(sorted(PREPARERS))}")
    module = PREPARERS[name]
    params = build_dataclass(module.PrepareParams, overrides or {}, "prepare")
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"--src {src}: not a folder")
    jobs, skipped, classes = module.index_clips(src, params)
    spec = CacheSpec(
        name, {"src": str(src.resolve()), **asdict(params)}, _arrays(params), classes, jobs, skipped
    )
    return build_cache(out, spec, module.prepare_clip, workers, force, on_progress)
