"""Per-client quality profiles of av-digits: each profile's rendering equals the dataset
built at its levels, clients take profile k mod P, the manifest records them, and the
start-of-run description leaves the run's numbers unchanged. Natural keys: voice and
accent."""

import json

import pytest
import torch

from fedcmi.config import load_config
from fedcmi.data import DATASETS, audio, load_dataset
from fedcmi.engine.federation import build_federation
from fedcmi.engine.quality import quality_lines
from fedcmi.engine.runner import run_experiment
from fedcmi.errors import InputError

needs_espeak = pytest.mark.skipif(
    audio.shutil.which("espeak-ng") is None, reason="espeak-ng not installed"
)
MIXED = {"client_audio_snr_db": [10.0, -5.0], "client_image_noise": [0.5, 1.0]}


def params(**kwargs):
    return DATASETS.get("av-digits").Params(per_class=6, audio_snr_db=10.0, **kwargs)


def cache_blob(folder, p):
    from fedcmi.data.av_digits import CACHE_VERSION
    from fedcmi.data.base import params_key

    return torch.load(folder / f"av-digits-{params_key('av-digits', p, CACHE_VERSION)}.pt")


@needs_espeak
def test_a_profile_is_the_dataset_built_at_its_levels(tmp_path):
    mixed = load_dataset("av-digits", params(**MIXED), tmp_path)
    plain_params = params().__class__(per_class=6, audio_snr_db=-5.0, image_noise=1.0)
    load_dataset("av-digits", plain_params, tmp_path)
    blob, plain = cache_blob(tmp_path, params(**MIXED)), cache_blob(tmp_path, plain_params)
    # The same speech, offsets and noise draws, only the noise's scale differs.
    assert torch.equal(blob["x_a_at"]["-5.0"], plain["x_a"])
    assert torch.equal(blob["x_v_at"]["1.0"], plain["x_v"])
    # Profile 0 holds the dataset's own levels: its rendering is the training split.
    assert [q.settings for q in mixed.quality] == [
        {"audio_snr_db": 10.0, "image_noise": 0.5},
        {"audio_snr_db": -5.0, "image_noise": 1.0},
    ]
    assert torch.equal(mixed.quality[0].train.x_a, mixed.train.x_a)
    assert torch.equal(mixed.quality[1].train.y, mixed.train.y)
    assert not torch.equal(mixed.quality[1].train.x_v, mixed.train.x_v)
    assert [mixed.client_train(k) is mixed.quality[k % 2].train for k in range(4)] == [True] * 4


@needs_espeak
def test_voices_are_natural_keys_one_client_per_voice(tmp_path):
    data = load_dataset("av-digits", params(), tmp_path)
    voices = data.train.keys["voice"]
    assert len(voices) == len(data.train)
    assert all(v.startswith(a) for v, a in zip(voices, data.train.keys["accent"]))
    cfg = load_config(
        None,
        [
            "federation.partitioner=natural",
            "federation.natural_key=voice",
            f"federation.num_clients={len(set(voices))}",
            "federation.clients_per_round=1",
            "federation.min_client_size=1",
        ],
    )
    fed = build_federation(data.train.y.numpy(), cfg.federation, 1, 0, data.train.keys)
    assert sorted(len(set(voices[idx])) for idx in fed.client_indices) == [1] * len(set(voices))


def test_profile_lists_of_different_lengths_are_refused_naming_both():
    with pytest.raises(InputError, match="client_audio_snr_db has 2 entries but data.client_i"):
        params(client_audio_snr_db=[0.0, 1.0], client_image_noise=[0.5, 1.0, 1.5])
    with pytest.raises(InputError, match=r"data.client_image_noise = \[-0.5\]: -0.5 is negative"):
        params(client_image_noise=[-0.5])


def test_one_list_alone_keeps_the_other_modality_at_the_dataset_level():
    assert params(client_image_noise=[0.5, 2.0]).profiles() == [(10.0, 0.5), (10.0, 2.0)]
    assert params().profiles() == []


def test_quality_lines_name_the_dominant_modality():
    entry = {
        "profile": 1,
        "levels": {"audio_snr_db": -14.0, "image_noise": 0.6},
        "clients": [1, 3],
        "epochs": 20,
        "val_acc": 0.9,
        "val_acc_a": 0.22,
        "val_acc_v": 0.85,
        "dominant": "v",
        "dominant_name": "image",
    }
    head, line = quality_lines([entry])
    assert head == "client quality: 1 profiles (client k trains on profile k mod 1)"
    assert line == (
        "  profile 1 (audio_snr_db -14.0, image_noise 0.6): 2 clients; central joint model "
        "(20 epochs), val accuracy of a alone 0.220, v alone 0.850: image dominates"
    )


@needs_espeak
def test_the_manifest_records_each_clients_profile_and_the_description_changes_nothing(
    tmp_path,
):
    overrides = [
        "data.name=av-digits",
        "data.per_class=6",
        "data.audio_snr_db=10.0",
        "data.client_audio_snr_db=[10.0, -5.0]",
        "data.client_image_noise=[0.5, 1.0]",
        "algorithm.name=fedcmi",
        "rounds=1",
        "federation.num_clients=4",
        "federation.clients_per_round=2",
        "federation.min_client_size=2",
        "train.batch_size=8",
        "engine.device=cpu",
    ]
    seen = []
    for epochs in (0, 1):
        cfg = load_config(None, [*overrides, f"eval.quality_epochs={epochs}"])
        out = tmp_path / f"e{epochs}"
        run_experiment(cfg, out, cache_dir=tmp_path / "cache", on_start=seen.append)
        seen_manifest = json.loads((out / "manifest.json").read_text())
        assert [c["quality"]["profile"] for c in seen_manifest["clients"]] == [0, 1, 0, 1]
        assert seen_manifest["clients"][1]["quality"]["audio_snr_db"] == -5.0
        assert seen_manifest["client_quality"][1]["clients"] == [1, 3]
    assert "dominant" not in seen[0][0] and seen[1][0]["dominant"] in ("a", "v")
    lines = [(tmp_path / f"e{e}" / "metrics.jsonl").read_text() for e in (0, 1)]
    assert lines[0] == lines[1]
    assert {"a_dominant_frac"} <= set(json.loads(lines[1])["client_logs"][0])
