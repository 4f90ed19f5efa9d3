"""`fedcmi data prepare` on tiny generated raw layouts of CREMA-D and AVE."""

import json

import numpy as np
import pytest
import torch

from fedcmi.data.prepare import prepare
from fedcmi.data.prepare.cache import CacheMismatchError
from fedcmi.data.prepare.crema_d import EMOTIONS


@pytest.fixture(scope="module")
def crema_cache(tmp_path_factory, media):
    raw = media.crema_d(tmp_path_factory.mktemp("crema-raw"))
    out = tmp_path_factory.mktemp("crema-cache") / "cache"
    return raw, out, prepare("crema-d", raw, out, dict(media.small), workers=2)


@pytest.mark.slow
def test_crema_d_prepare_shapes_counts_and_skips(crema_cache):
    raw, out, manifest = crema_cache
    assert manifest["clips"] == 11  # the clip without audio is never a job
    assert manifest["ok"] == 10 and manifest["skipped"] == 2
    audio = np.load(out / "audio.npy", mmap_mode="r")
    frames = np.load(out / "frames.npy", mmap_mode="r")
    assert audio.shape == (11, 257, 48) and audio.dtype == np.float16
    assert frames.shape == (11, 3, 16, 16, 3) and frames.dtype == np.uint8
    skipped = json.loads((out / "skipped.json").read_text())
    reasons = {s["path"].split("/")[-1]: s["reason"] for s in skipped}
    assert "missing audio" in reasons["1001_DFA_NEU_XX.wav"]
    assert "cannot decode" in reasons["1002_DFA_SAD_XX.flv"]
    index = json.loads((out / "index.json").read_text())
    assert {r["key"]: r["label"] for r in index}["1001_DFA_ANG_XX"] == EMOTIONS.index("ANG")
    assert manifest["bytes_per_clip"] == 257 * 48 * 2 + 3 * 16 * 16 * 3


def test_prepare_is_idempotent_and_refuses_other_parameters(media, crema_cache):
    raw, out, manifest = crema_cache
    again = prepare("crema-d", raw, out, dict(media.small))
    assert again["params_hash"] == manifest["params_hash"]
    with pytest.raises(CacheMismatchError, match="other parameters"):
        prepare("crema-d", raw, out, {**media.small, "frames": 2})


def test_prepare_resumes_after_a_kill(media, tmp_path):
    raw = media.crema_d(tmp_path / "raw")
    out = tmp_path / "cache"
    full = prepare("crema-d", raw, out, dict(media.small))
    # Simulate a build killed after its first rows: manifest gone, progress on disk.
    progress = {
        "format": 1,
        "params_hash": full["params_hash"],
        "params": full["params"],
        "done": [0, 1, 2],
        "errors": {},
    }
    (out / "manifest.json").unlink()
    (out / "progress.json").write_text(json.dumps(progress))
    calls = []
    resumed = prepare(
        "crema-d", raw, out, dict(media.small), on_progress=lambda d, n: calls.append(d)
    )
    assert resumed["ok"] == full["ok"] and calls[0] > 3


def test_preprocessed_frame_folders_are_used(media, tmp_path):
    raw = media.crema_d(tmp_path / "raw")
    for k in range(4):
        media.write_jpeg(
            raw / "Image-01-FPS" / "1001_DFA_HAP_XX" / f"{k:05d}.jpg", (40, 30), 50 * k
        )
    prepare("crema-d", raw, tmp_path / "cache", dict(media.small))
    index = [r["key"] for r in json.loads((tmp_path / "cache" / "index.json").read_text())]
    frames = np.load(tmp_path / "cache" / "frames.npy")[index.index("1001_DFA_HAP_XX")]
    assert frames[:, 0, 0, 0].tolist() == [0, 50, 100]  # sorted JPEGs, not the video


def test_speaker_split_and_split_files(media, tmp_path):
    raw = media.crema_d(tmp_path / "raw")
    prepare(
        "crema-d", raw, tmp_path / "spk", {**media.small, "split": "speaker", "test_fraction": 0.5}
    )
    index = json.loads((tmp_path / "spk" / "index.json").read_text())
    test_actors = {r["key"][:4] for r in index if r["split"] == "test"}
    train_actors = {r["key"][:4] for r in index if r["split"] == "train"}
    assert len(test_actors) == 1 and not test_actors & train_actors
    (tmp_path / "train.csv").write_text("\ufeff1001_DFA_ANG_XX,ANG\r\n1001_DFA_HAP_XX,HAP\r\n")
    (tmp_path / "test.csv").write_text("1002_DFA_ANG_XX,ANG\n")
    manifest = prepare(
        "crema-d",
        raw,
        tmp_path / "file",
        {
            **media.small,
            "split": "file",
            "train_file": str(tmp_path / "train.csv"),
            "test_file": str(tmp_path / "test.csv"),
        },
    )
    assert manifest["splits"] == {"test": 1, "train": 2}


def test_ave_prepare_event_cropped(media, tmp_path):
    raw = media.ave(tmp_path / "raw")
    manifest = prepare(
        "ave", raw, tmp_path / "cache", {"seconds": 2.0, "frame_size": 16, "frames": 4}
    )
    assert manifest["class_names"] == ["Church bell", "Dog", "Race car, auto racing"]
    assert manifest["clips"] == 6 and manifest["ok"] == 5
    assert manifest["splits"] == {"test": 1, "train": 3, "val": 1}
    audio = np.load(tmp_path / "cache" / "audio.npy", mmap_mode="r")
    assert audio.shape == (6, 257, 199)
    reasons = [s["reason"] for s in json.loads((tmp_path / "cache" / "skipped.json").read_text())]
    assert any("duplicated VideoID" in r for r in reasons)
    assert any("zero-length" in r for r in reasons)
    assert any("empty file" in r for r in reasons)


def assert_reports_the_final_model(run_dir):
    """The run's last-round test figures are those of its saved final model, evaluated
    again from scratch on the test split (every number of the summary comes from here)."""
    from fedcmi.config import load_config
    from fedcmi.data import load_dataset
    from fedcmi.engine.embedded import ClientTrainer
    from fedcmi.engine.evaluation import evaluate
    from fedcmi.engine.run_folder import RunFolder

    folder = RunFolder(run_dir)
    cfg = load_config(folder.config_file)
    data = load_dataset(cfg.data.name, cfg.data.params)
    trainer = ClientTrainer(cfg, data, torch.device("cpu"), cfg.engine.precision)
    trainer.model.load_state_dict(torch.load(folder.final_file, weights_only=True))
    again = evaluate(trainer.model, data.test, cfg.eval.batch_size, data.num_classes)
    summary, last = folder.summary(), folder.records()[-1]
    assert summary.rounds == 1 and set(last.test) == set(again)
    for key, value in again.items():  # assert_array_equal: NaN equals NaN
        np.testing.assert_array_equal(last.test[key], value, err_msg=key)
    per_class = again["per_class_acc"]
    assert summary.last["test"]["acc"] == again["acc"]
    assert len(per_class) == data.num_classes
    return again


def one_round(tmp_path, name, cache, **data):
    from fedcmi.config import load_config
    from fedcmi.engine.runner import run_experiment

    sets = [
        f"data.name={name}",
        f"data.cache='{cache}'",
        "rounds=1",
        "federation.num_clients=2",
        "federation.clients_per_round=2",
        "federation.min_client_size=1",
        "federation.alpha=100.0",
        "train.batch_size=4",
        "train.local_epochs=1",
        "model.feature_dim=32",
    ]
    sets += [f"data.{k}={v}" for k, v in data.items()]
    return run_experiment(load_config(None, sets), tmp_path / f"run-{name}")


@pytest.mark.slow
def test_one_fedcmi_round_with_resnets_on_prepared_crema_d(media, tmp_path):
    raw = media.crema_d(tmp_path / "raw", actors=("1001", "1002", "1003"))
    prepare("crema-d", raw, tmp_path / "cache", {**media.small, "test_fraction": 0.34})
    one_round(tmp_path, "crema-d", tmp_path / "cache", val_fraction=0.5)
    test = assert_reports_the_final_model(tmp_path / "run-crema-d")
    assert {"acc_av", "acc_va", "acc_a_head"} <= set(test)


def test_prepared_data_keeps_its_stored_dtypes(media, tmp_path):
    from fedcmi.config import load_config
    from fedcmi.data import load_dataset

    raw = media.crema_d(tmp_path / "raw", actors=("1001", "1002", "1003"))
    prepare("crema-d", raw, tmp_path / "cache", {**media.small, "test_fraction": 0.34})
    cache = f"data.cache='{tmp_path / 'cache'}'"
    cfg = load_config(None, ["data.name=crema-d", cache, "data.val_fraction=0.5"])
    data = load_dataset("crema-d", cfg.data.params)
    # Resident as stored: float16 spectrograms, uint8 frames (half and a quarter of fp32).
    for split in (data.train, data.val, data.test):
        assert split.x_a.dtype == torch.float16 and split.x_v.dtype == torch.uint8


@pytest.mark.slow
def test_one_fedcmi_round_with_resnets_on_prepared_ave(media, tmp_path):
    raw = media.ave(tmp_path / "raw")
    prepare("ave", raw, tmp_path / "cache", {"seconds": 2.0, "frame_size": 16, "frames": 4})
    one_round(tmp_path, "ave", tmp_path / "cache", frames=4)
    assert_reports_the_final_model(tmp_path / "run-ave")


@pytest.mark.slow
def test_prepare_command_line(media, tmp_path, capsys):
    from fedcmi.cli import main

    raw = media.ave(tmp_path / "raw")
    out = tmp_path / "cache"
    code = main(
        [
            "data",
            "prepare",
            "ave",
            "--src",
            str(raw),
            "--out",
            str(out),
            "--workers",
            "2",
            "--set",
            "seconds=1.0",
            "--set",
            "frame_size=16",
            "--set",
            "frames=2",
        ]
    )
    assert code == 0
    assert "skip report" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["ok"] == 5
    assert (
        main(["data", "prepare", "ave", "--src", str(raw), "--out", str(out), "--set", "frames=3"])
        == 2
    )  # other parameters: refused, cache kept
    assert "--force" in capsys.readouterr().err
    assert (out / "manifest.json").is_file()


VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "help",
    "now",
    "flood",
    "houston",
    "no",
    "water",
]


def make_crisismmd(root, media):
    """Informative task: 6 train, 2 dev, 2 test pairs; one image missing, one corrupt."""
    from fedcmi.data.prepare.crisismmd import task_file

    columns = list(media.tsv_columns)
    texts = ["RT Help now http://t.co/x", "flood #houston", "no water", "help", "now flood", "no"]
    for split, count in (("train", 6), ("dev", 2), ("test", 2)):
        rows = [columns]
        for k in range(count):
            label = "informative" if k % 2 == 0 else "not_informative"
            image = f"data_image/harvey/{split}/{k}_0.jpg"
            rows.append(
                [
                    "harvey",
                    f"{split}{k}",
                    f"{split}{k}_0",
                    texts[k % len(texts)],
                    image,
                    label,
                    label,
                    label,
                    "Positive",
                ]
            )
            media.write_jpeg(root / image, (40 + 8 * k, 30), 30 * k)
        path = task_file(root, "informative", split)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join("\t".join(r) for r in rows) + "\n")
    (root / "data_image/harvey/train/5_0.jpg").unlink()
    (root / "data_image/harvey/train/4_0.jpg").write_bytes(b"not a jpeg")
    (root / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return root


@pytest.mark.slow
def test_crisismmd_prepare_and_one_round_with_densenet_and_bert(media, tmp_path):
    raw = make_crisismmd(tmp_path / "raw", media)
    manifest = prepare(
        "crisismmd",
        raw,
        tmp_path / "cache",
        {"tokenizer": str(raw / "vocab.txt"), "image_size": 36, "max_length": 8},
    )
    assert manifest["class_names"] == ["informative", "not_informative"]
    assert manifest["splits"] == {"test": 2, "train": 4, "val": 2} and manifest["skipped"] == 2
    assert manifest["params"]["vocab_size"] == len(VOCAB)
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert {r["keys"]["event"] for r in index} == {"harvey"}  # the natural client key
    text = np.load(tmp_path / "cache" / "text.npy")
    assert text[0].tolist()[:5] == [2, 5, 6, 3, 0]  # [CLS] help now [SEP] [PAD]: RT and URL gone
    image = np.load(tmp_path / "cache" / "image.npy")
    assert image.shape == (9, 36, 36, 3)  # the missing image never became a job
    options = {"hidden_size": 16, "layers": 1, "heads": 2, "intermediate_size": 32}
    from fedcmi.config import load_config
    from fedcmi.engine.runner import run_experiment

    sets = [
        "data.name=crisismmd",
        f"data.cache='{tmp_path / 'cache'}'",
        "rounds=1",
        "federation.num_clients=2",
        "federation.clients_per_round=2",
        "federation.min_client_size=1",
        "federation.alpha=100.0",
        "train.batch_size=2",
        "train.local_epochs=1",
        "model.feature_dim=16",
        "model.options_v=" + "{" + ", ".join(f"{k} = {v}" for k, v in options.items()) + "}",
    ]
    run_experiment(load_config(None, sets), tmp_path / "run")
    assert_reports_the_final_model(tmp_path / "run")


def test_natural_split_of_crema_d_gives_one_client_per_actor(media, tmp_path):
    from fedcmi.config import load_config
    from fedcmi.engine.setup import set_up

    raw = media.crema_d(tmp_path / "raw", actors=("1001", "1002", "1003"))
    prepare("crema-d", raw, tmp_path / "cache", {**media.small, "test_fraction": 0.34})
    cfg = load_config(
        None,
        [
            "data.name=crema-d",
            f"data.cache='{tmp_path / 'cache'}'",
            "data.val_fraction=0.5",
            'federation.partitioner="natural"',
            'federation.natural_key="actor"',
            "federation.num_clients=3",
            "federation.clients_per_round=1",
            "federation.min_client_size=1",
        ],
    )
    run = set_up(cfg, torch_settings=False)
    actors = run.data.train.keys["actor"]
    held = [sorted(set(actors[idx])) for idx in run.federation.client_indices]
    assert held == [["1001"], ["1002"], ["1003"]]
