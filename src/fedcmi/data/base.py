"""Dataset containers shared by every registered dataset."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from fedcmi.errors import InputError


@dataclass
class Split:
    """Aligned modality tensors and labels of one split (a: first modality, v: second);
    ``keys``: per-sample metadata values by name (a prepared dataset's actor, video or
    event), which ``federation.partitioner = "natural"`` splits by."""

    x_a: Tensor
    x_v: Tensor
    y: Tensor
    keys: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.y)
        if len(self.x_a) != n or len(self.x_v) != n:
            raise InputError(
                f"misaligned split: x_a {len(self.x_a)}, x_v {len(self.x_v)}, y {n} samples"
            )
        for name, values in self.keys.items():
            if len(values) != n:
                raise InputError(f"misaligned split: key {name!r} {len(values)}, y {n} samples")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: Tensor) -> Split:
        rows = index.cpu().numpy()
        keys = {name: values[rows] for name, values in self.keys.items()}
        return Split(self.x_a[index], self.x_v[index], self.y[index], keys)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x_a.to(device), self.x_v.to(device), self.y.to(device), self.keys)


@dataclass
class ClientQuality:
    """One per-client quality profile of a dataset that renders its inputs at several
    qualities (av-digits' ``client_audio_snr_db`` / ``client_image_noise``):
    ``settings`` names the levels, ``train`` and ``val`` are the whole training and
    validation splits rendered at them (same samples, same order as the dataset's own
    splits). Client ``k`` trains on profile ``k mod P``; the server's val and test
    splits stay at the dataset's own levels."""

    settings: dict[str, float | None]
    train: Split
    val: Split


@dataclass
class MultimodalData:
    """A dataset ready for federated training: three splits plus descriptive metadata."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    modality_names: tuple[str, str]
    default_encoders: tuple[str, str]
    notes: dict[str, Any] = field(default_factory=dict)
    # Options the dataset passes to its default encoders (e.g. BERT's vocabulary size).
    encoder_options: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
    # Per-client quality profiles (empty: every client trains on ``train`` as it is).
    quality: list[ClientQuality] = field(default_factory=list)

    def client_profile(self, cid: int) -> int | None:
        """The quality profile client ``cid`` trains on (None: no profiles)."""
        return cid % len(self.quality) if self.quality else None

    def client_train(self, cid: int) -> Split:
        """The training split as client ``cid`` sees it (its quality profile's rendering;
        the partition picks its rows)."""
        profile = self.client_profile(cid)
        return self.train if profile is None else self.quality[profile].train

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(self.train.x_a.shape[1:]), tuple(self.train.x_v.shape[1:])

    def info(self) -> dict[str, Any]:
        sizes = {s: len(getattr(self, s)) for s in ("train", "val", "test")}
        return {
            "name": self.name,
            "classes": self.class_names,
            "modalities": list(self.modality_names),
            "shapes": {m: list(s) for m, s in zip(self.modality_names, self.shapes)},
            "sizes": sizes,
            "default_encoders": list(self.default_encoders),
            **({"client_quality": [q.settings for q in self.quality]} if self.quality else {}),
            **self.notes,
        }


class DatasetBuilder:
    """Base for registered datasets: a ``Params`` dataclass and a ``load`` classmethod."""

    Params: ClassVar[type]

    @classmethod
    def load(cls, params: Any, cache_dir: Path) -> MultimodalData:  # pragma: no cover
        raise NotImplementedError


def default_cache_dir() -> Path:
    """``$FEDCMI_CACHE`` or ``~/.cache/fedcmi``: where built datasets are kept."""
    env = os.environ.get("FEDCMI_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fedcmi"


def params_key(name: str, params: Any, version: int) -> str:
    """A short stable hash of a dataset's build parameters, used to name its cache."""
    blob = json.dumps({"name": name, "version": version, **asdict(params)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def stratified_split(
    y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class shuffled split into train/val/test index arrays (sorted)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise InputError(
            f"val_fraction={val_fraction}, test_fraction={test_fraction}: each in [0, 1), sum < 1"
        )
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(test_fraction * len(idx)))
        n_val = int(round(val_fraction * len(idx)))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def make_splits(
    x_a: Tensor,
    x_v: Tensor,
    y: Tensor,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    keys: dict[str, np.ndarray] | None = None,
) -> tuple[Split, Split, Split]:
    full = Split(x_a, x_v, y, dict(keys or {}))
    idx = stratified_split(y.numpy(), val_fraction, test_fraction, seed)
    for name, part, fraction in zip(("val", "test"), idx[1:], (val_fraction, test_fraction)):
        if len(part) == 0:  # every round evaluates on both: refuse before training
            raise InputError(
                f"{name}_fraction = {fraction} of {len(y)} samples leaves the {name} split "
                f"empty (split per class); use more samples or a larger {name}_fraction"
            )
    return tuple(full.subset(torch.from_numpy(i)) for i in idx)  # type: ignore[return-value]


def standardize(train: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Z-score features with the training split's statistics only."""
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True).clamp_min(1e-6)
    return tuple((t - mean) / std for t in (train, *others))
