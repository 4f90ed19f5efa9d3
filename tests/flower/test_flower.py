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

# One Ray simulation runs every parity case (a simulation's start-up costs seconds); each
# case is then its own test, comparing that case's Flower and embedded run folders.
PARITY_CASES = {name: (name, ()) for name in ALGORITHMS.names()} | {
    # Server optimizers, power-of-choice selection and per-sample missing inputs.
    "fedcmi-fedadam-pow-missing": ("fedcmi", ('server.optimizer="adam"', "server.lr=0.05")),
    "fedavg-pow-missing": ("fedavg", ()),
}
SELECTION_AND_MISSING = (
    'federation.selection="power-of-choice"',
    "federation.missing_rate_a=0.3",
    "federation.missing_rate_v=0.2",
)


def parity_config(make_config, case: str):
    # threads=1 in both engines: Ray workers run single-threaded, and thread counts
    # can change floating-point reduction order.
    method, extra = PARITY_CASES[case]
    if case != method:
        extra = (*SELECTION_AND_MISSING, *extra)
    return make_config(
        f"algorithm.name={method}",
        "engine.threads=1",
        "federation.multimodal_ratio=0.5",
        "data.signal_v=3.0",
        *extra,
    )


@pytest.fixture(scope="module")
def flower_runs(make_config, tmp_path_factory):
    """Every parity case and a faulty run (injected crashes and NaN updates), in one
    Flower simulation: the folder of each, by case name."""
    root = tmp_path_factory.mktemp("flower")
    faulty = make_config(
        "faults.drop_rate=0.2",
        "faults.nan_rate=0.2",
        "robustness.min_clients=3",
        "rounds=4",
        "federation.clients_per_round=4",
        "federation.num_clients=4",
    )
    cases = {case: parity_config(make_config, case) for case in PARITY_CASES}
    dirs = {case: root / case for case in [*cases, "faulty"]}
    summaries = run_flower_simulations([*cases.values(), faulty], list(dirs.values()))
    assert all(summary.engine == "flower" for summary in summaries)
    assert summaries[-1].rounds == 4
    return dirs


def test_flower_retries_a_round_that_lost_clients_to_crashes_and_nan(flower_runs):
    lines = (flower_runs["faulty"] / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    reasons = [r["reason"] for rec in records for r in rec.get("rejected", [])]
    assert any("injected crash" in r for r in reasons)
    assert any("non-finite" in r for r in reasons)
    assert any(rec.get("attempts", 1) > 1 for rec in records)  # a round was retried


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_flower_and_embedded_write_identical_metrics(case, flower_runs, make_config, tmp_path):
    run_experiment(parity_config(make_config, case), tmp_path)
    flower_dir = flower_runs[case]
    metrics = (flower_dir / "metrics.jsonl").read_bytes()
    assert metrics == (tmp_path / "metrics.jsonl").read_bytes()
    manifest = (flower_dir / "manifest.json").read_text()
    assert manifest == (tmp_path / "manifest.json").read_text()


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


def test_a_stopped_flower_run_resumes_to_identical_metrics(make_config, tmp_path):
    from fedcmi.flower.simulation import run_flower_simulation

    # SCAFFOLD with FedYogi: client variates, server variate and moments cross the cut.
    cfg = make_config(
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
