"""Dataset registry. Each dataset yields aligned ``x_a``, ``x_v``, ``y`` tensors per split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedcmi.data.base import (
    DatasetBuilder,
    MultimodalData,
    Split,
    default_cache_dir,
)
from fedcmi.registry import Registry

DATASETS: Registry[type[DatasetBuilder]] = Registry("dataset")


def load_dataset(name: str, params: Any, cache_dir: Path | None = None) -> MultimodalData:
    """Build (or read from cache) the registered dataset ``name``."""
    builder = DATASETS.get(name)
    return builder.load(params, cache_dir or default_cache_dir())


# Registration happens on import of each module.
from fedcmi.data import av_digits, mfeat, prepared, synthetic  # noqa: E402,F401

__all__ = ["DATASETS", "MultimodalData", "Split", "load_dataset", "default_cache_dir"]
