"""The PMR/OGM-GE audio recipe shared by CREMA-D and AVE."""

from __future__ import annotations

import warnings
from math import gcd
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly, spectrogram

from fedcmi.errors import InputError

SAMPLE_RATE = 16_000
NPERSEG = 512
NOVERLAP = 353


def load_wav(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` (polyphase resampling)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", wavfile.WavFileWarning)  # a broken chunk: corrupt
            rate, data = wavfile.read(path)
    except (ValueError, OSError, wavfile.WavFileWarning) as exc:
        raise InputError(f"{path}: cannot read WAV: {exc}") from None
    if data.size == 0:
        raise InputError(f"{path}: WAV holds no samples")
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    data = data.astype(np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1)
    if rate != sample_rate:
        g = gcd(rate, sample_rate)
        data = resample_poly(data, sample_rate // g, rate // g).astype(np.float32)
    return data


def tile_to(samples: np.ndarray, length: int) -> np.ndarray:
    """Repeat a clip until it is ``length`` samples long, then cut it there."""
    if len(samples) == 0:
        raise InputError("cannot tile an empty clip")
    reps = -(-length // len(samples))
    return np.tile(samples, reps)[:length]


def pmr_spectrogram(
    samples: np.ndarray, seconds: float, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Tile to ``seconds``, clip to [-1, 1], ``scipy.signal.spectrogram(nperseg=512,
    noverlap=353)``, log(S + 1e-7), per-clip z-score: (257, 299) for 3 s, (257, 1004) for 10 s."""
    x = np.clip(tile_to(samples, int(round(seconds * sample_rate))), -1.0, 1.0)
    _, _, spec = spectrogram(x, sample_rate, nperseg=NPERSEG, noverlap=NOVERLAP)
    log_spec = np.log(spec + 1e-7)
    return ((log_spec - log_spec.mean()) / (log_spec.std() + 1e-9)).astype(np.float32)


def av_array_specs(seconds: float, frames: int, frame_size: int) -> dict:
    """Cache arrays of an audio-visual dataset: float16 spectrograms, uint8 frames."""
    from fedcmi.data.prepare.cache import ArraySpec

    samples = int(round(seconds * SAMPLE_RATE))
    steps = 1 + (samples - NPERSEG) // (NPERSEG - NOVERLAP)
    return {
        "audio": ArraySpec((NPERSEG // 2 + 1, steps), "float16"),
        "frames": ArraySpec((frames, frame_size, frame_size, 3), "uint8"),
    }
