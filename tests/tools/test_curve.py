"""``fedcmi curve``: the final models of a sweep scored on masked test sets; each point
equals what a run with that test-time missing rate records in its last round."""

import json

import pytest

from fedcmi.cli import main
from fedcmi.errors import InputError
from fedcmi.tools.curve import sweep_curve
from fedcmi.tools.results import read_results

GRID = """
description = "curve grid"
[set]
rounds = 2
"data.name" = "synthetic"
"federation.num_clients" = 4
"federation.clients_per_round" = 2
"federation.min_client_size" = 5
"train.local_epochs" = 1
"model.feature_dim" = 16
"eval.missing_rate_v" = 0.5
"eval.missing_seed" = 3
[axes]
"algorithm.name" = ["fedavg", "fedcmi"]
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("curve")
    (tmp / "grid.toml").write_text(GRID)
    out = tmp / "out"
    assert main(["sweep", str(tmp / "grid.toml"), "--out", str(out)]) == 0
    return out


def test_each_point_is_the_last_rounds_masked_evaluation(sweep, capsys):
    assert main(["curve", str(sweep), "--rates", "0.5,1", "--missing-seed", "3"]) == 0
    rows, axes = read_results(sweep / "missing-curve.csv")
    assert axes == ["algorithm.name", "masked"]
    assert [(r["algorithm.name"], r["masked"]) for r in rows] == [
        (m, k) for m in ("fedavg", "fedcmi") for k in ("a0.5", "a1", "v0.5", "v1")
    ]
    for row in (r for r in rows if r["masked"] == "v0.5"):
        # The run itself evaluated the same masks (eval.missing_rate_v 0.5, seed 3) on
        # the same final state in its last round.
        last = (sweep / row["run_dir"] / "metrics.jsonl").read_text().splitlines()[-1]
        recorded = json.loads(last)["test_missing"]
        assert float(row["acc"]) == recorded["acc"]
        assert float(row["acc_v"]) == recorded["acc_v"]
    # every v input hidden: FedAvg's fused head is its a-only head
    (hidden,) = [r for r in rows if r["algorithm.name"] == "fedavg" and r["masked"] == "v1"]
    assert hidden["acc"] == hidden["acc_a"]


def test_a_rate_outside_the_unit_interval_is_refused(sweep):
    with pytest.raises(InputError, match=r"--rates: 1.5 is outside \(0, 1\]"):
        sweep_curve(sweep, [0.5, 1.5])
