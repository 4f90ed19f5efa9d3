"""synthetic: class-conditional Gaussians with a per-modality signal strength.

Each class c has a random unit mean direction per modality; a sample is
``signal_m * mean_c + N(0, I)``. A larger ``signal_a`` than ``signal_v`` makes modality a
dominant, which is all the fast tests need. Generated in memory, never cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import torch

from fedcmi.bounds import Fraction, NonNegative, PositiveInt, Range
from fedcmi.data.base import DatasetBuilder, MultimodalData, make_splits
from fedcmi.registry import DATASETS


@DATASETS.register("synthetic")
class Synthetic(DatasetBuilder):
    @dataclass
    class Params:
        num_classes: Annotated[int, Range(low=2)] = 4
        """Classes."""
        per_class: PositiveInt = 100
        """Samples per class."""
        dim_a: PositiveInt = 16
        """Width of modality a's vectors."""
        dim_v: PositiveInt = 16
        """Width of modality v's vectors."""
        signal_a: NonNegative = 3.0
        """Distance of a's class means from the origin (larger: easier, dominant)."""
        signal_v: NonNegative = 1.0
        """Distance of v's class means from the origin."""
        val_fraction: Fraction = 0.1
        """Fraction held out for validation."""
        test_fraction: Fraction = 0.2
        """Fraction held out for test."""
        seed: int = 0
        """Fixes the dataset itself; the run seed varies the federation."""

    @classmethod
    def load(cls, params: Synthetic.Params, cache_dir: Path) -> MultimodalData:
        gen = torch.Generator().manual_seed(params.seed)
        y = torch.arange(params.num_classes).repeat_interleave(params.per_class)

        def modality(dim: int, signal: float) -> torch.Tensor:
            means = torch.nn.functional.normalize(
                torch.randn(params.num_classes, dim, generator=gen), dim=1
            )
            return signal * means[y] + torch.randn(len(y), dim, generator=gen)

        x_a = modality(params.dim_a, params.signal_a)
        x_v = modality(params.dim_v, params.signal_v)
        train, val, test = make_splits(
            x_a, x_v, y, params.val_fraction, params.test_fraction, params.seed
        )
        return MultimodalData(
            name="synthetic",
            train=train,
            val=val,
            test=test,
            class_names=[f"class{c}" for c in range(params.num_classes)],
            modality_names=("a", "v"),
            default_encoders=("mlp", "mlp"),
        )
