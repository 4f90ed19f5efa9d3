"""Speech synthesis with espeak-ng and a numpy log-mel front end (librosa-compatible)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from scipy.signal import get_window, resample_poly

from fedcmi.errors import RunFailure

ENGLISH_ACCENTS = (
    "en-gb",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-rp",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
ESPEAK_RATE = 22050
WAV_HEADER_BYTES = 44  # the streamed header carries placeholder sizes: skip it


class EspeakMissingError(RunFailure):
    """espeak-ng is not installed."""


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakMissingError(
            "espeak-ng is not installed; the av-digits dataset speaks its digits with it. "
            "Install it with `sudo apt-get install -y espeak-ng` (Debian/Ubuntu), "
            "`brew install espeak-ng` (macOS), or run `make demo`, which installs it."
        )
    return exe


@functools.lru_cache(maxsize=1)
def voice_variants() -> tuple[str, ...]:
    """Names of espeak-ng's voice variants (files in ``espeak-ng-data/voices/!v``)."""
    out = subprocess.run(
        [espeak_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"Data at:\s*(\S+)", out)
    if match is None:
        raise RunFailure(f"cannot find espeak-ng's data folder in: {out!r}")
    folder = Path(match.group(1)) / "voices" / "!v"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    if not names:
        raise RunFailure(f"no espeak-ng voice variants found in {folder}")
    return tuple(names)


def speak(word: str, voice: str, pitch: int, speed: int) -> np.ndarray:
    """Synthesise ``word``; returns float32 samples in [-1, 1] at 22,050 Hz."""
    cmd = [espeak_binary(), "-v", voice, "-p", str(pitch), "-s", str(speed), "-a", "100"]
    proc = subprocess.run([*cmd, "--stdout", word], capture_output=True, check=False)
    if proc.returncode != 0 or len(proc.stdout) <= WAV_HEADER_BYTES:
        raise RunFailure(
            f"espeak-ng failed for voice {voice!r}, word {word!r}: {proc.stderr.decode()[:200]}"
        )
    pcm = np.frombuffer(proc.stdout[WAV_HEADER_BYTES:], dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def trim_silence(x: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    active = np.flatnonzero(np.abs(x) >= threshold)
    return x[active[0] : active[-1] + 1] if len(active) else x[:0]


def place_in_window(
    speech: np.ndarray, length: int, rng: np.random.Generator, snr_db: float | None
) -> np.ndarray:
    """Put speech at a random offset of a zero window and add white noise at ``snr_db``."""
    speech = speech[:length]
    out = np.zeros(length, dtype=np.float32)
    start = int(rng.integers(0, length - len(speech) + 1))
    out[start : start + len(speech)] = speech
    if snr_db is not None and len(speech):
        power = float(np.mean(speech.astype(np.float64) ** 2))
        sigma = np.sqrt(power / 10 ** (snr_db / 10))
        out += rng.normal(0.0, sigma, size=length).astype(np.float32)
    return out


def to_16k(x: np.ndarray) -> np.ndarray:
    return resample_poly(x, 320, 441).astype(np.float32)


@functools.lru_cache(maxsize=4)
def mel_filterbank(
    sr: int = 16000, n_fft: int = 512, n_mels: int = 40, fmin: float = 20.0, fmax: float = 8000.0
) -> np.ndarray:
    """HTK-scale triangular filters with Slaney area normalisation: (n_mels, n_fft//2+1)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    fft_freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(fmin)), hz_to_mel(np.array(fmax)), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights


def log_mel(
    clips: np.ndarray,
    sr: int = 16000,
    n_fft: int = 512,
    win_length: int = 400,
    hop: int = 160,
    n_mels: int = 40,
    chunk: int = 256,
) -> np.ndarray:
    """Log-mel spectrograms of a batch of equal-length clips: (N, n_mels, frames)."""
    window = get_window("hann", win_length, fftbins=True)
    pad = (n_fft - win_length) // 2
    window = np.pad(window, (pad, n_fft - win_length - pad))
    fb = mel_filterbank(sr, n_fft, n_mels, 20.0, sr / 2)
    out = []
    for start in range(0, len(clips), chunk):
        x = np.pad(clips[start : start + chunk], ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(x, n_fft, axis=1)[:, ::hop]
        power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2
        mel = np.einsum("mf,ntf->nmt", fb, power)
        out.append(np.log(mel + 1e-6).astype(np.float32))
    return np.concatenate(out)
