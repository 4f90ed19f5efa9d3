"""Shared fixtures: small, fast configurations on the synthetic dataset, an engine built
from one, and (plugin ``tests.fixtures.media``) generated raw media. Tests ask for
them by name; no test imports this module."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch

from fedcmi.config import Config, load_config
from fedcmi.engine.embedded import EmbeddedEngine
from fedcmi.engine.setup import set_up

pytest_plugins = ["tests.fixtures.media"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--gpu-on-cpu",
        action="store_true",
        help="run the gpu-marked tests on the CPU ('cuda' becomes 'cpu'), so their code "
        "runs where no GPU is (make test does this)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    """The CPU's bf16 support and torch's kernels: numerics of the gpu tests on the CPU
    depend on them."""
    from fedcmi.engine.speed import native_bf16

    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
        "unknown CPU",
    )
    _, fact = native_bf16(torch.device("cpu"))
    capability = torch.backends.cpu.get_cpu_capability()
    return f"cpu: {model}; {fact}; torch {torch.__version__} kernels {capability}"


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return fh.read().splitlines()
    except OSError:
        return []


@pytest.fixture
def gpu_device(request: pytest.FixtureRequest) -> str:
    """The device of a ``gpu`` test: "cuda"; "cpu" with --gpu-on-cpu; else the test skips."""
    if request.config.getoption("--gpu-on-cpu"):
        return "cpu"
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (--gpu-on-cpu runs this test on the CPU)")
    return "cuda"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Datasets built by tests go to one session-wide temporary cache, never ~/.cache."""
    cache = tmp_path_factory.getbasetemp() / "dataset-cache"
    monkeypatch.setenv("FEDCMI_CACHE", str(cache))


def synthetic_config(*overrides: str) -> Config:
    """Two rounds of 4 synthetic clients (2 per round), one local epoch: ``overrides`` are
    ``--set`` pairs on top."""
    base = [
        "data.name=synthetic",
        "rounds=2",
        "federation.num_clients=4",
        "federation.clients_per_round=2",
        "federation.min_client_size=5",
        "train.local_epochs=1",
        "train.batch_size=16",
        "model.feature_dim=16",
    ]
    return load_config(None, base + list(overrides))


@pytest.fixture(scope="session")
def make_config() -> Callable[..., Config]:
    """:func:`synthetic_config`: ``make_config("rounds=3", ...)``."""
    return synthetic_config


@pytest.fixture
def small_config() -> Config:
    return synthetic_config()


@pytest.fixture(scope="session")
def make_engine() -> Callable[[Config], EmbeddedEngine]:
    """An embedded engine on the CPU for ``cfg``'s set-up (torch's process settings left
    alone)."""

    def build(cfg: Config) -> EmbeddedEngine:
        on_cpu = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, device="cpu"))
        return EmbeddedEngine(set_up(on_cpu, torch_settings=False))

    return build
