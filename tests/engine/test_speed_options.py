"""Speed options keep the results: bf16, channels_last and compile against fp32 on CPU."""

import pytest

from fedcmi.engine.runner import run_experiment


@pytest.fixture
def run(make_config, tmp_path):
    """Three rounds of two local epochs with ``overrides``, in ``tmp_path / name``."""

    def train(name, *overrides):
        cfg = make_config("rounds=3", "train.local_epochs=2", *overrides)
        return run_experiment(cfg, tmp_path / name)

    return train


def test_bf16_autocast_reaches_fp32_accuracy(run, tmp_path):
    fp32 = run("fp32").last["test"]
    bf16 = run("bf16", "engine.precision=bf16").last["test"]
    # bf16 rounds activations to 8 mantissa bits; on 80 test samples the accuracies
    # stay within 5 points.
    for key in ("acc", "acc_a", "acc_v"):
        assert bf16[key] == pytest.approx(fp32[key], abs=0.05), key


def test_channels_last_matches_fp32_on_images(tmp_path):
    common = [
        "data.name=av-digits",
        "data.per_class=10",
        "federation.num_clients=2",
        "federation.clients_per_round=2",
        "federation.min_client_size=5",
        "rounds=2",
        "train.local_epochs=1",
        "model.feature_dim=16",
    ]
    from fedcmi.config import load_config

    plain = run_experiment(load_config(None, common), tmp_path / "plain").last
    nhwc = run_experiment(
        load_config(None, [*common, "engine.channels_last=true"]), tmp_path / "nhwc"
    ).last
    for key in ("acc", "acc_v", "imbalance_ratio"):
        assert nhwc["test"][key] == pytest.approx(plain["test"][key], rel=1e-3, abs=1e-3), key


@pytest.mark.slow
def test_compiled_encoders_match_eager(run, tmp_path):
    eager = run("eager").last["test"]
    compiled = run("compiled", "engine.compile=true").last["test"]
    for key in ("acc", "acc_a", "acc_v", "imbalance_ratio"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-4, abs=1e-4), key


def test_concurrent_clients_match_sequential_training(run, tmp_path):
    base = [
        "federation.num_clients=6",
        "federation.clients_per_round=4",
        "federation.multimodal_ratio=0.5",
        "engine.threads=1",
    ]
    sequential = run("sequential", *base)
    concurrent = run("concurrent", *base, "engine.concurrent_clients=3")
    assert (tmp_path / "sequential" / "metrics.jsonl").read_bytes() == (
        tmp_path / "concurrent" / "metrics.jsonl"
    ).read_bytes()
    assert concurrent.last == sequential.last


def test_frame_augmentation_is_seeded_per_client():
    import torch

    from fedcmi.models.resnet import FrameInput

    frames = torch.randint(0, 256, (4, 2, 20, 20, 3), dtype=torch.uint8)
    aug = FrameInput(16).train()
    aug.generator = torch.Generator().manual_seed(5)
    first = aug(frames)
    aug.generator = torch.Generator().manual_seed(5)
    assert torch.equal(first, aug(frames))
    assert first.shape == (4, 2, 3, 16, 16)


def test_compile_leaves_augmentation_modules_eager():
    from torch import nn

    from fedcmi.engine.speed import compile_outside_augmentation
    from fedcmi.models.resnet import FrameInput, FrameResNet

    encoder = nn.Sequential(FrameInput(16), FrameResNet(8, width=4))
    compile_outside_augmentation(encoder)
    # The generator-holding crop module stays eager; the ResNet next to it compiles.
    assert encoder[0]._compiled_call_impl is None
    assert encoder[1]._compiled_call_impl is not None
    assert encoder._compiled_call_impl is None


def test_closing_a_concurrent_engine_stops_its_client_threads(make_engine, make_config):
    import threading

    def client_threads() -> set:
        return {t for t in threading.enumerate() if t.name.startswith("fedcmi-client")}

    others = client_threads()  # any left by other tests' engines
    cfg = make_config("engine.concurrent_clients=2")
    engine = make_engine(cfg)
    assert len(engine.trainers) == 2
    engine.run_round(0)
    assert client_threads() - others
    engine.close()
    assert not client_threads() - others


def dirty_memory() -> None:
    """Fill freed allocator blocks with 1e30: a kernel that reads memory it never wrote
    then returns numbers far from any true gradient."""
    import torch

    junk = [torch.full((1 << 18,), 1e30) for _ in range(64)]
    del junk


def strided_conv_weight_grad(conv, x, bf16: bool):
    import torch

    conv.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(x)
    dirty_memory()
    y.float().sum().backward()
    return conv.weight.grad.clone()


@pytest.mark.parametrize("width", [1, 2, 5])
def test_cpu_bf16_guard_gives_the_fp32_gradient_of_narrow_strided_convs(width):
    import copy

    import torch

    from fedcmi.engine.speed import guard_narrow_strided_convs

    torch.manual_seed(0)
    # ResNet's stride-2 3x3 convolution on a map 1 pixel wide (oneDNN's bf16 kernels
    # read uninitialised memory there) and on wider maps (kept in bf16).
    conv = torch.nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False)
    x = torch.randn(4, 32, 3, width)
    guarded = copy.deepcopy(conv)
    assert guard_narrow_strided_convs(torch.nn.Sequential(guarded)) == 1
    replica = copy.deepcopy(guarded)  # a client replica keeps the guard on its own weights
    reference = strided_conv_weight_grad(conv, x, bf16=False)
    for model in (guarded, replica):
        for _ in range(3):  # each call on freshly dirtied memory
            dirty_memory()
            grad = strided_conv_weight_grad(model, x, bf16=True)
            # the sum of 4 x 2 x 3 products of bf16-rounded inputs: within 2 % of fp32
            scale = reference.abs().max()
            assert torch.isfinite(grad).all()
            assert (grad - reference).abs().max() <= 0.02 * scale
