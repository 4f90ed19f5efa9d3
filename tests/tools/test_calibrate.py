"""`fedcmi calibrate`: central unimodal/joint/oracle figures, probes and the regime check."""

import csv
import dataclasses
import json

import pytest
import torch

from fedcmi.cli import main
from fedcmi.tools.calibrate import (
    FIGURES,
    KEYS,
    calibrate,
    in_regime,
    regime_failures,
    summarise_seeds,
)


@pytest.mark.slow
def test_calibration_figures_describe_the_setting(make_config):
    # a carries the label, v is pure noise: v is the weak modality, alone at chance
    cfg = make_config("data.signal_a=4.0", "data.signal_v=0.0")
    figures = calibrate(cfg, epochs=20)
    assert tuple(figures) == KEYS
    assert figures["weak"] == "v"
    assert figures["unimodal_a"] > 0.9 and figures["unimodal_v"] < 0.45  # 4 classes
    assert figures["probe_weak_alone"] < 0.45 and figures["probe_strong_alone"] > 0.9
    assert figures["gap"] == pytest.approx(figures["oracle"] - figures["joint"])
    starved = figures["probe_weak_alone"] - figures["probe_weak_joint"]
    assert figures["weak_starvation"] == pytest.approx(starved)
    bounded = [k for k in KEYS if k not in ("weak", "gap", "weak_starvation")]
    assert all(0.0 <= figures[k] <= 1.0 for k in bounded)


def test_calibration_reads_the_val_split_not_test(make_config, monkeypatch):
    # a test split of one class only would change every figure if it were read
    import fedcmi.engine.setup as setup

    cfg = make_config()
    before = calibrate(cfg, epochs=2)
    real_load = setup.load_dataset

    def load_with_broken_test(*args, **kwargs):
        data = real_load(*args, **kwargs)
        broken = dataclasses.replace(data.test, y=torch.zeros_like(data.test.y))
        return dataclasses.replace(data, test=broken)

    monkeypatch.setattr(setup, "load_dataset", load_with_broken_test)
    assert calibrate(cfg, epochs=2) == before


def test_calibration_is_reproducible(make_config):
    cfg = make_config()
    assert calibrate(cfg, epochs=2) == calibrate(cfg, epochs=2)


def seed_figures(a, v, joint, oracle, weak_drop, weak="v"):
    return {
        "unimodal_a": a,
        "unimodal_v": v,
        "joint": joint,
        "oracle": oracle,
        "gap": oracle - joint,
        "probe_weak_joint": 0.6 - weak_drop,
        "probe_weak_alone": 0.6,
        "weak_starvation": weak_drop,
        "probe_strong_joint": 0.8,
        "probe_strong_alone": 0.8,
        "weak": weak,
    }


def three_seeds(*args, gaps=(0.04, 0.04, 0.04), weak=("v", "v", "v")):
    a, v, joint, weak_drop = args
    return summarise_seeds(
        [seed_figures(a, v, joint, joint + g, weak_drop, w) for g, w in zip(gaps, weak)]
    )


def test_seed_summary_is_mean_and_standard_error():
    summary = three_seeds(0.86, 0.66, 0.90, 0.05, gaps=(0.03, 0.04, 0.08))
    # gaps 0.03, 0.04, 0.08: mean 0.05, sample std sqrt((4 + 1 + 9) e-4 / 2) = 0.026458,
    # SE = 0.026458 / sqrt(3) = 0.015275
    assert summary["figures"]["gap"]["mean"] == pytest.approx(0.05)
    assert summary["figures"]["gap"]["se"] == pytest.approx(0.015275, abs=1e-6)
    assert summary["split"] == "val" and summary["seeds"] == 3 and summary["weak"] == "v"
    assert tuple(summary["figures"]) == FIGURES


def test_regime_thresholds():
    assert in_regime(three_seeds(0.86, 0.66, 0.90, 0.03))
    assert not in_regime(three_seeds(0.95, 0.66, 0.90, 0.05))  # strong too easy
    assert not in_regime(three_seeds(0.86, 0.50, 0.90, 0.05))  # weak too weak
    assert not in_regime(three_seeds(0.86, 0.66, 0.90, 0.029))  # weak encoder not starved
    # gaps 0.03, 0.04, 0.08: mean 0.05 exceeds 0.025 by 0.025, more than its SE 0.0153
    assert in_regime(three_seeds(0.86, 0.66, 0.90, 0.05, gaps=(0.03, 0.04, 0.08)))
    # gaps 0.0, 0.03, 0.08: mean 0.0367, SE 0.0233 > 0.0367 - 0.025 = 0.0117
    noisy = three_seeds(0.86, 0.66, 0.90, 0.05, gaps=(0.0, 0.03, 0.08))
    assert regime_failures(noisy) == ["gap 0.037 - 0.025 <= SE 0.023"]
    mixed = three_seeds(0.86, 0.66, 0.90, 0.05, weak=("v", "a", "v"))
    assert regime_failures(mixed) == ["the weak modality differs between seeds"]
    two = summarise_seeds([seed_figures(0.86, 0.66, 0.90, 0.94, 0.05)] * 2)
    assert regime_failures(two) == ["2 seeds < 3"]


@pytest.mark.slow
def test_cli_writes_exactly_the_calibration_keys(tmp_path, capsys):
    out = tmp_path / "cal.json"
    args = ["calibrate", "--config", "mfeat-fedavg", "--epochs", "1", "--json", str(out)]
    assert main(args) == 0
    saved = json.loads(out.read_text())
    assert saved["split"] == "val" and saved["seeds"] == 3
    assert tuple(saved["figures"]) == FIGURES
    assert all(set(stat) == {"mean", "se"} for stat in saved["figures"].values())
    assert [tuple(run) for run in saved["per_seed"]] == [KEYS] * 3
    assert "regime" in capsys.readouterr().out
    assert main(["calibrate", "--config", "mfeat-fedavg", "--epochs", "0"]) == 2


@pytest.mark.slow
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
    args = ["calibrate", "--grid", str(grid), "--epochs", "1", "--seeds", "2", "--out", str(out)]
    assert main(args) == 0
    with open(out / "calibration.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["data.views"] for r in rows] == ["['pix', 'fou']", "['fac', 'mor']"]
    # two seeds are too few for the regime, whatever the figures
    assert all(r["regime"] == "no" and r["epochs"] == "1" and r["seeds"] == "2" for r in rows)
    assert all(float(r["gap_se"]) >= 0 for r in rows)
    assert "| data.views | unimodal_a |" in capsys.readouterr().out
    assert main(args) == 0  # finished cells are not recomputed
    assert "done" not in capsys.readouterr().out
