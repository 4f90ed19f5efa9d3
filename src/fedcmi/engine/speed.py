"""Engine speed options: precision, memory format and compilation (config ``[engine]``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from types import MethodType
from typing import TypeVar

import torch
from torch import Tensor, nn

from fedcmi.config import EngineConfig


def configure_torch(cfg: EngineConfig) -> None:
    """Process-wide settings of ``[engine]``: CPU threads and determinism.

    Without ``engine.threads`` torch's own choice (the machine's cores) is written into
    ``cfg`` (the run's ``[engine]`` section), so the resolved ``config.toml`` names the
    thread count the run used: CPU kernels sum in an order that depends on it, and
    rerunning the file elsewhere then reproduces ``metrics.jsonl``.

    ``deterministic = true`` (the default) makes PyTorch use deterministic kernels (cuDNN
    included, with cuBLAS's fixed workspace when CUDA has not started yet) and turns
    cuDNN's autotuner off; ``false`` lets cuDNN time its algorithms for each input shape
    and keep the fastest (faster convolutions on a GPU, not bit-reproducible).
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    else:
        cfg.threads = torch.get_num_threads()
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not cfg.deterministic


@dataclass(frozen=True)
class Precision:
    """The precision a run trains in, and why (``engine.precision = "auto"``)."""

    name: str  # "fp32" | "tf32" | "bf16"
    reason: str


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` runs bfloat16 in hardware, and the fact that decides it: CUDA
    compute capability >= 8.0 (Ampere and later), or a CPU with AVX512-BF16 or AMX.
    Elsewhere bf16 is emulated, measured at 0.6-0.66x fp32 on a 2-core AVX512 Xeon."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return major >= 8, f"CUDA compute capability {major}.{minor}"
    if device.type == "cpu":
        avx512_bf16 = bool(torch.cpu._is_avx512_bf16_supported())
        amx = bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())
        found = [name for name, ok in (("AVX512-BF16", avx512_bf16), ("AMX", amx)) if ok]
        has = " and ".join(found) if found else "no AVX512-BF16 or AMX"
        return bool(found), f"CPU with {has}"
    return False, f"{device.type} device"


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """``auto``: bf16 where :func:`native_bf16` holds, else fp32. Any other value is
    kept as asked."""
    if requested != "auto":
        return Precision(requested, "set in engine.precision")
    native, fact = native_bf16(device)
    if native:
        return Precision("bf16", f"auto: {fact} runs bfloat16 natively")
    return Precision("fp32", f"auto: {fact}: bfloat16 would be emulated, slower than fp32")


def autocast_factory(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A context-manager factory for local forward passes in ``precision`` (a resolved
    one: :func:`resolve_precision`).

    ``bf16`` autocasts to bfloat16 on CPU and on CUDA devices that support it (elsewhere
    it falls back to fp32 and says so); ``tf32`` switches CUDA matmuls and cuDNN
    convolutions to TF32 (no effect on CPU); ``fp32`` does nothing.
    """
    if precision == "tf32" and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if precision != "bf16":
        return nullcontext
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        print(f"engine.precision = 'bf16': {device} has no bfloat16 support; running fp32")
        return nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)


# Distinct graphs one compiled encoder needs: {training, teacher, temperatures, evaluation}
# (grad mode x autocast) x {first batch size, dynamic batch size}, with headroom. Past
# dynamo's limit (8 by default) a function silently falls back to eager.
M = TypeVar("M", bound=nn.Module)
RECOMPILE_LIMIT = 32


def prepare_model(model: M, cfg: EngineConfig, device: torch.device, precision: str) -> M:
    """Apply channels_last, the CPU bfloat16 guard (:func:`guard_narrow_strided_convs`)
    and compilation in place (parameter names stay the same); ``precision`` is the
    resolved one."""
    if device.type == "cpu" and precision == "bf16":
        guard_narrow_strided_convs(model)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if cfg.compile:
        raise_recompile_limit()
        for name in ("enc_a", "enc_v"):
            encoder = getattr(model, name, None)
            if encoder is not None:
                compile_outside_augmentation(encoder)
    return model


def guard_narrow_strided_convs(model: nn.Module) -> int:
    """Make every strided ``nn.Conv2d`` of ``model`` run in fp32 under CPU bfloat16
    autocast when its input is narrower than its stride; returns how many it guards.

    oneDNN's bfloat16 convolution (PyTorch 2.13, CPU: seen with its AMX and AVX512-BF16
    kernels) computes the weight gradient from uninitialised memory when an input side
    is shorter than the stride, for instance ResNet's stride-2 convolutions on a
    1-pixel-wide feature map (small frames): the gradient is NaN or arbitrary numbers,
    depending on what the memory held (``tests/engine/test_speed_options.py`` reproduces it).
    Such inputs are a few pixels, so fp32 there costs nothing measurable; every other
    input keeps bfloat16.
    """
    guarded = 0
    for module in model.modules():
        if type(module) is nn.Conv2d and max(module.stride) > 1:
            # A bound method, so that deep copies (client replicas) guard their own copy.
            module.forward = MethodType(_narrow_input_in_fp32, module)  # type: ignore[method-assign]
            guarded += 1
    return guarded


def _narrow_input_in_fp32(conv: nn.Conv2d, x: Tensor) -> Tensor:
    narrow = x.shape[-2] < conv.stride[0] or x.shape[-1] < conv.stride[1]
    if narrow and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return nn.Conv2d.forward(conv, x.float())
    return nn.Conv2d.forward(conv, x)


def raise_recompile_limit() -> None:
    import torch._dynamo as dynamo  # only with engine.compile: a slow import

    name = "recompile_limit" if hasattr(dynamo.config, "recompile_limit") else "cache_size_limit"
    setattr(dynamo.config, name, max(getattr(dynamo.config, name), RECOMPILE_LIMIT))


def compile_outside_augmentation(module: nn.Module) -> None:
    """``torch.compile`` the largest submodules that hold no augmentation generator.

    Augmentation modules draw from a per-client ``torch.Generator``, which dynamo cannot
    trace: compiling them breaks the graph and can make dynamo skip the enclosing frame
    altogether, so they stay eager and the convolutional trunks around them compile.
    """
    if not any(hasattr(m, "generator") for m in module.modules()):
        module.compile()
        return
    for child in module.children():
        compile_outside_augmentation(child)
