"""Encoder registry: each factory maps an input shape and a feature width to a module.

An encoder takes a batch ``(B, *input_shape)`` and returns features ``(B, feature_dim)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from fedcmi.errors import InputError
from fedcmi.registry import ENCODERS

EncoderFactory = Callable[..., nn.Module]  # (input shape, feature_dim, **options)


class TimeConv(nn.Conv1d):
    """A Conv1d applied to ``(B, C, 1, T)`` inputs as a ``(1 x k)`` Conv2d.

    The parameters (and state-dict entries) are the Conv1d's; the input arrives in
    channels_last layout, where oneDNN's CPU convolutions run about 1.5-2x faster than
    its Conv1d (measured with 1 thread at av-digits shapes). The same math.
    """

    @property
    def time_padding(self) -> int:
        if isinstance(self.padding, str):
            raise ValueError(f"TimeConv takes integer padding, not {self.padding!r}")
        return self.padding[0]

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.conv2d(
            x, self.weight.unsqueeze(2), self.bias, self.stride[0], (0, self.time_padding)
        )


class TemporalConvAudio(nn.Module):
    """Three convolutions over time with mel bands as channels (kernel 5), then max+mean
    pooling over time.

    Pooling over time happens last because the word sits at a random offset in the clip;
    models that average over time first stall well below this one. The time axis is
    kept as a width-1 image in channels_last layout (see :class:`TimeConv`), so the
    BatchNorm layers are BatchNorm2d, whose state is the same as BatchNorm1d's.
    """

    def __init__(self, in_channels: int, feature_dim: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [in_channels, width, width * 2, feature_dim // 2]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [TimeConv(c_in, c_out, 5, padding=2), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        self.proj = nn.Linear(2 * (feature_dim // 2), feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.net(x.unsqueeze(2).contiguous(memory_format=torch.channels_last))
        return self.proj(nn.functional.relu(_max_mean(h.squeeze(2))))


def _max_mean(h: Tensor) -> Tensor:
    return torch.cat([h.amax(dim=-1), h.mean(dim=-1)], dim=1)


class SmallCNN(nn.Module):
    """Two conv blocks (conv-BN-ReLU-maxpool) and a linear layer to the feature width."""

    def __init__(self, in_shape: tuple[int, ...], feature_dim: int, width: int = 32) -> None:
        super().__init__()
        c, h, w = in_shape
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(2 * width * (h // 4) * (w // 4), feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        from fedcmi.models.resnet import match_memory_format

        first: nn.Conv2d = self.net[0]  # type: ignore[assignment]
        return self.fc(self.net(match_memory_format(x, first.weight)).flatten(1))


class MLPEncoder(nn.Module):
    """Flatten, then Linear-ReLU-Linear-ReLU."""

    def __init__(self, in_features: int, feature_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, feature_dim),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@ENCODERS.register("conv1d-audio")
def conv1d_audio(shape: tuple[int, ...], feature_dim: int) -> nn.Module:
    """Temporal convolutions over a (mel_bands, frames) log-mel, max+mean pooled over
    time (av-digits' audio)."""
    if len(shape) != 2:
        raise InputError(f"conv1d-audio expects (mel_bands, frames) inputs, got shape {shape}")
    return TemporalConvAudio(shape[0], feature_dim)


@ENCODERS.register("cnn-image")
def cnn_image(shape: tuple[int, ...], feature_dim: int) -> nn.Module:
    """Two conv-BN-ReLU-maxpool blocks on (channels, height, width) images (av-digits'
    digits)."""
    if len(shape) != 3:
        raise InputError(f"cnn-image expects (channels, height, width) inputs, got shape {shape}")
    return SmallCNN(shape, feature_dim)


@ENCODERS.register("mlp")
def mlp(shape: tuple[int, ...], feature_dim: int) -> nn.Module:
    """Flatten, then Linear(256)-ReLU-Linear-ReLU (any input shape; mfeat's views)."""
    return MLPEncoder(math.prod(shape), feature_dim)


@ENCODERS.register("resnet18-audio")
def resnet18_audio(shape: tuple[int, ...], feature_dim: int, pretrained: str = "") -> nn.Module:
    """ResNet-18 on a 1-channel log-spectrogram (freq, time); from scratch unless
    ``pretrained`` names a local torchvision-format state dict."""
    from fedcmi.models.resnet import SpectrogramResNet, load_pretrained

    if len(shape) != 2:
        raise InputError(f"resnet18-audio expects (freq, time) inputs, got shape {shape}")
    encoder = SpectrogramResNet(feature_dim)
    if pretrained:
        load_pretrained(encoder.trunk, pretrained)
    return encoder


@ENCODERS.register("resnet18-frames")
def resnet18_frames(shape: tuple[int, ...], feature_dim: int, pretrained: str = "") -> nn.Module:
    """2D ResNet-18 over F RGB frames, pooled over frames and space; from scratch unless
    ``pretrained`` names a local torchvision-format state dict."""
    from fedcmi.models.resnet import FrameResNet, load_pretrained

    encoder = FrameResNet(feature_dim)
    if pretrained:
        load_pretrained(encoder.trunk, pretrained)

    if len(shape) == 4 and shape[-1] == 3:  # prepared uint8 frames (F, S, S, 3)
        from fedcmi.models.resnet import FrameInput

        return nn.Sequential(FrameInput(crop=min(shape[1], 224)), encoder)
    if len(shape) != 4 or shape[1] != 3:
        raise InputError(
            f"resnet18-frames expects (frames, 3, H, W) or uint8 (frames, S, S, 3), got {shape}"
        )
    return encoder


@ENCODERS.register("densenet121-image")
def densenet121_image(
    shape: tuple[int, ...], feature_dim: int, pretrained: str = "", crop: int | None = None
) -> nn.Module:
    """DenseNet-121 on uint8 (S, S, 3) images: random crop when training, centre crop in
    evaluation (``crop`` default min(S, 224))."""
    from fedcmi.models.densenet import DenseNetImage

    if len(shape) != 3 or shape[-1] != 3:
        raise InputError(f"densenet121-image expects uint8 (S, S, 3) images, got shape {shape}")
    return DenseNetImage(shape[0], feature_dim, crop, pretrained)


@ENCODERS.register("bert-text")
def bert_text(shape: tuple[int, ...], feature_dim: int, **options) -> nn.Module:
    """BERT over token ids (L,); options: pretrained (local folder), vocab_size,
    hidden_size, layers, heads, intermediate_size."""
    from fedcmi.models.text import BertText

    if len(shape) != 1:
        raise InputError(f"bert-text expects token ids (length,), got shape {shape}")
    return BertText(feature_dim, max_length=shape[0], **options)
