"""`fedcmi calibrate`: central unimodal/joint/oracle figures, probes and the regime check."""

import csv
import json

import pytest

from fedcmi.cli import main
from fedcmi.tools.calibrate import KEYS, calibrate, in_regime
from tests.conftest import synthetic_config


def test_calibration_figures_describe_the_setting():
    # a carries the label, v is pure noise: v is the weak modality, alone at chance
    cfg = synthetic_config("data.signal_a=4.0", "data.signal_v=0.0")
    figures = calibrate(cfg, epochs=20)
    assert tuple(figures) == KEYS
    assert figures["weak"] == "v"
    assert figures["unimodal_a"] > 0.9 and figures["unimodal_v"] < 0.45  # 4 classes
    assert figures["probe_weak_alone"] < 0.45 and figures["probe_strong_alone"] > 0.9
    assert figures["gap"] == pytest.approx(figures["oracle"] - figures["joint"])
    assert all(0.0 <= figures[k] <= 1.0 for k in KEYS if k not in ("weak", "gap"))


def test_calibration_is_reproducible():
    cfg = synthetic_config()
    assert calibrate(cfg, epochs=2) == calibrate(cfg, epochs=2)


def figures(a, v, joint, oracle, weak_drop, strong_drop):
    return {
        "unimodal_a": a,
        "unimodal_v": v,
        "joint": joint,
        "oracle": oracle,
        "gap": oracle - joint,
        "weak": "v",
        "probe_weak_joint": 0.6 - weak_drop,
        "probe_weak_alone": 0.6,
        "probe_strong_joint": 0.8 - strong_drop,
        "probe_strong_alone": 0.8,
    }


def test_regime_thresholds():
    assert in_regime(figures(0.86, 0.66, 0.90, 0.94, 0.05, 0.0))
    assert in_regime(figures(0.66, 0.86, 0.90, 0.94, 0.0, 0.06))  # either encoder starved
    assert not in_regime(figures(0.95, 0.66, 0.90, 0.94, 0.05, 0.0))  # strong too easy
    assert not in_regime(figures(0.86, 0.50, 0.90, 0.94, 0.05, 0.0))  # weak too weak
    assert not in_regime(figures(0.86, 0.66, 0.92, 0.94, 0.05, 0.0))  # gap 0.02 < 0.025
    assert not in_regime(figures(0.86, 0.66, 0.90, 0.94, 0.04, 0.04))  # nobody starved


def test_cli_writes_exactly_the_calibration_keys(tmp_path, capsys):
    out = tmp_path / "cal.json"
    args = ["calibrate", "--config", "mfeat-fedavg", "--epochs", "2", "--json", str(out)]
    assert main(args) == 0
    saved = json.loads(out.read_text())
    assert tuple(saved) == KEYS
    assert "discriminating regime" in capsys.readouterr().out
    assert main(["calibrate", "--config", "mfeat-fedavg", "--epochs", "0"]) == 2


def test_cli_calibrates_a_grid_and_resumes(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'base = "{}"\n[set]\n"data.name" = "mfeat"\n'
        '[axes]\n"data.views" = [["pix", "fou"], ["fac", "mor"]]\n'.format(
            (tmp_path / "base.toml").as_posix()
        )
    )
    (tmp_path / "base.toml").write_text('[algorithm]\nname = "fedavg"\n[data]\nname = "mfeat"\n')
    out = tmp_path / "cal"
    args = ["calibrate", "--grid", str(grid), "--epochs", "1", "--out", str(out)]
    assert main(args) == 0
    with open(out / "calibration.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["data.views"] for r in rows] == ["['pix', 'fou']", "['fac', 'mor']"]
    assert all(r["regime"] in ("yes", "no") and r["epochs"] == "1" for r in rows)
    assert "| data.views | unimodal_a |" in capsys.readouterr().out
    assert main(args) == 0  # finished cells are not recomputed
    assert "done" not in capsys.readouterr().out
