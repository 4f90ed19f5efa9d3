"""Checkpoint and resume: a run killed with SIGKILL mid-round and resumed writes the same
metrics as an uninterrupted run; corrupt checkpoints fall back to the previous one."""

import os
import signal
import subprocess
import sys
import time

import pytest

from fedcmi.cli import main
from fedcmi.config import load_config
from fedcmi.engine.checkpoint import CheckpointError, load_checkpoint
from fedcmi.engine.runner import run_experiment

SLOW_SYNTHETIC = [
    "data.name=synthetic",
    "data.per_class=1500",
    "data.dim_a=64",
    "data.dim_v=64",
    "rounds=6",
    "federation.num_clients=4",
    "federation.clients_per_round=3",
    "train.local_epochs=3",
    "model.feature_dim=32",
    "engine.threads=1",
]


def write_config(path):
    cfg = load_config(None, SLOW_SYNTHETIC)
    path.write_text(cfg.to_toml())
    return cfg


@pytest.mark.slow
def test_sigkill_mid_round_then_resume_gives_identical_metrics(tmp_path):
    config = tmp_path / "run.toml"
    cfg = write_config(config)
    run_experiment(cfg, tmp_path / "reference")
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedcmi.cli",
            "run",
            "--config",
            str(config),
            "--out",
            str(out),
            "--quiet",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.01)
    time.sleep(0.05)  # into the next round's local training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(metrics.read_text().splitlines())
    assert 3 <= killed_at < 6, "the run must die mid-way"
    assert not (out / "summary.json").exists()
    assert main(["run", "--resume", str(out), "--quiet"]) == 0
    assert metrics.read_bytes() == (tmp_path / "reference" / "metrics.jsonl").read_bytes()
    assert (out / "summary.json").exists()


def test_corrupt_latest_checkpoint_falls_back_to_previous(tmp_path):
    cfg = load_config(
        None,
        [
            *SLOW_SYNTHETIC[:1],
            "rounds=3",
            "federation.num_clients=4",
            "federation.clients_per_round=2",
            "train.local_epochs=1",
        ],
    )
    run_experiment(cfg, tmp_path / "reference")
    out = tmp_path / "run"
    run_experiment(cfg, out)
    latest = out / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:-100])  # truncated
    (out / "summary.json").unlink()
    with pytest.warns(UserWarning, match="checksum mismatch"):
        assert load_checkpoint(out / "checkpoints")["rounds_done"] == 2
    with pytest.warns(UserWarning):
        run_experiment(cfg, out, resume=True)
    assert (out / "metrics.jsonl").read_bytes() == (
        tmp_path / "reference" / "metrics.jsonl"
    ).read_bytes()
    (out / "checkpoints" / "latest.pt").write_bytes(b"junk")
    (out / "checkpoints" / "previous.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        load_checkpoint(out / "checkpoints")


def test_resume_refuses_other_options(tmp_path, capsys):
    assert main(["run", "--resume", str(tmp_path), "--set", "rounds=3"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_a_run_without_a_thread_count_records_the_one_it_used(tmp_path):
    import torch

    overrides = [o for o in SLOW_SYNTHETIC if not o.startswith("engine.threads")]
    cfg = load_config(None, [*overrides, "rounds=1", "data.per_class=40"])
    assert cfg.engine.threads is None
    before = torch.get_num_threads()
    run_experiment(cfg, tmp_path / "run")
    saved = load_config(tmp_path / "run" / "config.toml")
    assert saved.engine.threads == before == torch.get_num_threads()
