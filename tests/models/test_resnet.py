"""Hand-built ResNet-18 encoders: shapes, torchvision-compatible names, local weights."""

import pytest
import torch

from fedcmi.models.encoders import ENCODERS
from fedcmi.models.resnet import ResNet18Trunk, load_pretrained


def test_trunk_has_resnet18_size_and_names():
    trunk = ResNet18Trunk(3)
    n_params = sum(p.numel() for p in trunk.parameters())
    assert n_params == 11_176_512  # torchvision resnet18 without its 513k-parameter fc
    names = set(trunk.state_dict())
    assert {
        "conv1.weight",
        "bn1.running_mean",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer4.1.bn2.bias",
    } <= names


def test_audio_and_frame_encoders_output_features():
    audio = ENCODERS.get("resnet18-audio")((64, 48), 512)
    assert audio(torch.randn(2, 64, 48)).shape == (2, 512)
    frames = ENCODERS.get("resnet18-frames")((2, 3, 32, 32), 128)
    assert frames(torch.randn(2, 2, 3, 32, 32)).shape == (2, 128)


def test_frame_pooling_is_order_invariant():
    enc = ENCODERS.get("resnet18-frames")((3, 3, 32, 32), 512).eval()
    x = torch.randn(1, 3, 3, 32, 32)
    assert torch.allclose(enc(x), enc(x[:, [2, 0, 1]]), atol=1e-5)


def test_pretrained_weights_from_a_local_path(tmp_path):
    source = ResNet18Trunk(3)
    state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 512)}
    torch.save(state, tmp_path / "resnet18.pt")
    target = ResNet18Trunk(1)  # a 1-channel trunk takes the channel-mean of conv1
    load_pretrained(target, tmp_path / "resnet18.pt")
    assert torch.allclose(target.conv1.weight, source.conv1.weight.mean(1, keepdim=True))
    assert torch.equal(target.layer3[0].conv2.weight, source.layer3[0].conv2.weight)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_pretrained(target, tmp_path / "nope.pt")
