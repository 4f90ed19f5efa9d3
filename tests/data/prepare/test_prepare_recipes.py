"""The audio recipe of the paper's datasets: shapes, tiling, normalisation, WAV reading."""

import numpy as np
import pytest
from scipy.io import wavfile

from fedcmi.data.prepare.spectrogram import load_wav, pmr_spectrogram, tile_to


def test_tile_repeats_then_cuts():
    assert tile_to(np.array([1.0, 2.0, 3.0]), 7).tolist() == [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(ValueError):
        tile_to(np.array([]), 3)


@pytest.mark.parametrize(("seconds", "frames"), [(3, 299), (10, 1004)])
def test_pmr_spectrogram_shapes_match_the_spec(seconds, frames):
    rng = np.random.default_rng(0)
    spec = pmr_spectrogram(rng.normal(0, 0.1, 16_000).astype(np.float32), seconds)
    assert spec.shape == (257, frames)
    assert abs(float(spec.mean())) < 1e-4 and float(spec.std()) == pytest.approx(1.0, rel=1e-3)


def test_load_wav_resamples_and_scales(tmp_path):
    t = np.arange(22_050) / 22_050
    pcm = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    path = tmp_path / "tone.wav"
    wavfile.write(path, 22_050, np.stack([pcm, pcm], axis=1))
    x = load_wav(path)
    assert x.dtype == np.float32 and len(x) == 16_000
    assert 0.45 < float(np.abs(x).max()) < 0.55


def test_load_wav_names_the_broken_file(tmp_path):
    bad = tmp_path / "1076_MTI_SAD_XX.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ValueError, match="1076_MTI_SAD_XX.wav"):
        load_wav(bad)
