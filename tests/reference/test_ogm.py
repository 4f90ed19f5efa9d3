"""OGM-GE against its official code.

Transcribed from github.com/GeWu-Lab/OGM-GE_CVPR2022 (commit 343dc1d): ``main.py`` lines
77-153 (``train_epoch``: the concat-fusion halves ``out_a``/``out_v`` with half the bias,
the summed true-class probabilities, ``ratio_v = score_v / score_a``, the branch on
``ratio_v > 1``, the scaling of every 4-D gradient of the audio or visual network, then
the optimiser step) and ``models/fusion_modules.py`` lines 16-24 (``ConcatFusion``). The
parity run uses ``--modulation OGM`` (no noise): the GE noise is a random draw from
another generator in each code, so its parity is its distribution
(tests/algorithms/test_baselines.py checks the std). The official code modulates 4-D tensors (its
ResNets' conv kernels); the project modulates every encoder weight of at least 2
dimensions, the same tensors for the conv encoders used here (for linear layers the
project's rule is checked by hand in tests/algorithms/test_baselines.py).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from fedcmi.algorithms.fedavg_ogm import FedAvgOGM
from fedcmi.core.training import ClientData
from fedcmi.models import LateFusionModel

from .setting import CLASSES, context


def conv_encoder(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


class OfficialAVClassifier(nn.Module):
    def __init__(self, audio_net, visual_net, fc_out):
        super().__init__()
        self.audio_net, self.visual_net = audio_net, visual_net
        self.fusion_module = nn.Module()
        self.fusion_module.fc_out = fc_out

    def forward(self, audio, visual):
        a = self.audio_net(audio)
        v = self.visual_net(visual)
        out = self.fusion_module.fc_out(torch.cat((a, v), dim=1))
        return a, v, out


class DataParallelLike(nn.Module):
    """Gives parameter names the ``module.`` prefix the official loop indexes."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args):
        return self.module(*args)


def official_ogm_epoch(model, batches, optimizer, alpha):
    criterion = nn.CrossEntropyLoss()
    softmax = nn.Softmax(dim=1)
    relu = nn.ReLU(inplace=True)
    tanh = nn.Tanh()
    model.train()
    ratios = []
    for spec, image, label in batches:
        optimizer.zero_grad()
        a, v, out = model(spec, image)
        weight_size = model.module.fusion_module.fc_out.weight.size(1)
        out_v = (
            torch.mm(
                v,
                torch.transpose(
                    model.module.fusion_module.fc_out.weight[:, weight_size // 2 :], 0, 1
                ),
            )
            + model.module.fusion_module.fc_out.bias / 2
        )
        out_a = (
            torch.mm(
                a,
                torch.transpose(
                    model.module.fusion_module.fc_out.weight[:, : weight_size // 2], 0, 1
                ),
            )
            + model.module.fusion_module.fc_out.bias / 2
        )
        loss = criterion(out, label)
        loss.backward()
        score_v = sum([softmax(out_v)[i][label[i]] for i in range(out_v.size(0))])
        score_a = sum([softmax(out_a)[i][label[i]] for i in range(out_a.size(0))])
        ratio_v = score_v / score_a
        ratio_a = 1 / ratio_v
        if ratio_v > 1:
            coeff_v = 1 - tanh(alpha * relu(ratio_v))
            coeff_a = 1
        else:
            coeff_a = 1 - tanh(alpha * relu(ratio_a))
            coeff_v = 1
        for name, parms in model.named_parameters():
            layer = str(name).split(".")[1]
            if "audio" in layer and len(parms.grad.size()) == 4:
                parms.grad *= coeff_a
            if "visual" in layer and len(parms.grad.size()) == 4:
                parms.grad *= coeff_v
        optimizer.step()
        ratios.append(float(ratio_v.detach()))  # bookkeeping for the test
    return ratios


# data seeds: 0 keeps audio dominant (ratio_v < 1) for all 3 steps, 6 visual, and with 1
# the ratio crosses 1 between steps, so both branches run in one training
@pytest.mark.parametrize("seed, visual_steps", [(0, 0), (6, 3), (1, 2)])
def test_ogm_training_matches_the_official_code(seed, visual_steps):
    ours = LateFusionModel(conv_encoder(0), conv_encoder(1), 3, CLASSES)
    theirs = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(seed)
    x_a, x_v = torch.randn(8, 1, 6, 6, generator=g), torch.randn(8, 1, 6, 6, generator=g)
    y = torch.arange(8) % CLASSES
    official = DataParallelLike(OfficialAVClassifier(theirs.enc_a, theirs.enc_v, theirs.fusion))
    optimizer = torch.optim.SGD(official.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    ratios = official_ogm_epoch(official, [(x_a, x_v, y)] * 3, optimizer, alpha=0.8)
    assert sum(r > 1 for r in ratios) == visual_steps
    algo = FedAvgOGM(FedAvgOGM.Params(alpha=0.8, noise=False))
    algo.local_train(ours, {}, ClientData(0, "av", x_a, x_v, y), context(lr=0.1, steps=3))
    for name, value in theirs.state_dict().items():
        assert torch.allclose(ours.state_dict()[name], value, atol=1e-6), name
