"""A real TLS deployment on 127.0.0.1: SuperLink, two SuperNodes, `flwr run`, two
FedCMI rounds; its metrics equal the embedded engine's."""

import json
import time

import pytest

pytest.importorskip("flwr")

from fedcmi.config import load_config  # noqa: E402
from fedcmi.engine.runner import run_experiment  # noqa: E402
from fedcmi.flower.certs import make_certificates, make_node_keys  # noqa: E402
from fedcmi.flower.deployment import (  # noqa: E402
    flwr_run,
    flwr_stop,
    flwr_submit,
    tls_deployment,
)

RUN = """seed = 0
rounds = 2
[data]
name = "synthetic"
[federation]
num_clients = 2
clients_per_round = 2
min_client_size = 5
multimodal_ratio = 0.5
[train]
local_epochs = 1
[model]
feature_dim = 16
[engine]
threads = 1
"""


@pytest.mark.slow
def test_two_fedcmi_rounds_over_tls(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(RUN)
    certs = make_certificates(tmp_path / "certs")
    out = tmp_path / "flower-run"
    with tls_deployment(tmp_path, 2, certs, tmp_path / "cache") as (env, connection):
        result = flwr_run(env, connection, config, out, timeout=420)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "flower" and summary["rounds"] == 2
    run_experiment(load_config(config), tmp_path / "embedded")
    assert (out / "metrics.jsonl").read_text() == (
        tmp_path / "embedded" / "metrics.jsonl"
    ).read_text()


@pytest.mark.slow
def test_a_stopped_deployment_run_resumes_to_identical_metrics(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(RUN.replace("rounds = 2", "rounds = 6"))
    certs = make_certificates(tmp_path / "certs")
    out = tmp_path / "flower-run"
    metrics = out / "metrics.jsonl"
    with tls_deployment(tmp_path, 2, certs, tmp_path / "cache") as (env, connection):
        run_id = flwr_submit(env, connection, config, out)
        deadline = time.monotonic() + 300
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline, "the run did not reach round 2"
            time.sleep(0.5)
        stopped = flwr_stop(env, connection, run_id)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        time.sleep(3)  # the ServerApp ends
        assert not (out / "summary.json").exists()  # stopped before the end
        result = flwr_run(env, connection, None, out, timeout=420, resume=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "flower" and summary["rounds"] == 6
    run_experiment(load_config(config), tmp_path / "embedded")
    assert metrics.read_bytes() == (tmp_path / "embedded" / "metrics.jsonl").read_bytes()


@pytest.mark.slow
def test_only_registered_supernodes_join_an_authenticated_deployment(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(RUN)
    certs = make_certificates(tmp_path / "certs")
    keys = make_node_keys(tmp_path / "keys", ["node0", "node1", "intruder"])
    registered = [keys["node0"], keys["node1"]]
    out = tmp_path / "flower-run"
    with tls_deployment(
        tmp_path, 2, certs, tmp_path / "cache", registered, intruder_key=keys["intruder"][0]
    ) as (env, connection):
        result = flwr_run(env, connection, config, out, timeout=420)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The intruder claims partition 0 too: had it joined, node discovery would have
    # stopped the run ("two nodes claim partition-id 0").
    intruder_log = (tmp_path / "intruder.log").read_text()
    assert "Failed to activate SuperNode" in intruder_log  # the SuperLink refused it
    run_experiment(load_config(config), tmp_path / "embedded")
    assert (out / "metrics.jsonl").read_bytes() == (
        tmp_path / "embedded" / "metrics.jsonl"
    ).read_bytes()
