"""Flower engine: exact parity with the embedded engine for every algorithm, the CLI,
and test certificates."""

import json

import pytest

pytest.importorskip("flwr")
pytestmark = pytest.mark.slow  # Ray simulations and Flower processes

from fedcmi.algorithms import ALGORITHMS  # noqa: E402
from fedcmi.cli import main  # noqa: E402
from fedcmi.engine.runner import run_experiment  # noqa: E402
from fedcmi.flower.simulation import run_flower_simulations  # noqa: E402
from tests.conftest import synthetic_config  # noqa: E402


def parity_config(name: str, *extra: str):
    # threads=1 in both engines: Ray workers run single-threaded, and thread counts
    # can change floating-point reduction order.
    return synthetic_config(
        f"algorithm.name={name}",
        "engine.threads=1",
        "federation.multimodal_ratio=0.5",
        "data.signal_v=3.0",
        *extra,
    )


def test_every_algorithm_gives_identical_metrics_on_flower_and_embedded(tmp_path):
    names = ALGORITHMS.names()
    cfgs = [parity_config(n) for n in names]
    flower_dirs = [tmp_path / f"flower-{n}" for n in names]
    # One more run in the same simulation: injected crashes and NaN updates.
    faulty = synthetic_config(
        "faults.drop_rate=0.2",
        "faults.nan_rate=0.2",
        "robustness.min_clients=3",
        "rounds=4",
        "federation.clients_per_round=4",
        "federation.num_clients=4",
    )
    # Server optimizers, power-of-choice selection and per-sample missing inputs.
    for name, method, extra in (
        ("fedcmi-fedadam-pow-missing", "fedcmi", ('server.optimizer="adam"', "server.lr=0.05")),
        ("fedavg-pow-missing", "fedavg", ()),
    ):
        names.append(name)
        cfgs.append(
            parity_config(
                method,
                'federation.selection="power-of-choice"',
                "federation.missing_rate_a=0.3",
                "federation.missing_rate_v=0.2",
                *extra,
            )
        )
        flower_dirs.append(tmp_path / f"flower-{name}")
    summaries = run_flower_simulations([*cfgs, faulty], [*flower_dirs, tmp_path / "faulty"])
    faulty_records = [
        json.loads(x) for x in (tmp_path / "faulty" / "metrics.jsonl").read_text().splitlines()
    ]
    reasons = [r["reason"] for rec in faulty_records for r in rec.get("rejected", [])]
    assert any("injected crash" in r for r in reasons)
    assert any("non-finite" in r for r in reasons)
    assert any(rec.get("attempts", 1) > 1 for rec in faulty_records)  # a round was retried
    assert summaries.pop().rounds == 4
    for name, cfg, flower_dir, summary in zip(names, cfgs, flower_dirs, summaries):
        embedded_dir = tmp_path / f"embedded-{name}"
        run_experiment(cfg, embedded_dir)
        assert summary.engine == "flower"
        assert (flower_dir / "metrics.jsonl").read_bytes() == (
            embedded_dir / "metrics.jsonl"
        ).read_bytes(), name
        assert (flower_dir / "manifest.json").read_text() == (
            embedded_dir / "manifest.json"
        ).read_text()


def test_certificates_chain_to_the_ca(tmp_path, capsys):
    from cryptography import x509

    assert main(["flower", "certs", str(tmp_path / "certs")]) == 0
    ca = x509.load_pem_x509_certificate((tmp_path / "certs" / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((tmp_path / "certs" / "server.pem").read_bytes())
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert "server_key" in capsys.readouterr().out
    assert (tmp_path / "certs" / "server.key").stat().st_mode & 0o077 == 0


class StopAfter(Exception):
    pass


def test_a_stopped_flower_run_resumes_to_identical_metrics(tmp_path):
    from fedcmi.flower.simulation import run_flower_simulation

    # SCAFFOLD with FedYogi: client variates, server variate and moments cross the cut.
    cfg = synthetic_config(
        "rounds=4",
        "engine.threads=1",
        "algorithm.name=scaffold",
        'server.optimizer="yogi"',
        "server.lr=0.05",
        "federation.multimodal_ratio=0.5",
    )
    run_flower_simulation(cfg, tmp_path / "whole")

    def stop(record):
        if record.round == 2:
            raise StopAfter("the ServerApp stops after round 2")

    with pytest.raises(StopAfter):  # the ServerApp's error reaches the caller
        run_flower_simulation(cfg, tmp_path / "cut", on_round=stop)
    lines = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and not (tmp_path / "cut" / "summary.json").exists()
    summary = run_flower_simulation(cfg, tmp_path / "cut", resume=True)
    assert summary.rounds == 4
    assert (tmp_path / "cut" / "metrics.jsonl").read_bytes() == (
        tmp_path / "whole" / "metrics.jsonl"
    ).read_bytes()
