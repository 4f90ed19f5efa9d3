"""DenseNet-121 image encoder (Huang et al., CVPR 2017), torchvision layout and names.

Defined here for the same reason as the ResNet-18 (torchvision does not import beside
the CPU torch build); ``load_pretrained`` reads torchvision-format weights from a local
file. Input: uint8 images (B, S, S, 3), cropped and normalised in batches by
:class:`ImageInput` (random crop when training, centre crop when evaluating).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.core.files import load_tensors
from fedcmi.errors import InputError
from fedcmi.models.resnet import IMAGENET_MEAN, IMAGENET_STD, match_memory_format


class DenseLayer(nn.Sequential):
    def __init__(self, c_in: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return torch.cat([x, self.conv2(F.relu(self.norm2(out)))], dim=1)


class DenseNet121Trunk(nn.Module):
    def __init__(
        self,
        growth: int = 32,
        blocks: tuple[int, ...] = (6, 12, 24, 16),
        init_features: int = 64,
        bn_size: int = 4,
    ) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {
            "conv0": nn.Conv2d(3, init_features, 7, 2, 3, bias=False),
            "norm0": nn.BatchNorm2d(init_features),
            "relu0": nn.ReLU(),
            "pool0": nn.MaxPool2d(3, 2, 1),
        }
        c = init_features
        for i, n in enumerate(blocks, start=1):
            block = nn.Sequential()
            for j in range(n):
                block.add_module(f"denselayer{j + 1}", DenseLayer(c + j * growth, growth, bn_size))
            layers[f"denseblock{i}"] = block
            c += n * growth
            if i != len(blocks):
                layers[f"transition{i}"] = nn.Sequential()
                layers[f"transition{i}"].add_module("norm", nn.BatchNorm2d(c))
                layers[f"transition{i}"].add_module("relu", nn.ReLU())
                layers[f"transition{i}"].add_module("conv", nn.Conv2d(c, c // 2, 1, bias=False))
                layers[f"transition{i}"].add_module("pool", nn.AvgPool2d(2, 2))
                c //= 2
        layers["norm5"] = nn.BatchNorm2d(c)
        self.features = nn.Sequential()
        for name, module in layers.items():
            self.features.add_module(name, module)
        self.out_channels = c

    def forward(self, x: Tensor) -> Tensor:
        conv0: nn.Conv2d = self.features.conv0  # type: ignore[assignment]
        return F.relu(self.features(match_memory_format(x, conv0.weight)))


def load_pretrained(trunk: DenseNet121Trunk, path: str | Path) -> None:
    """torchvision-format DenseNet-121 weights from a local file (classifier ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = load_tensors(path)
    state = {k: v for k, v in state.items() if k.startswith("features.")}
    missing, unexpected = trunk.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(f"{path}: not a DenseNet-121 state dict (missing {missing[:3]})")


class ImageInput(nn.Module):
    """uint8 (B, S, S, 3) -> normalised float (B, 3, crop, crop): a random crop per image
    when training, the centre crop when evaluating."""

    def __init__(self, crop: int) -> None:
        super().__init__()
        self.crop = crop
        self.generator: torch.Generator | None = None  # set per client by the trainer
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        b, s = images.shape[0], images.shape[1]
        span = s - self.crop
        if self.training and span > 0:
            g = self.generator
            oy = torch.randint(0, span + 1, (b,), device=images.device, generator=g)
            ox = torch.randint(0, span + 1, (b,), device=images.device, generator=g)
        else:
            oy = ox = torch.full((b,), span // 2, device=images.device)
        steps = torch.arange(self.crop, device=images.device)
        rows = (oy[:, None] + steps)[:, :, None]
        cols = (ox[:, None] + steps)[:, None, :]
        crops = images[torch.arange(b, device=images.device)[:, None, None], rows, cols]
        x = crops.permute(0, 3, 1, 2).float().div_(255)
        return (x - self.mean) / self.std


class DenseNetImage(nn.Module):
    def __init__(
        self, image_size: int, feature_dim: int, crop: int | None = None, pretrained: str = ""
    ) -> None:
        super().__init__()
        self.input = ImageInput(crop or min(image_size, 224))
        self.trunk = DenseNet121Trunk()
        if pretrained:
            load_pretrained(self.trunk, pretrained)
        c = self.trunk.out_channels
        self.proj = nn.Identity() if c == feature_dim else nn.Linear(c, feature_dim)

    def forward(self, images: Tensor) -> Tensor:
        fmap = self.trunk(self.input(images))
        return self.proj(F.adaptive_avg_pool2d(fmap, 1).flatten(1))
