"""The setting every reference-parity test starts from: a small late-fusion model with
BatchNorm in both encoders, one batch, and a round context, so a transcription of an
official update step and the project's method start from the same weights and data."""

from __future__ import annotations

import torch
from torch import nn

from fedcmi.config import TrainConfig
from fedcmi.core.training import Batch, ClientData, RoundContext
from fedcmi.models import LateFusionModel

FEATURES, CLASSES, INPUTS, SAMPLES = 4, 3, 5, 8


def encoder(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(INPUTS, FEATURES), nn.BatchNorm1d(FEATURES), nn.ReLU())


def late_fusion_model(
    seed: int = 0, audio_scale: float = 1.0, visual_scale: float = 1.0
) -> LateFusionModel:
    """Encoders with BatchNorm (so a pass in eval mode differs from one in train mode)
    and running statistics away from their initial values; ``audio_scale`` makes the
    audio half of the fusion head stronger (> 1) or weaker (< 1)."""
    model = LateFusionModel(encoder(seed), encoder(seed + 1), FEATURES, CLASSES)
    torch.manual_seed(seed + 2)
    with torch.no_grad():
        model.fusion.weight[:, :FEATURES] *= audio_scale
        model.fusion.weight[:, FEATURES:] *= visual_scale
        for bn in (model.enc_a[1], model.enc_v[1]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return model


def batch(seed: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x_a = torch.randn(SAMPLES, INPUTS, generator=g)
    x_v = torch.randn(SAMPLES, INPUTS, generator=g)
    y = torch.arange(SAMPLES) % CLASSES
    return x_a, x_v, y


def context(lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-4, steps: int = 1):
    """Full-batch training for ``steps`` local epochs: one step per epoch on the batch."""
    return RoundContext(
        round=0,
        lr=lr,
        train=TrainConfig(
            local_epochs=steps, batch_size=SAMPLES, momentum=momentum, weight_decay=weight_decay
        ),
        generator=torch.Generator().manual_seed(0),
        num_classes=CLASSES,
        batches=same_batch_each_epoch,
    )


def same_batch_each_epoch(client: ClientData, ctx: RoundContext):
    """The client's samples in their stored order, one batch per epoch (the official
    loops see the same order, so the runs compare step by step)."""
    for _ in range(ctx.train.local_epochs):
        yield Batch(client.x_a, client.x_v, client.y, client.mask_a, client.mask_v)
