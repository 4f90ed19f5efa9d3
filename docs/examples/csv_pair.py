# src/fedcmi/data/csv_pair.py
"""csv-pair: two feature tables of the same samples, read from the user's disk.

``FOLDER/a.csv`` and ``FOLDER/v.csv`` hold one row per sample (no header): the features,
then the integer label in the last column; row i of both files is the same sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedcmi.data.base import DatasetBuilder, MultimodalData, make_splits
from fedcmi.errors import InputError
from fedcmi.registry import DATASETS


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise InputError(f"csv-pair: {path} not found")
    table = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)


@DATASETS.register("csv-pair")
class CSVPair(DatasetBuilder):
    @dataclass
    class Params:
        folder: str = ""
        """The folder holding a.csv and v.csv."""
        val_fraction: float = 0.1
        """Fraction of the samples held out for validation (stratified)."""
        test_fraction: float = 0.2
        """Fraction of the samples held out for test (stratified)."""
        seed: int = 0
        """Fixes the splits; the run seed varies the federation."""

    @classmethod
    def load(cls, params: CSVPair.Params, cache_dir: Path) -> MultimodalData:
        folder = Path(params.folder)
        (x_a, y), (x_v, y_v) = read_table(folder / "a.csv"), read_table(folder / "v.csv")
        if not np.array_equal(y, y_v):
            raise InputError(f"csv-pair: {folder}/a.csv and v.csv have different labels")
        train, val, test = make_splits(
            torch.from_numpy(x_a),
            torch.from_numpy(x_v),
            torch.from_numpy(y),
            params.val_fraction,
            params.test_fraction,
            params.seed,
        )
        return MultimodalData(
            name="csv-pair",
            train=train,
            val=val,
            test=test,
            class_names=[str(c) for c in range(int(y.max()) + 1)],
            modality_names=("a", "v"),
            default_encoders=("mlp", "mlp"),
        )
