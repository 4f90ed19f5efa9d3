"""End-to-end CLI runs on synthetic and a small av-digits, presets and errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fedcmi.cli import main
from fedcmi.config import ConfigError, load_config

PRESETS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
SMALL = [
    "--set",
    "rounds=2",
    "--set",
    "federation.num_clients=4",
    "--set",
    "federation.clients_per_round=2",
    "--set",
    "train.local_epochs=1",
]


def test_run_on_synthetic_writes_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "--set",
            "data.name=synthetic",
            *SMALL,
            "--set",
            "federation.min_client_size=5",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algorithm"] == "fedcmi" and summary["rounds"] == 2
    assert load_config(out / "config.toml").data.name == "synthetic"
    out = capsys.readouterr().out
    assert "mean of last 2" in out and "best val (round" in out and "probe_a" in out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_run_on_small_av_digits(tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            "--config",
            "av-digits-fedcmi",
            *SMALL,
            "--set",
            "data.per_class=10",
            "--set",
            "federation.min_client_size=5",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [1, 2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["sizes"] == {"train": 70, "val": 10, "test": 20}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_every_preset_is_valid(preset):
    cfg = load_config(preset)
    assert cfg.rounds >= 1


def test_configs_lists_presets(capsys):
    assert main(["configs"]) == 0
    assert "av-digits-fedcmi" in capsys.readouterr().out


def test_configs_does_not_import_torch():
    # A fresh interpreter: the listing reads the preset files, not the registries.
    script = (
        "import sys; from fedcmi.cli import main; main(['configs']); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_data_info_for_synthetic(capsys):
    assert main(["data", "info", "synthetic", "--set", "per_class=10"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sizes"]["train"] + info["sizes"]["val"] + info["sizes"]["test"] == 40


def test_bad_override_exits_2_with_the_key(capsys):
    assert main(["run", "--set", "federation.alpah=1", "--quiet"]) == 2
    assert "federation.alpah" in capsys.readouterr().err


def test_unknown_preset_is_a_clear_error(capsys):
    assert main(["run", "--config", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err


def test_user_errors_print_one_line_and_bugs_show_their_traceback(monkeypatch, capsys):
    assert main(["run", "--config", "no-such-preset"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-preset" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match="no-such-preset"):  # --debug: the traceback
        main(["--debug", "run", "--config", "no-such-preset"])

    import fedcmi.tools.tables

    def bug(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(fedcmi.tools.tables, "make_table", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["table", "results.csv"])
