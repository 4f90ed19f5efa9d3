"""``[logging] tensorboard``: event files written every round, read back with TensorBoard's
own reader, hold the numbers of ``metrics.jsonl``."""

import json
import sys

import pytest

pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

from fedcmi.config import ConfigError  # noqa: E402
from fedcmi.engine.runner import run_experiment  # noqa: E402
from fedcmi.engine.tensorboard import TensorBoardLog, round_scalars  # noqa: E402


def read_events(run_dir):
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_round_scalars_of_a_hand_written_record():
    record = {
        "round": 4,
        "lr": 0.01,
        "train_loss": 2.5,
        "val": {"acc": 0.5, "per_class_acc": [1.0, 0.0], "imbalance_ratio": 2.0},
        "test": {"acc": 0.25, "per_class_acc": [0.5, float("nan")]},
        "client_logs": [
            {"cid": 3, "modalities": "av", "num_samples": 10, "steps": 2, "loss": 1.0,
             "a_dominant_frac": 1.0, "temperatures": [0.5, 1.0]},
            {"cid": 7, "modalities": "av", "num_samples": 20, "steps": 4, "loss": 3.0,
             "a_dominant_frac": 0.5, "temperatures": [1.0, 0.8]},
            {"cid": 9, "modalities": "a", "num_samples": 5, "steps": 1, "loss": 2.0},
        ],
    }  # fmt: skip
    assert round_scalars(record) == {
        "train/loss": 2.5,
        "train/lr": 0.01,
        "val/acc": 0.5,
        "val/per_class_acc/0": 1.0,
        "val/per_class_acc/1": 0.0,
        "val/imbalance_ratio": 2.0,
        "test/acc": 0.25,
        "test/per_class_acc/0": 0.5,  # an absent class (NaN) has no point
        "clients/loss": 2.0,
        "clients/a_dominant_frac": 0.75,  # mean over the clients that report it
        "clients/temperatures/0": 0.75,
        "clients/temperatures/1": 0.9,
    }


def test_event_files_hold_every_round_of_metrics_jsonl(make_config, tmp_path):
    cfg = make_config("rounds=3", "logging.tensorboard=true", "federation.clients_per_round=3")
    run_experiment(cfg, tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    events = read_events(tmp_path / "run")
    expected: dict[str, list[tuple[int, float]]] = {}
    for line in lines:
        for tag, value in round_scalars(line).items():
            expected.setdefault(tag, []).append((line["round"], value))
    assert events.keys() == expected.keys()
    for tag, points in expected.items():
        assert [s for s, _ in events[tag]] == [s for s, _ in points], tag
        assert [v for _, v in events[tag]] == pytest.approx([v for _, v in points], rel=1e-6)
    # What a FedCMI user watches: accuracy per head, the imbalance ratio, dominance and
    # the class-wise temperatures (from round 2, after the warm-up round).
    for tag in ("val/acc", "test/acc_a", "test/acc_av", "test/imbalance_ratio", "train/loss"):
        assert [s for s, _ in events[tag]] == [1, 2, 3], tag
    assert [s for s, _ in events["clients/a_dominant_frac"]] == [1, 2, 3]
    assert [s for s, _ in events["clients/temperatures/0"]] == [2, 3]
    assert events["test/acc"][-1][1] == pytest.approx(lines[-1]["test"]["acc"])


def test_a_resumed_run_logs_each_round_once(make_config, tmp_path):
    cfg = make_config("rounds=3", "logging.tensorboard=true")
    out = tmp_path / "run"
    run_experiment(cfg, out)
    # Back to the round-2 checkpoint, as after a crash in round 3's writing.
    (out / "checkpoints" / "latest.pt").write_bytes(b"junk")
    (out / "summary.json").unlink()
    with pytest.warns(UserWarning):
        run_experiment(cfg, out, resume=True)
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 2
    events = read_events(out)
    assert [s for s, _ in events["val/acc"]] == [1, 2, 3]
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert events["val/acc"][-1][1] == pytest.approx(last["val"]["acc"])


def test_without_the_package_the_error_names_the_key_and_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"logging\.tensorboard.*fedcmi\[tensorboard\]"):
        TensorBoardLog(tmp_path)
