"""ResNet-18 encoders for spectrograms and video frames, as in the paper's setting.

The trunk follows torchvision's ``resnet18`` layout and parameter names (``conv1``,
``bn1``, ``layer1.0.conv1``, ...), so a torchvision state dict loads into it with
``load_pretrained``. It is defined here because torchvision's wheels on the package
index are built against CUDA torch and do not import beside the CPU torch this project
installs; the architecture is the standard one (He et al., CVPR 2016).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.core.files import load_tensors
from fedcmi.errors import InputError


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet18Trunk(nn.Module):
    """conv-bn-relu-maxpool, four stages of two basic blocks; returns the feature map."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1: nn.Sequential  # the four stages, added below
        self.layer2: nn.Sequential
        self.layer3: nn.Sequential
        self.layer4: nn.Sequential
        widths = [width, 2 * width, 4 * width, 8 * width]
        c_in = width
        for i, c_out in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            self.add_module(
                f"layer{i}",
                nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1)),
            )
            c_in = c_out
        self.out_channels = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = match_memory_format(x, self.conv1.weight)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def match_memory_format(x: Tensor, weight: Tensor) -> Tensor:
    """Give a 4-D input the channels_last layout when the model's weights have it."""
    if (
        x.dim() == 4
        and not weight.is_contiguous()
        and weight.is_contiguous(memory_format=torch.channels_last)
    ):
        return x.contiguous(memory_format=torch.channels_last)
    return x


def load_pretrained(trunk: ResNet18Trunk, path: str | Path) -> None:
    """Load torchvision-format ResNet-18 weights from a local file (never downloaded).

    The classifier (``fc.*``) is ignored; a first convolution with another number of
    input channels is averaged over its input channels and repeated.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = load_tensors(path)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    conv = state.get("conv1.weight")
    if conv is not None and conv.shape[1] != trunk.conv1.in_channels:
        state["conv1.weight"] = conv.mean(1, keepdim=True).repeat(1, trunk.conv1.in_channels, 1, 1)
    missing, unexpected = trunk.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            f"{path}: not a ResNet-18 state dict "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


class SpectrogramResNet(nn.Module):
    """(B, freq, time) log-spectrogram -> 1-channel ResNet-18 -> global average pool."""

    def __init__(self, feature_dim: int, width: int = 64) -> None:
        super().__init__()
        self.trunk = ResNet18Trunk(1, width)
        self.proj = _projection(self.trunk.out_channels, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        fmap = self.trunk(x.unsqueeze(1))
        return self.proj(F.adaptive_avg_pool2d(fmap, 1).flatten(1))


class FrameResNet(nn.Module):
    """(B, F, 3, H, W) frames -> 2D ResNet-18 per frame -> mean over frames and space."""

    def __init__(self, feature_dim: int, width: int = 64) -> None:
        super().__init__()
        self.trunk = ResNet18Trunk(3, width)
        self.proj = _projection(self.trunk.out_channels, feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        b, f = x.shape[:2]
        fmap = self.trunk(x.flatten(0, 1))
        pooled = fmap.view(b, f, fmap.shape[1], -1).mean(dim=(1, 3))
        return self.proj(pooled)


def _projection(c_in: int, feature_dim: int) -> nn.Module:
    """Identity at the trunk's width (512 for ResNet-18), else a linear map to it."""
    return nn.Identity() if c_in == feature_dim else nn.Linear(c_in, feature_dim)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameInput(nn.Module):
    """uint8 frames (B, F, S, S, 3) -> normalised float (B, F, 3, crop, crop), batched.

    Training mode applies RandomResizedCrop (area 8-100 %, aspect 3/4-4/3) and a random
    horizontal flip per clip, as one affine ``grid_sample`` on the whole batch; eval mode
    resizes to ``crop`` x ``crop``. ImageNet mean/std normalisation in both.
    """

    def __init__(self, crop: int, augment: bool = True) -> None:
        super().__init__()
        self.crop = crop
        self.augment = augment
        self.generator: torch.Generator | None = None  # set per client by the trainer
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: Tensor) -> Tensor:
        b, f = frames.shape[:2]
        x = frames.flatten(0, 1).permute(0, 3, 1, 2).float().div_(255)
        if self.training and self.augment:
            x = F.grid_sample(x, self._crop_grid(b, f, x), mode="bilinear", align_corners=False)
        elif x.shape[-1] != self.crop:
            x = F.interpolate(x, size=(self.crop, self.crop), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        return x.view(b, f, 3, self.crop, self.crop)

    def _crop_grid(self, b: int, f: int, x: Tensor) -> Tensor:
        dev = x.device
        g = self.generator
        area = torch.empty(b, device=dev).uniform_(0.08, 1.0, generator=g)
        log_ratio = torch.empty(b, device=dev).uniform_(
            math.log(3 / 4), math.log(4 / 3), generator=g
        )
        w = torch.sqrt(area * torch.exp(log_ratio)).clamp(max=1.0)
        h = torch.sqrt(area / torch.exp(log_ratio)).clamp(max=1.0)
        cx = (torch.rand(b, device=dev, generator=g) * 2 - 1) * (1 - w)
        cy = (torch.rand(b, device=dev, generator=g) * 2 - 1) * (1 - h)
        flip = torch.where(torch.rand(b, device=dev, generator=g) < 0.5, -1.0, 1.0)
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        theta = theta.repeat_interleave(f, dim=0)  # the same crop for every frame of a clip
        return F.affine_grid(theta, [b * f, 3, self.crop, self.crop], align_corners=False)
