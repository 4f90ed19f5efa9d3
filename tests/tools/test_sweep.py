"""Sweeps (resume), tables (mean/std math, best marks), plots and the HTML report."""

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fedcmi.cli import main
from fedcmi.config import ConfigError
from fedcmi.tools.results import read_results
from fedcmi.tools.sweep import load_grid, run_sweep
from fedcmi.tools.tables import make_table

GRID = """
description = "test grid"
[set]
rounds = 2
"data.name" = "synthetic"
"federation.num_clients" = 4
"federation.clients_per_round" = 2
"federation.min_client_size" = 5
"train.local_epochs" = 1
"model.feature_dim" = 16
[axes]
"algorithm.name" = ["fedavg", "fedcmi"]
[methods.fedcmi]
prox_mu = 0.01
"""


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    return path


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "grid.toml").write_text(GRID)
    out = tmp / "out"
    assert main(["sweep", str(tmp / "grid.toml"), "--out", str(out)]) == 0
    return out


def test_two_cell_sweep_end_to_end(finished_sweep):
    rows, axes = read_results(finished_sweep / "results.csv")
    assert axes == ["algorithm.name"]
    assert [r["algorithm.name"] for r in rows] == ["fedavg", "fedcmi"]
    assert rows[0]["acc_va"] == "" and rows[1]["acc_va"] != ""  # fedavg has no IP head
    for row in rows:
        summary = json.loads((finished_sweep / row["run_dir"] / "summary.json").read_text())
        assert float(row["acc"]) == summary["last_mean"]["test"]["acc"]
        assert float(row["best_acc"]) == summary["best"]["test"]["acc"]
        assert float(row["probe_a"]) == summary["probe_a"]
        assert int(row["rounds"]) == 2 and float(row["wall_seconds"]) > 0


def test_sweep_resume_skips_finished_cells_and_reruns_killed_ones(grid_file, tmp_path):
    grid = load_grid(grid_file)
    out = tmp_path / "out"
    run_sweep(grid, out)
    fedavg_dir = out / "runs" / grid.cells[0].cell_id
    fedcmi_dir = out / "runs" / grid.cells[1].cell_id
    finished_mtime = (fedavg_dir / "summary.json").stat().st_mtime_ns
    (fedcmi_dir / "summary.json").unlink()  # as if killed before the end
    events = []
    run_sweep(
        grid, out, on_cell=lambda cell, summary, status: events.append((cell.cell_id, status))
    )
    assert events == [
        (grid.cells[0].cell_id, "skipped (finished earlier)"),
        (grid.cells[1].cell_id, "done"),
    ]
    assert (fedavg_dir / "summary.json").stat().st_mtime_ns == finished_mtime
    assert len(read_results(out / "results.csv")[0]) == 2


def test_methods_get_their_own_algorithm_table(grid_file):
    grid = load_grid(grid_file)
    assert grid.cells[0].config["algorithm"] == {"name": "fedavg"}
    assert grid.cells[1].config["algorithm"] == {"name": "fedcmi", "prox_mu": 0.01}
    assert all(c.config["rounds"] == 2 for c in grid.cells)


def test_variants_axis(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(
        GRID.replace('"algorithm.name" = ["fedavg", "fedcmi"]', 'variant = ["full", "uniform"]')
        + '[variants.full]\n[variants.uniform]\n"algorithm.temperature" = "uniform"\n'
    )
    cells = load_grid(path).cells
    assert cells[1].config["algorithm"]["temperature"] == "uniform"
    assert "temperature" not in cells[0].config.get("algorithm", {})


def test_invalid_cell_is_refused_before_running(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(GRID.replace("prox_mu = 0.01", "prox_muu = 0.01"))
    with pytest.raises(ConfigError, match="prox_muu"):
        load_grid(path)


COLUMNS = ["acc", "acc_a", "acc_v", "acc_av", "acc_va", "per_class_std", "rounds", "run_dir"]


def write_results(path: Path, rows, axes=("algorithm.name", "alpha", "seed")):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*axes, *COLUMNS])
        writer.writerows(rows)


def test_table_mean_and_sample_std(tmp_path):
    path = tmp_path / "results.csv"
    write_results(
        path,
        [
            ["fedavg", 0.1, 0, 0.80, 0.7, 0.4, "", "", 0.1, 5, "x"],
            ["fedavg", 0.1, 1, 0.90, 0.7, 0.6, "", "", 0.2, 5, "x"],
            ["fedcmi", 0.1, 0, 0.85, 0.7, 0.7, 0.6, 0.5, 0.3, 5, "x"],
            ["fedcmi", 0.1, 1, 0.87, 0.7, 0.9, 0.6, 0.7, 0.3, 5, "x"],
        ],
    )
    text = make_table(path, metrics=["acc", "acc_v", "acc_va", "per_class_std"])
    lines = text.splitlines()
    assert lines[0] == "| algorithm.name | alpha | runs | acc | acc_v | acc_va | per_class_std |"
    # fedavg acc: mean 0.85, sample std sqrt(((0.05)^2 * 2) / 1) = 0.070711
    assert (
        lines[2]
        == "| fedavg | 0.1 | 2 | 0.8500 ± 0.0707 | 0.5000 ± 0.1414 | – | **0.1500 ± 0.0707** |"
    )
    assert (
        lines[3]
        == "| fedcmi | 0.1 | 2 | **0.8600 ± 0.0141** | **0.8000 ± 0.1414** | 0.6000 ± 0.1414 "
        "| 0.3000 ± 0.0000 |"
    )
    latex = make_table(path, metrics=["acc"], fmt="latex")
    assert r"\textbf{0.8600 $\pm$ 0.0141}" in latex and r"\begin{tabular}" in latex
    as_csv = make_table(path, by=["algorithm.name"], metrics=["acc"], fmt="csv").splitlines()
    assert as_csv[0] == "algorithm.name,runs,acc_mean,acc_std,acc_best"
    assert as_csv[2] == "fedcmi,2,0.860000,0.014142,*"
    with pytest.raises(ValueError, match="--by"):
        make_table(path, by=["nope"])


def test_paired_differences_with_student_t_intervals(tmp_path):
    path = tmp_path / "results.csv"
    rows = []
    for seed, base, better, same in [
        (0, 0.50, 0.60, 0.51),
        (1, 0.60, 0.71, 0.62),
        (2, 0.70, 0.82, 0.73),
    ]:
        rows += [
            ["fedavg", 1.0, seed, base, "", "", "", "", 0.1, 5, "x"],
            ["fedcmi", 1.0, seed, better, "", "", "", "", 0.1, 5, "x"],
            ["fedprox", 1.0, seed, same, "", "", "", "", 0.1, 5, "x"],
        ]
    rows.append(["fedcmi", 1.0, 3, 0.99, "", "", "", "", 0.1, 5, "x"])  # no fedavg partner
    write_results(path, rows)
    lines = make_table(path, metrics=["acc"], baseline="fedavg").splitlines()
    assert lines[0] == "| algorithm.name | alpha | pairs | Δacc |"
    # fedcmi - fedavg: 0.10, 0.11, 0.12 -> mean 0.11, sd 0.01,
    # half-width t(0.975, 2) * 0.01 / sqrt(3) = 4.302653 * 0.005774 = 0.024841
    assert lines[2] == "| fedcmi | 1.0 | 3 | **+0.1100 [+0.0852, +0.1348]** |"
    # fedprox - fedavg: 0.01, 0.02, 0.03 -> mean 0.02, [-0.0048, +0.0448] contains 0
    assert lines[3] == "| fedprox | 1.0 | 3 | +0.0200 [-0.0048, +0.0448] |"
    as_csv = make_table(path, metrics=["acc"], baseline="fedavg", fmt="csv").splitlines()
    assert as_csv[0] == "algorithm.name,alpha,pairs,acc_diff,acc_low,acc_high,acc_excludes_0"
    assert as_csv[1] == "fedcmi,1.0,3,0.110000,0.085159,0.134841,*"
    with pytest.raises(ValueError, match="no runs"):
        make_table(path, baseline="fedsgd")
    write_results(
        tmp_path / "noseed.csv",
        [["fedavg", 1.0, 0.5, "", "", "", "", 0.1, 5, "x"]],
        axes=("algorithm.name", "alpha"),
    )
    with pytest.raises(ValueError, match="seed"):
        make_table(tmp_path / "noseed.csv", baseline="fedavg")


def two_setting_results(path: Path) -> None:
    """2 settings (ratio 1.0 and 0.5) x 3 seeds, fedcmi = fedavg + 0.02 in every pair;
    the settings differ by 0.1 so that pairing across them would show."""
    rows = []
    for ratio, level in [(1.0, 0.5), (0.5, 0.6)]:
        for seed, noise in [(0, 0.0), (1, 0.03), (2, -0.02)]:
            rows += [
                ["fedavg", ratio, seed, level + noise, "", "", "", "", 0.1, 5, "x"],
                ["fedcmi", ratio, seed, level + noise + 0.02, "", "", "", "", 0.1, 5, "x"],
            ]
    write_results(path, rows, axes=("algorithm.name", "multimodal_ratio", "seed"))


def test_pairing_refuses_a_by_that_drops_an_axis(tmp_path):
    path = tmp_path / "results.csv"
    two_setting_results(path)
    with pytest.raises(ValueError, match="also varies multimodal_ratio"):
        make_table(path, by=["algorithm.name"], metrics=["acc"], baseline="fedavg")
    lines = make_table(path, metrics=["acc"], baseline="fedavg").splitlines()
    # every pair differs by exactly +0.02: mean +0.02, sd 0, interval [+0.02, +0.02]
    assert lines[2] == "| fedcmi | 1.0 | 3 | **+0.0200 [+0.0200, +0.0200]** |"
    assert lines[3] == "| fedcmi | 0.5 | 3 | **+0.0200 [+0.0200, +0.0200]** |"
    # pooling without a baseline is a mean over both settings, which is allowed
    assert "| fedcmi | 6 |" in make_table(path, by=["algorithm.name"], metrics=["acc"])


def test_empty_and_duplicated_results_are_refused(tmp_path):
    path = tmp_path / "results.csv"
    write_results(path, [])
    with pytest.raises(ValueError, match="no runs"):
        make_table(path)
    row = ["fedavg", 1.0, 0, 0.5, "", "", "", "", 0.1, 5, "x"]
    write_results(path, [row, row])
    with pytest.raises(ValueError, match="lines 2 and 3 are the same cell"):
        make_table(path)


def test_a_method_without_pairs_is_listed_and_two_pairs_are_not_marked(tmp_path):
    path = tmp_path / "results.csv"
    write_results(
        path,
        [
            ["fedavg", 1.0, 0, 0.50, "", "", "", "", 0.1, 5, "x"],
            ["fedavg", 1.0, 1, 0.60, "", "", "", "", 0.1, 5, "x"],
            ["fedcmi", 1.0, 0, 0.70, "", "", "", "", 0.1, 5, "x"],
            ["fedcmi", 1.0, 1, 0.81, "", "", "", "", 0.1, 5, "x"],
            ["fedprox", 1.0, 7, 0.55, "", "", "", "", 0.1, 5, "x"],  # no fedavg at seed 7
        ],
    )
    lines = make_table(path, metrics=["acc"], baseline="fedavg").splitlines()
    # fedcmi - fedavg: 0.20, 0.21 -> mean 0.205, sd 0.007071, half-width
    # t(0.975, 1) * 0.007071 / sqrt(2) = 12.706205 * 0.005 = 0.063531: excludes 0, but
    # two pairs are too few to mark
    assert lines[2] == "| fedcmi | 1.0 | 2 | +0.2050 [+0.1415, +0.2685] |"
    assert lines[3] == "| fedprox | 1.0 | 0 | – |"


@pytest.mark.slow
def test_plots_have_the_expected_figures(finished_sweep, tmp_path):
    runs = sorted((finished_sweep / "runs").iterdir())
    assert main(["plot", *map(str, runs), "--out", str(tmp_path / "plots")]) == 0
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"accuracy.png", "per_class.png", "imbalance.png", "dominance.png"} <= names
    assert any(n.startswith("temperatures_") for n in names)  # only the fedcmi run has them
    for path in (tmp_path / "plots").iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


@pytest.mark.slow
def test_run_and_sweep_reports_are_self_contained(finished_sweep):
    assert main(["report", str(finished_sweep)]) == 0
    page = (finished_sweep / "report.html").read_text()
    assert "<table>" in page and "fedcmi" in page and "data:image/png;base64," in page
    assert "src='http" not in page and 'src="http' not in page
    run = next((finished_sweep / "runs").iterdir())
    assert main(["report", str(run)]) == 0
    run_page = (run / "report.html").read_text()
    assert "Federation" in run_page and "[federation]" in run_page
    assert run_page.count("data:image/png;base64,") >= 3


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(finished_sweep, tmp_path):
    from matplotlib.image import imread

    main(["report", str(finished_sweep)])
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            (finished_sweep / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = imread(shot)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    assert pixels.std() > 0.05  # not blank
    assert (pixels[..., :3] < 0.5).mean() > 0.005  # dark text and plot lines are present


def test_defaults_grid_reproduces_the_presets():
    from fedcmi.config import config_from_dict, load_config

    root = Path(__file__).resolve().parents[2] / "configs"
    grid = load_grid(root / "grids" / "defaults-av-digits.toml")
    for cell in grid.cells:
        preset = load_config(root / f"av-digits-{cell.axes['algorithm.name']}.toml")
        preset.seed = cell.axes["seed"]
        assert config_from_dict(cell.config) == preset


def test_a_failing_cell_does_not_stop_the_others(grid_file, tmp_path, monkeypatch):
    from fedcmi.tools import sweep

    real = sweep._run_cell

    def flaky(config, out_dir, threads):
        if config["algorithm"]["name"] == "fedavg":
            raise ValueError("boom")
        return real(config, out_dir, threads)

    monkeypatch.setattr(sweep, "_run_cell", flaky)
    grid = load_grid(grid_file)
    events = []
    with pytest.raises(sweep.SweepError, match="1 cell"):
        run_sweep(grid, tmp_path / "out", on_cell=lambda c, s, status: events.append(status))
    assert events[0].startswith("FAILED") and events[1] == "done"
    assert "boom" in (tmp_path / "out" / "runs" / grid.cells[0].cell_id / "error.txt").read_text()
    rows = read_results(tmp_path / "out" / "results.csv")[0]
    assert len(rows) == 1
    # the failed cell is counted, not dropped: failures.csv names it and its error
    with open(tmp_path / "out" / "failures.csv", newline="") as fh:
        failures = list(csv.DictReader(fh))
    assert [f["algorithm.name"] for f in failures] == ["fedavg"]
    assert failures[0]["error"] == "ValueError: boom"
    assert failures[0]["run_dir"] == f"runs/{grid.cells[0].cell_id}"
    # every finished row carries the run's training extremes
    assert float(rows[0]["max_client_loss"]) > 0 and float(rows[0]["max_grad_norm"]) > 0


def test_training_extremes_are_the_largest_client_loss_and_step_norm():
    from fedcmi.engine.run_folder import RoundRecord
    from fedcmi.tools.sweep import training_extremes

    def record(logs):
        return RoundRecord(1, 0.1, [], 0.0, val={}, test={}, client_logs=logs)

    records = [
        record([{"loss": 2.0, "grad_norm_max": 3.0}, {"loss": 9.5, "grad_norm_max": 1.0}]),
        record([{"loss": 4.0, "grad_norm_max": 7.25}, {"loss": 1.0}]),
    ]
    assert training_extremes(records) == {"max_client_loss": 9.5, "max_grad_norm": 7.25}
    assert training_extremes([record([])]) == {"max_client_loss": "", "max_grad_norm": ""}


def test_table_command_draws_bars(tmp_path, capsys):
    path = tmp_path / "results.csv"
    write_results(
        path,
        [
            ["fedavg", 0.1, 0, 0.8, 0.7, 0.4, "", "", 0.8, 0.8, 0.1, 5, 1, "x"],
            ["fedcmi", 0.1, 0, 0.9, 0.7, 0.7, 0.6, 0.5, 0.9, 0.8, 0.3, 5, 1, "x"],
        ],
    )
    assert main(["table", str(path), "--plot", str(tmp_path / "bars.png")]) == 0
    assert (tmp_path / "bars.png").read_bytes()[:4] == b"\x89PNG"
    assert "| fedcmi | 0.1 | 1 |" in capsys.readouterr().out


def test_sweep_report_shows_paired_differences_when_seeds_pair_up(tmp_path):
    grid = tmp_path / "seeded.toml"
    grid.write_text(GRID.replace("[axes]\n", "[axes]\nseed = [0, 1]\n"))
    out = tmp_path / "out"
    assert main(["sweep", str(grid), "--out", str(out)]) == 0
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "Paired differences to fedavg" in page
    assert "<td>fedcmi</td><td>2</td>" in page  # two seed pairs


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["av-digits-hard", "mfeat-hard"])
def test_hard_presets_differ_only_in_the_method_and_match_their_grid(dataset):
    from fedcmi.config import config_from_dict, load_config

    root = Path(__file__).resolve().parents[2] / "configs"
    grid = load_grid(root / "grids" / f"paper-{dataset}.toml")
    reference = load_config(root / f"{dataset}-fedavg.toml").to_dict()
    for cell in grid.cells:
        method = cell.axes["algorithm.name"]
        preset = load_config(root / f"{dataset}-{method}.toml")
        assert {k: v for k, v in preset.to_dict().items() if k != "algorithm"} == {
            k: v for k, v in reference.items() if k != "algorithm"
        }
        preset.seed = cell.axes["seed"]
        preset.federation.multimodal_ratio = cell.axes["federation.multimodal_ratio"]
        preset.federation.alpha = cell.axes.get("federation.alpha", preset.federation.alpha)
        if dataset == "av-digits-hard" and method == "fedcmi":
            # The paper grid ran FedCMI as published (SGD momentum 0.9); the preset's
            # strong-skew stabiliser (local_momentum = 0) is the only difference.
            assert preset.algorithm.params.local_momentum == 0.0
            preset.algorithm.params.local_momentum = 0.9
        assert config_from_dict(cell.config) == preset, cell.cell_id


def test_ctrl_c_in_a_cell_stops_the_sweep_instead_of_failing_the_cell(
    grid_file, tmp_path, monkeypatch
):
    from fedcmi.errors import RunInterrupted
    from fedcmi.tools import sweep

    def interrupted(config, out_dir, threads):
        raise RunInterrupted("interrupted after round 1")

    monkeypatch.setattr(sweep, "_run_cell", interrupted)
    events = []
    with pytest.raises(RunInterrupted):
        run_sweep(load_grid(grid_file), tmp_path / "out", on_cell=lambda *a: events.append(a))
    assert events == []  # no cell reported as failed, and the next one never started
    assert not list((tmp_path / "out").glob("runs/*/error.txt"))
