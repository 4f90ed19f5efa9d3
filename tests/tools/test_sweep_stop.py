"""Stopping a parallel sweep (SIGTERM, as a scheduler or `kill` sends it): the workers
stop with it, finished cells stay, and the same command resumes."""

import os
import signal
import subprocess
import sys
import time

import pytest

GRID = """
description = "Four synthetic cells, long enough to be stopped mid-run."
[set]
rounds = {rounds}
"data.name" = "synthetic"
"federation.num_clients" = 4
"federation.clients_per_round" = 2
"federation.min_client_size" = 5
"train.local_epochs" = 1
[axes]
seed = [0, 1, 2, 3]
"""


def sweep(grid, out):
    return [
        sys.executable,
        "-m",
        "fedcmi.cli",
        "sweep",
        str(grid),
        "--jobs",
        "2",
        "--out",
        str(out),
    ]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_sigterm_stops_the_workers_keeps_finished_cells_and_the_sweep_resumes(tmp_path):
    grid, out = tmp_path / "grid.toml", tmp_path / "sweep"
    grid.write_text(GRID.format(rounds=40))
    proc = subprocess.Popen(
        sweep(grid, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group: its workers are found by it
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not (out / "results.csv").is_file():  # written when the first cell finishes
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no cell finished in 4 minutes"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "the same command resumes" in stderr
    for _ in range(50):  # terminated workers may take a moment to be reaped
        if not group_alive(proc.pid):
            break
        time.sleep(0.1)
    assert not group_alive(proc.pid), "worker processes outlived the sweep"
    finished = {p.parent.name: p.read_bytes() for p in out.glob("runs/*/summary.json")}
    assert 1 <= len(finished) < 4

    again = subprocess.run(sweep(grid, out), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    for cell, summary in finished.items():
        assert f"{cell} skipped (finished earlier)" in again.stdout
        assert (out / "runs" / cell / "summary.json").read_bytes() == summary
    rows = (out / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4
