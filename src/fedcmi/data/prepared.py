"""Datasets read from caches made by ``fedcmi data prepare`` (CREMA-D, AVE, CrisisMMD).

``[data] cache = "PATH"`` points at the prepared folder. Clips the preparation skipped
are left out and counted in ``notes["skipped"]`` (their paths and reasons are in the
cache's ``skipped.json``). Splits: CREMA-D's train/test come from the preparation (file,
stratified or speaker-disjoint split); AVE's from its own train/val/test lists. Where the
data has no val split, ``val_fraction`` of train (stratified, seeded) becomes val, so the
best round is never chosen on test. Frames stay uint8 (N, F, S, S, 3); the frame encoder
converts, crops and normalises them in batches; spectrograms are float32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fedcmi.bounds import Fraction, PositiveInt
from fedcmi.data.base import DatasetBuilder, MultimodalData, Split, stratified_split
from fedcmi.data.prepare.cache import CACHE_FORMAT
from fedcmi.errors import InputError
from fedcmi.registry import DATASETS


def read_cache(path: str | Path, dataset: str) -> tuple[dict, list[dict], dict[str, np.ndarray]]:
    root = Path(path)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} not found: prepare it with "
            f"`fedcmi data prepare {dataset} --src RAW --out {root}`"
        )
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != CACHE_FORMAT or manifest.get("dataset") != dataset:
        raise InputError(
            f"{root}: a {manifest.get('dataset')} cache of format {manifest.get('format')}; "
            f"expected {dataset} format {CACHE_FORMAT} (prepare it again)"
        )
    index = json.loads((root / "index.json").read_text())
    arrays = {name: np.load(root / f"{name}.npy", mmap_mode="r") for name in manifest["arrays"]}
    return manifest, index, arrays


def evenly_spaced(stored: int, wanted: int) -> np.ndarray:
    if wanted > stored:
        raise InputError(f"data.frames = {wanted}, but the cache stores {stored} per clip")
    return np.linspace(0, stored - 1, wanted).round().astype(int)


class PreparedDataset(DatasetBuilder):
    """A dataset read from a prepared cache; subclasses name its two arrays."""

    name: str
    arrays: tuple[str, str]
    modality_names: tuple[str, str]
    default_encoders: tuple[str, str]

    @dataclass
    class Params:
        cache: str = ""
        """The folder written by ``fedcmi data prepare`` (required)."""
        val_fraction: Fraction = 0.1
        """Fraction of the training clips held out for validation (stratified)."""
        seed: int = 0
        """Fixes the validation split."""

    @classmethod
    def rows_of(cls, name: str, array: np.ndarray, rows: np.ndarray, params) -> torch.Tensor:
        """The rows in their stored dtype: float16 spectrograms stay float16 (half the
        memory, on the host and on the device); encoders upcast each batch."""
        return torch.from_numpy(np.asarray(array[rows]))

    @classmethod
    def encoder_options(cls, manifest: dict) -> tuple[dict, dict]:
        return {}, {}

    @classmethod
    def natural_keys(cls, index: list[dict]) -> dict[str, np.ndarray]:
        """Per-sample key values by name, from the cache's index: those the preparation
        recorded (``keys`` of each record) and :meth:`keys_of_record`'s."""
        names = {name for record in index for name in cls.keys_of_record(record)}
        return {
            name: np.array([cls.keys_of_record(r).get(name, "") for r in index])
            for name in sorted(names)
        }

    @classmethod
    def keys_of_record(cls, record: dict) -> dict[str, str]:
        return dict(record.get("keys", {}))

    @classmethod
    def load(cls, params, cache_dir: Path) -> MultimodalData:
        if not params.cache:
            raise InputError(
                f"data.cache is empty: the folder made by `fedcmi data prepare {cls.name}`"
            )
        manifest, index, arrays = read_cache(params.cache, cls.name)
        ok = np.array([r["ok"] for r in index], dtype=bool)
        labels = np.array([r["label"] for r in index], dtype=np.int64)
        splits = np.array([r["split"] for r in index])
        a_name, v_name = cls.arrays
        keys = cls.natural_keys(index)

        def take(mask: np.ndarray) -> Split:
            rows = np.flatnonzero(mask & ok)
            return Split(
                cls.rows_of(a_name, arrays[a_name], rows, params),
                cls.rows_of(v_name, arrays[v_name], rows, params),
                torch.from_numpy(labels[rows]),
                {name: values[rows] for name, values in keys.items()},
            )

        train_mask = splits == "train"
        val_mask = splits == "val"
        if not val_mask[ok].any():
            train_rows = np.flatnonzero(train_mask & ok)
            tr, va, _ = stratified_split(labels[train_rows], params.val_fraction, 0.0, params.seed)
            train_mask = np.zeros_like(ok)
            train_mask[train_rows[tr]] = True
            val_mask = np.zeros_like(ok)
            val_mask[train_rows[va]] = True
        parts = {"train": take(train_mask), "val": take(val_mask), "test": take(splits == "test")}
        empty = [name for name, split in parts.items() if len(split) == 0]
        if empty:
            raise InputError(
                f"{params.cache}: the {', '.join(empty)} split(s) hold no clips "
                "(too few clips, or adjust data.val_fraction / the preparation's test split)"
            )
        return MultimodalData(
            name=cls.name,
            train=parts["train"],
            val=parts["val"],
            test=parts["test"],
            class_names=manifest["class_names"],
            modality_names=cls.modality_names,
            default_encoders=cls.default_encoders,
            notes={"cache": str(params.cache), "skipped": manifest["skipped"]},
            encoder_options=cls.encoder_options(manifest),
        )


class PreparedAV(PreparedDataset):
    arrays = ("audio", "frames")
    modality_names = ("audio", "visual")
    default_encoders = ("resnet18-audio", "resnet18-frames")

    @dataclass
    class Params:
        cache: str = ""
        """The folder written by ``fedcmi data prepare`` (required)."""
        frames: PositiveInt = 2
        """Frames used per clip, evenly spaced over the stored ones."""
        val_fraction: Fraction = 0.1
        """Fraction of the training clips held out for validation (stratified)."""
        seed: int = 0
        """Fixes the validation split."""

    @classmethod
    def rows_of(cls, name: str, array: np.ndarray, rows: np.ndarray, params) -> torch.Tensor:
        if name != "frames":
            return super().rows_of(name, array, rows, params)
        picks = evenly_spaced(array.shape[1], params.frames)
        return torch.from_numpy(np.ascontiguousarray(np.asarray(array[rows])[:, picks]))


@DATASETS.register("crema-d")
class CremaD(PreparedAV):
    """CREMA-D; key ``actor``: the speaker (a clip key's first field, e.g. 1001)."""

    name = "crema-d"

    @classmethod
    def keys_of_record(cls, record: dict) -> dict[str, str]:
        return {**super().keys_of_record(record), "actor": record["key"].split("_")[0]}


@DATASETS.register("ave")
class AVE(PreparedAV):
    """AVE; key ``video``: the YouTube video an event clip comes from."""

    name = "ave"

    @classmethod
    def keys_of_record(cls, record: dict) -> dict[str, str]:
        return {**super().keys_of_record(record), "video": record["key"]}


@DATASETS.register("crisismmd")
class CrisisMMD(PreparedDataset):
    """CrisisMMD image (a) and tweet text (v); val is the dataset's dev split; key
    ``event``: the crisis (e.g. hurricane_harvey), recorded by the preparation."""

    name = "crisismmd"
    arrays = ("image", "text")
    modality_names = ("image", "text")
    default_encoders = ("densenet121-image", "bert-text")

    @classmethod
    def encoder_options(cls, manifest: dict) -> tuple[dict, dict]:
        return {}, {"vocab_size": manifest["params"]["vocab_size"]}
