"""engine.precision = "auto": bf16 only where the hardware runs it natively."""

import pytest
import torch

from fedcmi.engine.speed import resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def cpu_with(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)


@pytest.mark.parametrize(
    "avx512_bf16, amx, expected",
    [(False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16"), (True, True, "bf16")],
)
def test_auto_on_cpus(monkeypatch, avx512_bf16, amx, expected):
    cpu_with(monkeypatch, avx512_bf16, amx)
    chosen = resolve_precision("auto", CPU)
    assert chosen.name == expected
    assert ("natively" in chosen.reason) == (expected == "bf16")
    if expected == "fp32":
        assert "no AVX512-BF16 or AMX" in chosen.reason and "emulated" in chosen.reason


@pytest.mark.parametrize(
    "capability, expected", [((7, 0), "fp32"), ((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_auto_on_cuda_by_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    chosen = resolve_precision("auto", CUDA)
    assert chosen.name == expected
    assert f"compute capability {capability[0]}.{capability[1]}" in chosen.reason


def test_an_explicit_precision_is_kept_whatever_the_hardware(monkeypatch):
    cpu_with(monkeypatch, False, False)
    for name in ("fp32", "tf32", "bf16"):
        assert resolve_precision(name, CPU).name == name


def test_the_choice_is_printed_and_written_to_the_summary(tmp_path, capsys):
    from fedcmi.cli import main
    from fedcmi.engine.run_folder import RunFolder

    out = tmp_path / "run"
    args = [
        "run",
        "--config",
        "mfeat-fedavg",
        "--set",
        "rounds=1",
        "--set",
        "engine.precision=auto",
    ]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    expected = resolve_precision("auto", CPU)
    assert f"precision on cpu: {expected.name} ({expected.reason})" in capsys.readouterr().out
    summary = RunFolder(out).summary()
    assert (summary.precision, summary.precision_reason) == (expected.name, expected.reason)
