"""Engine speed options: precision, memory format and compilation (config ``[engine]``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial

import torch
from torch import nn

from fedcmi.config import EngineConfig


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


def prepare_model(model: nn.Module, cfg: EngineConfig) -> nn.Module:
    """Apply channels_last and compilation in place (parameter names stay the same)."""
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    if cfg.compile:
        for name in ("enc_a", "enc_v"):
            encoder = getattr(model, name, None)
            if encoder is not None:
                encoder.compile()
    return model
