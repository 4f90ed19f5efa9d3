"""A real TLS deployment on 127.0.0.1: SuperLink, two SuperNodes, `flwr run`, two
FedCMI rounds; its metrics equal the embedded engine's."""

import json

import pytest

pytest.importorskip("flwr")

from fedcmi.config import load_config  # noqa: E402
from fedcmi.engine.runner import run_experiment  # noqa: E402
from fedcmi.flower.certs import make_certificates  # noqa: E402
from fedcmi.flower.deployment import flwr_run, tls_deployment  # noqa: E402

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
