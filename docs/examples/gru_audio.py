# src/fedcmi/models/gru_audio.py
"""gru-audio: a GRU over the time frames of a (mel_bands, frames) log-mel."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fedcmi.errors import InputError
from fedcmi.registry import ENCODERS


class GRUAudio(nn.Module):
    def __init__(self, bands: int, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(bands, hidden, batch_first=True)
        self.out = nn.Linear(hidden, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        _, last = self.gru(x.float().transpose(1, 2))  # (batch, frames, bands)
        return torch.relu(self.out(last[-1]))


@ENCODERS.register("gru-audio")
def gru_audio(shape: tuple[int, ...], feature_dim: int, hidden: int = 64) -> nn.Module:
    """A GRU over the frames of a (mel_bands, frames) log-mel; its last state, projected."""
    if len(shape) != 2:
        raise InputError(f"gru-audio expects (mel_bands, frames) inputs, got shape {shape}")
    return GRUAudio(shape[0], feature_dim, hidden)
