"""Engine speed options: precision, memory format and compilation (config ``[engine]``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import TypeVar

import torch
from torch import nn

from fedcmi.config import Config, EngineConfig


def configure_torch(cfg: Config) -> None:
    """Process-wide settings of ``[engine]``: CPU threads and determinism.

    ``deterministic = true`` (the default) makes PyTorch use deterministic kernels (cuDNN
    included, with cuBLAS's fixed workspace when CUDA has not started yet) and turns
    cuDNN's autotuner off; ``false`` lets cuDNN time its algorithms for each input shape
    and keep the fastest (faster convolutions on a GPU, not bit-reproducible).
    """
    if cfg.engine.threads:
        torch.set_num_threads(cfg.engine.threads)
    if cfg.engine.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(cfg.engine.deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not cfg.engine.deterministic


def autocast_factory(
    cfg: EngineConfig, device: torch.device
) -> Callable[[], AbstractContextManager]:
    """A context-manager factory for local forward passes.

    ``bf16`` autocasts to bfloat16 on CPU and on CUDA devices that support it (elsewhere
    it falls back to fp32 and says so); ``tf32`` switches CUDA matmuls and cuDNN
    convolutions to TF32 (no effect on CPU); ``fp32`` does nothing.
    """
    if cfg.precision == "tf32" and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.precision != "bf16":
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


def prepare_model(model: M, cfg: EngineConfig) -> M:
    """Apply channels_last and compilation in place (parameter names stay the same)."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if cfg.compile:
        raise_recompile_limit()
        for name in ("enc_a", "enc_v"):
            encoder = getattr(model, name, None)
            if encoder is not None:
                compile_outside_augmentation(encoder)
    return model


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
