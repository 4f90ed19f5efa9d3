"""The CUDA suite: what the GPU path must keep, run by ``benchmarks/gpu.sh`` on a GPU.

Every test takes its device from the ``gpu_device`` fixture: "cuda" where there is one;
with ``--gpu-on-cpu`` (``make test`` passes it) the same code runs on the CPU, so CI
executes it; otherwise the tests skip. Tolerances are stated per test.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

pytest.importorskip("av", reason="the prepared-data fixtures write videos with PyAV")

from fedcmi.config import load_config  # noqa: E402
from fedcmi.data import load_dataset  # noqa: E402
from fedcmi.data.prepare import prepare  # noqa: E402
from fedcmi.engine.embedded import EmbeddedEngine  # noqa: E402
from fedcmi.engine.federation import build_federation  # noqa: E402
from fedcmi.engine.runner import run_experiment  # noqa: E402
from fedcmi.engine.setup import assemble  # noqa: E402
from fedcmi.engine.speed import configure_torch, resolve_precision  # noqa: E402

pytestmark = pytest.mark.gpu


def test_concurrent_clients_on_streams_match_sequential_clients(make_config, tmp_path, gpu_device):
    # Deterministic kernels, one model replica and CUDA stream per concurrent client:
    # the same per-client math in another order, so the metrics agree to 1e-6 (on the
    # CPU the files are byte-identical).
    base = [
        f"engine.device={gpu_device}",
        "engine.deterministic=true",
        "federation.num_clients=6",
        "federation.clients_per_round=4",
        "federation.multimodal_ratio=0.5",
        "rounds=3",
        "train.local_epochs=2",
    ]
    seq = run_experiment(make_config(*base), tmp_path / "seq")
    con = run_experiment(make_config(*base, "engine.concurrent_clients=4"), tmp_path / "con")
    for key, value in seq.last["test"].items():
        assert con.last["test"][key] == pytest.approx(value, abs=1e-6), key
    if gpu_device == "cpu":
        assert (tmp_path / "seq" / "metrics.jsonl").read_bytes() == (
            tmp_path / "con" / "metrics.jsonl"
        ).read_bytes()


@pytest.fixture(scope="module")
def crema_cache(tmp_path_factory, media):
    root = tmp_path_factory.mktemp("crema")
    raw = media.crema_d(root / "raw", actors=("1001", "1002", "1003"))
    prepare("crema-d", raw, root / "cache", {**media.small, "test_fraction": 0.34})
    return root / "cache"


def prepared_config(dataset, cache, device, *overrides):
    """Two clients, both every round, on a prepared cache: small enough for the CPU."""
    return load_config(
        None,
        [
            f"data.name={dataset}",
            f"data.cache='{cache}'",
            f"engine.device={device}",
            "rounds=2",
            "federation.num_clients=2",
            "federation.clients_per_round=2",
            "federation.min_client_size=1",
            "federation.alpha=100.0",
            "train.batch_size=4",
            "train.lr=0.001",
            "model.feature_dim=32",
            *overrides,
        ],
    )


def crema_config(cache, device, *overrides):
    return prepared_config("crema-d", cache, device, "data.val_fraction=0.5", *overrides)


OPTIONS = {
    "bf16": ["engine.precision=bf16"],
    "channels_last": ["engine.channels_last=true"],
    "compile": ["engine.compile=true"],
}


# The fp32 reference run of each (cache, device), trained once for every option.
_FP32_RUNS: dict[tuple[str, str], tuple[float, float]] = {}


def last_loss_and_ratio(cfg, out):
    """The last round's mean training loss and test imbalance ratio of ``cfg``'s run."""
    summary = run_experiment(cfg, out)
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "nonfinite_outputs" not in summary.last["test"]
    return last["train_loss"], summary.last["test"]["imbalance_ratio"]


@pytest.mark.parametrize("option", OPTIONS)
def test_speed_options_reach_the_fp32_results_with_resnets(
    tmp_path, gpu_device, crema_cache, option
):
    if option == "compile" and gpu_device == "cpu":
        pytest.skip("compiling ResNets on the CPU takes minutes (see test_speed_options.py)")
    key = (str(crema_cache), gpu_device)
    if key not in _FP32_RUNS:
        _FP32_RUNS[key] = last_loss_and_ratio(crema_config(*key), tmp_path / "fp32")
    fp32_loss, fp32_ratio = _FP32_RUNS[key]
    loss, ratio = last_loss_and_ratio(
        crema_config(crema_cache, gpu_device, *OPTIONS[option]), tmp_path / option
    )
    # Same init, batches and augmentation draws: bf16 rounds activations to 8 mantissa
    # bits, channels_last and compile reorder float sums. The mean training loss of the
    # last round stays within 5 % and the imbalance ratio within 10 %.
    assert loss == pytest.approx(fp32_loss, rel=0.05)
    assert ratio == pytest.approx(fp32_ratio, rel=0.1)


def test_float16_resident_data_gives_the_float32_results(gpu_device, crema_cache):
    cfg = crema_config(crema_cache, gpu_device, "rounds=1")
    configure_torch(cfg.engine)
    half = load_dataset(cfg.data.name, cfg.data.params)
    assert half.train.x_a.dtype == torch.float16
    widened = dataclasses.replace(
        half,
        train=dataclasses.replace(half.train, x_a=half.train.x_a.float()),
        val=dataclasses.replace(half.val, x_a=half.val.x_a.float()),
        test=dataclasses.replace(half.test, x_a=half.test.x_a.float()),
    )
    records = []
    for data in (half, widened):
        fed = build_federation(data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
        engine = EmbeddedEngine(assemble(cfg, data, fed, torch.device(gpu_device)))
        records.append(engine.run_round(0))
        engine.close()
    # The encoders widen float16 batches to float32 on entry: identical numbers (compared
    # as JSON, where an absent class's NaN equals itself).
    assert json.dumps(records[0].to_dict()) == json.dumps(records[1].to_dict())


# Every speed option as a tuned run sets it: precision "auto" is bf16 where the hardware
# runs it natively (CUDA >= 8.0, CPUs with AVX512-BF16 or AMX) and fp32 elsewhere. Forced
# bf16 on a CPU that emulates it is covered alone by the test above.
ALL_OPTIONS = ["engine.precision=auto", "engine.channels_last=true", "engine.concurrent_clients=2"]


@pytest.mark.parametrize("dataset", ["crema-d", "ave"])
def test_one_round_on_prepared_data_with_every_speed_option(
    media, tmp_path, gpu_device, crema_cache, dataset
):
    if dataset == "crema-d":
        cache, extra = crema_cache, ["data.val_fraction=0.5"]
    else:
        cache = tmp_path / "cache"
        prepare(
            "ave",
            media.ave(tmp_path / "raw"),
            cache,
            {"seconds": 2.0, "frame_size": 16, "frames": 4},
        )
        extra = ["data.frames=4"]
    options = [*ALL_OPTIONS, *(["engine.compile=true"] if gpu_device == "cuda" else [])]
    sets = ["rounds=1", *extra]
    plain = run_experiment(prepared_config(dataset, cache, gpu_device, *sets), tmp_path / "plain")
    fast = run_experiment(
        prepared_config(dataset, cache, gpu_device, *sets, *options), tmp_path / "fast"
    )
    assert fast.device.startswith(gpu_device) and fast.rounds == 1
    chosen = resolve_precision("auto", torch.device(gpu_device)).name
    assert json.loads((tmp_path / "fast" / "summary.json").read_text())["precision"] == chosen
    for key in ("acc", "acc_a", "acc_v", "acc_av", "acc_va"):  # ResNets on both sides
        assert math.isfinite(fast.last["test"][key]), key
    assert "nonfinite_outputs" not in fast.last["test"]
    assert fast.last["test"].keys() == plain.last["test"].keys()
