"""Datasets: each yields aligned ``x_a``, ``x_v``, ``y`` tensors per split.

Add a dataset by adding a module here whose :class:`fedcmi.data.base.DatasetBuilder`
subclass carries ``@DATASETS.register("name")`` (see :mod:`fedcmi.registry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedcmi.data.base import MultimodalData, Split, default_cache_dir
from fedcmi.registry import DATASETS


def load_dataset(name: str, params: Any, cache_dir: Path | None = None) -> MultimodalData:
    """Build (or read from cache) the registered dataset ``name``."""
    builder = DATASETS.get(name)
    return builder.load(params, cache_dir or default_cache_dir())


__all__ = ["DATASETS", "MultimodalData", "Split", "load_dataset", "default_cache_dir"]
