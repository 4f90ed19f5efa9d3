"""AGM against its official code.

Transcribed from github.com/lihong2303/AGM_ICCV2023 (commit 5a65542):
``model/CREMAD_net.py`` lines 25-72 (``GradMod``: the fused pass in train mode, the padded
passes with a zeroed input in eval mode, the mono-modal outputs through identity modules
whose full backward hooks multiply the gradient by ``scale_a``/``scale_v``) and 256-265
(``ConcatFusion``); ``run/CREMAD_main.py`` lines 64-67 (``out_a``/``out_v``), 108-165 (the
scores with the 1e-8 floor, ``ratio_*``, ``optimal_ratio_*``, ``coeff_* = exp(alpha
min(optimal - ratio, 10))``, the running-score update, ``update_scale`` then backward) and
234-245 (the clip rule on the fusion weight gradient); the optimiser of
``tasks/CREMAD_task.py`` line 36 (SGD, momentum 0.9, weight decay 1e-4). The official
code trains centrally, so the running scores start at 0 and its ``iteration`` counts every
step; the project keeps both per client across its rounds (a federated adaptation, checked
in tests/algorithms/test_field_methods.py).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fedcmi.algorithms.fedavg_agm import FedAvgAGM, agm_coefficients
from fedcmi.core.training import ClientData

from .setting import batch, context, late_fusion_model

# --- the transcription -------------------------------------------------------------------


class OfficialNet(nn.Module):
    """AVClassifier with ConcatFusion: ``pad_*`` zeroes that modality's input."""

    def __init__(self, audio_net: nn.Module, visual_net: nn.Module, fc_out: nn.Linear):
        super().__init__()
        self.audio_net, self.visual_net, self.fc_out = audio_net, visual_net, fc_out

    def forward(self, audio, visual, pad_audio=False, pad_visual=False):
        if pad_audio:
            audio = torch.zeros_like(audio, device=audio.device)
        if pad_visual:
            visual = torch.zeros_like(visual, device=visual.device)
        a = self.audio_net(audio)
        v = self.visual_net(visual)
        return self.fc_out(torch.cat((a, v), dim=1))


class Identity(nn.Module):
    def forward(self, x):
        return x


class OfficialGradMod(nn.Module):
    def __init__(self, net: OfficialNet):
        super().__init__()
        self.net = net
        self.m_a_o, self.m_v_o = Identity(), Identity()
        self.scale_a = 1.0
        self.scale_v = 1.0
        self.m_a_o.register_full_backward_hook(self.hooka)
        self.m_v_o.register_full_backward_hook(self.hookv)

    def hooka(self, m, ginp, gout):
        gnew = ginp[0].clone()
        return (gnew * self.scale_a,)

    def hookv(self, m, ginp, gout):
        gnew = ginp[0].clone()
        return (gnew * self.scale_v,)

    def update_scale(self, coeff_a, coeff_v):
        self.scale_a = coeff_a
        self.scale_v = coeff_v

    def forward(self, audio, visual):
        total_out = self.net(audio, visual, pad_audio=False, pad_visual=False)
        self.net.eval()
        pad_visual_out = self.net(audio, visual, pad_audio=False, pad_visual=True)
        pad_audio_out = self.net(audio, visual, pad_audio=True, pad_visual=False)
        zero_padding_out = self.net(audio, visual, pad_audio=True, pad_visual=True)
        self.net.train()
        m_a = self.m_a_o(0.5 * (total_out - pad_audio_out + pad_visual_out))
        m_v = self.m_v_o(0.5 * (total_out - pad_visual_out + pad_audio_out))
        return total_out, pad_visual_out, pad_audio_out, zero_padding_out, m_a + m_v


def official_train(model, spec, image, label, optimizer, alpha, steps):
    """The AGM branch of ``train`` for ``steps`` iterations on one batch; returns the
    coefficients of each step and the final running scores."""
    criterion = nn.CrossEntropyLoss()
    softmax = nn.Softmax(dim=1)
    train_score_a, train_score_v = 0.0, 0.0
    coeffs, clipped = [], 0  # clipped: steps the clip rule fired (not in the official code)
    for step in range(steps):
        iteration = step + 1
        total_out, pad_visual_out, pad_audio_out, zero_padding_out, out = model(spec, image)
        out_a = 0.5 * (total_out - pad_audio_out + pad_visual_out)
        out_v = 0.5 * (total_out - pad_visual_out + pad_audio_out)
        loss = criterion(out, label)
        optimizer.zero_grad()
        score_audio = 0.0
        score_visual = 0.0
        for k in range(out_a.size(0)):
            if (
                torch.isinf(torch.log(softmax(out_a)[k][label[k]]))
                or softmax(out_a)[k][label[k]] < 1e-8
            ):
                score_audio += -torch.log(torch.tensor(1e-8, dtype=out_a.dtype))
            else:
                score_audio += -torch.log(softmax(out_a)[k][label[k]])
            if (
                torch.isinf(torch.log(softmax(out_v)[k][label[k]]))
                or softmax(out_v)[k][label[k]] < 1e-8
            ):
                score_visual += -torch.log(torch.tensor(1e-8, dtype=out_v.dtype))
            else:
                score_visual += -torch.log(softmax(out_v)[k][label[k]])
        score_audio = score_audio / out_a.size(0)
        score_visual = score_visual / out_v.size(0)
        ratio_a = math.exp(score_visual.item() - score_audio.item())
        ratio_v = math.exp(score_audio.item() - score_visual.item())
        optimal_ratio_a = math.exp(train_score_v - train_score_a)
        optimal_ratio_v = math.exp(train_score_a - train_score_v)
        coeff_a = math.exp(alpha * (min(optimal_ratio_a - ratio_a, 10)))
        coeff_v = math.exp(alpha * (min(optimal_ratio_v - ratio_v, 10)))
        train_score_a = train_score_a * (iteration - 1) / iteration + score_audio.item() / iteration
        train_score_v = (
            train_score_v * (iteration - 1) / iteration + score_visual.item() / iteration
        )
        model.update_scale(coeff_a, coeff_v)
        loss.backward()
        grad_max = torch.max(model.net.fc_out.weight.grad)
        grad_min = torch.min(model.net.fc_out.weight.grad)
        if grad_max > 1 or grad_min < -1:
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            clipped += 1
        optimizer.step()
        coeffs.append((coeff_a, coeff_v))
    return coeffs, (train_score_a, train_score_v), clipped


# --- the comparison ----------------------------------------------------------------------


def run_both(scales: tuple[float, float], alpha: float, steps: int, lr: float = 0.1):
    ours = late_fusion_model(audio_scale=scales[0], visual_scale=scales[1])
    theirs = late_fusion_model(audio_scale=scales[0], visual_scale=scales[1])
    x_a, x_v, y = batch()
    official = OfficialGradMod(OfficialNet(theirs.enc_a, theirs.enc_v, theirs.fusion))
    optimizer = torch.optim.SGD(official.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    coeffs, running, clipped = official_train(official, x_a, x_v, y, optimizer, alpha, steps)
    ctx = context(lr=lr, steps=steps)
    algo = FedAvgAGM(FedAvgAGM.Params(alpha=alpha))
    result = algo.local_train(ours, {}, ClientData(0, "av", x_a, x_v, y), ctx)
    return ours, theirs, coeffs, running, clipped, result


@pytest.mark.parametrize("scales", [(3.0, 1.0), (1.0, 3.0)])  # audio, then visual stronger
def test_agm_training_matches_the_official_code(scales):
    ours, theirs, coeffs, running, clipped, result = run_both(scales, alpha=1.0, steps=4)
    assert any(abs(a - 1) > 0.01 or abs(v - 1) > 0.01 for a, v in coeffs)  # it modulated
    kept = result.kept["agm.running"].tolist()
    assert kept == pytest.approx([*running, 4.0], abs=1e-6)
    for name, value in theirs.state_dict().items():
        assert torch.allclose(ours.state_dict()[name], value, atol=1e-6), name


def test_agm_clip_rule_matches_the_official_code():
    # lr 5 drives the fusion gradient past the threshold of 1 in a later step
    ours, theirs, _, _, clipped, _ = run_both((3.0, 1.0), alpha=1.0, steps=3, lr=5.0)
    assert clipped >= 1
    for name, value in theirs.state_dict().items():
        assert torch.allclose(ours.state_dict()[name], value, atol=1e-6), name


def test_agm_coefficients_are_the_official_ratios():
    # The example: s = {a: 0.5, v: 1.5}, S = {a: 1.0, v: 1.2}, alpha 0.1.
    # Official: ratio_a = e^(1.5 - 0.5) = e, optimal_ratio_a = e^(1.2 - 1.0) = e^0.2,
    # coeff_a = exp(0.1 (e^0.2 - e)) = exp(0.1 (1.221403 - 2.718282)) = exp(-0.149688)
    # = 0.860977;
    # coeff_v = exp(0.1 (e^-0.2 - e^-1)) = exp(0.1 (0.818731 - 0.367879)) = exp(0.045085)
    # = 1.046117.
    coeffs = agm_coefficients({"a": 0.5, "v": 1.5}, {"a": 1.0, "v": 1.2}, alpha=0.1)
    assert coeffs["a"] == pytest.approx(0.860977, abs=1e-6)
    assert coeffs["v"] == pytest.approx(1.046117, abs=1e-6)
