"""PMR against its official code.

Transcribed from github.com/fanyunfeng-bit/Modal-Imbalance-PMR (commit 3615e48),
``main_Prototype_grad.py``: lines 69-75 (``EU_dist``), 91-98 and 121-186 (``train_epoch``
with ``--modulation Proto`` and concat fusion: the negative distances to the prototypes,
the summed true-class probabilities, ``ratio_a_p = score_a_p / score_v_p``, the prototype
loss of the modality with the lower score weighted by ``alpha``), 271 (the optimiser
step), 383-441 (``calculate_prototype``: eval mode, no gradient, the first
``len(loader) // 10`` batches (at least one), per-class means, then for ``epoch > 0``
``(1 - momentum_coef) new + momentum_coef old``), 464 (SGD, momentum 0.9, weight decay
1e-4) and 537-557 (prototypes before the first epoch and after every epoch). The
official code trains centrally for many epochs; a client here runs the same schedule
over its local epochs, from the received global model each round.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedcmi.algorithms.fedavg_pmr import FedAvgPMR, blend_prototypes
from fedcmi.core.training import ClientData

from .setting import CLASSES, FEATURES, batch, context, late_fusion_model

MOMENTUM_COEF = 0.2  # --momentum_coef default (line 39)


def official_eu_dist(x1, x2):
    d_matrix = torch.zeros(x1.shape[0], x2.shape[0])
    for i in range(x1.shape[0]):
        for j in range(x2.shape[0]):
            d_matrix[i, j] = torch.sqrt(torch.dot(x1[i] - x2[j], x1[i] - x2[j]))
    return d_matrix


def official_forward(model, spec, image):
    a, v = model.enc_a(spec), model.enc_v(image)
    return a, v, model.fusion(torch.cat((a, v), dim=1))


def official_calculate_prototype(model, loader, epoch, a_proto=None, v_proto=None):
    audio_prototypes = torch.zeros(CLASSES, FEATURES)
    visual_prototypes = torch.zeros(CLASSES, FEATURES)
    count_class = [0 for _ in range(CLASSES)]
    model.eval()
    with torch.no_grad():
        sample_count = 0
        all_num = len(loader)
        for spec, image, label in loader:
            a, v, out = official_forward(model, spec, image)
            for c, lab in enumerate(label):  # the official ``l``
                count_class[lab] += 1
                audio_prototypes[lab, :] += a[c, :]
                visual_prototypes[lab, :] += v[c, :]
            sample_count += 1  # noqa: SIM113 - as the official loop counts
            if sample_count >= all_num // 10:
                break
    for c in range(audio_prototypes.shape[0]):
        audio_prototypes[c, :] /= count_class[c]
        visual_prototypes[c, :] /= count_class[c]
    if epoch > 0:
        audio_prototypes = (1 - MOMENTUM_COEF) * audio_prototypes + MOMENTUM_COEF * a_proto
        visual_prototypes = (1 - MOMENTUM_COEF) * visual_prototypes + MOMENTUM_COEF * v_proto
    return audio_prototypes, visual_prototypes


def official_train_epoch(model, loader, optimizer, audio_proto, visual_proto, alpha):
    criterion = nn.CrossEntropyLoss()
    softmax = nn.Softmax(dim=1)
    model.train()
    weak = []
    for spec, image, label in loader:
        optimizer.zero_grad()
        a, v, out = official_forward(model, spec, image)
        audio_sim = -official_eu_dist(a, audio_proto)
        visual_sim = -official_eu_dist(v, visual_proto)
        score_a_p = sum([softmax(audio_sim)[i][label[i]] for i in range(audio_sim.size(0))])
        score_v_p = sum([softmax(visual_sim)[i][label[i]] for i in range(visual_sim.size(0))])
        ratio_a_p = score_a_p / score_v_p
        loss_proto_a = criterion(audio_sim, label)
        loss_proto_v = criterion(visual_sim, label)
        if ratio_a_p > 1:
            beta, lam = 0, 1 * alpha
        elif ratio_a_p < 1:
            beta, lam = 1 * alpha, 0
        else:
            beta, lam = 0, 0
        loss = criterion(out, label) + beta * loss_proto_a + lam * loss_proto_v
        loss.backward()
        optimizer.step()
        weak.append("v" if lam else "a" if beta else "-")
    return weak


def official_main(model, loader, epochs, lr, alpha):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    epoch = 0
    audio_proto, visual_proto = official_calculate_prototype(model, loader, epoch)
    weak = []
    for epoch in range(epochs):
        weak += official_train_epoch(model, loader, optimizer, audio_proto, visual_proto, alpha)
        audio_proto, visual_proto = official_calculate_prototype(
            model, loader, epoch, audio_proto, visual_proto
        )
    return weak


# --- the comparison ----------------------------------------------------------------------


@pytest.mark.parametrize("scales", [(3.0, 1.0), (1.0, 3.0)])
def test_pmr_training_matches_the_official_code(scales):
    # Three local epochs of one full batch: the prototypes of epoch 1 come from the
    # received model, those of epoch 2 from the model after epoch 1, those of epoch 3 are
    # the blend (the official ``epoch > 0``). One batch per epoch makes the official
    # "first len // 10 batches, at least one" the whole data, so both codes average the
    # same samples.
    ours = late_fusion_model(audio_scale=scales[0], visual_scale=scales[1])
    theirs = late_fusion_model(audio_scale=scales[0], visual_scale=scales[1])
    x_a, x_v, y = batch()
    weak = official_main(theirs, [(x_a, x_v, y)], epochs=3, lr=0.5, alpha=1.0)
    algo = FedAvgPMR(FedAvgPMR.Params(alpha=1.0))
    client = ClientData(0, "av", x_a, x_v, y)
    stats = algo.train_multimodal(ours, client, context(lr=0.5, steps=3)).logs
    assert stats["steps"] == 3
    assert stats["a_dominant_frac"] == pytest.approx(weak.count("v") / 3)
    for name, value in theirs.state_dict().items():
        assert torch.allclose(ours.state_dict()[name], value, atol=1e-5), name


def test_pmr_round_schedule_differs_from_the_official_one():
    # The former schedule (prototypes once per round, from the global model) is an
    # option; over three epochs it trains to other weights, so the default matters.
    x_a, x_v, y = batch()
    models = []
    for schedule in ("epoch", "round"):
        model = late_fusion_model(audio_scale=3.0)
        algo = FedAvgPMR(FedAvgPMR.Params(alpha=1.0, prototypes=schedule))
        algo.train_multimodal(model, ClientData(0, "av", x_a, x_v, y), context(lr=0.5, steps=3))
        models.append(model.state_dict())
    assert not torch.allclose(models[0]["enc_v.0.weight"], models[1]["enc_v.0.weight"])


def test_prototype_blend_keeps_a_class_seen_by_one_side():
    # Class 0 in both: 0.8 * 1 + 0.2 * 6 = 2; class 1 only new: 4; class 2 only old: 9.
    new = {"a": (torch.tensor([[1.0], [4.0], [0.0]]), torch.tensor([True, True, False]))}
    old = {"a": (torch.tensor([[6.0], [0.0], [9.0]]), torch.tensor([True, False, True]))}
    means, present = blend_prototypes(new, old, 0.2)["a"]
    assert means.flatten().tolist() == pytest.approx([2.0, 4.0, 9.0])
    assert present.tolist() == [True, True, True]
