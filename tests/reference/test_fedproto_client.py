"""FedProto's client against its official code.

Transcribed from github.com/yuetan031/FedProto (commit cb3c41f), ``lib/update.py``
lines 137-205 (``update_weights_het``: SGD with momentum 0.5, per local epoch a fresh
``agg_protos_label``; per batch NLL of the log-probabilities plus ``ld`` times the
``MSELoss`` between the features and a target equal to the global prototype of the
sample's class where one exists and to the features themselves elsewhere, then the
step; the batch's training-time features appended per label) and ``lib/utils.py``
lines 205-219 (``agg_func``: the per-label mean of those features, so those of the last
epoch). The official model has one encoder; the project's late-fusion model has one per
modality and applies the same term to each (the transcription below does the same),
with the fused logits' cross-entropy (``log_softmax`` + NLL) as the official
``log_probs``.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fedcmi.algorithms.fedproto import FedProto
from fedcmi.core.training import ClientData

from .setting import CLASSES, FEATURES, batch, context, late_fusion_model

LD, LR, EPOCHS = 1.0, 0.3, 2


def official_update_weights_het(model, loader, global_protos, epochs):
    """``global_protos[side]``: {label: [prototype]} as the official server sends."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.5)
    criterion = nn.NLLLoss()
    for _ in range(epochs):
        agg_protos_label = {"a": {}, "v": {}}
        for images_a, images_v, label_g in loader:
            labels = label_g
            model.zero_grad()
            protos = {"a": model.enc_a(images_a), "v": model.enc_v(images_v)}
            log_probs = F.log_softmax(
                model.fusion(torch.cat((protos["a"], protos["v"]), dim=1)), dim=1
            )
            loss1 = criterion(log_probs, labels)
            loss2 = 0 * loss1
            for side in "av":
                loss_mse = nn.MSELoss()
                if len(global_protos[side]) == 0:
                    continue
                proto_new = copy.deepcopy(protos[side].data)
                for i, label in enumerate(labels):
                    if label.item() in global_protos[side].keys():  # noqa: SIM118
                        proto_new[i, :] = global_protos[side][label.item()][0].data
                loss2 = loss2 + loss_mse(proto_new, protos[side])
            loss = loss1 + loss2 * LD
            loss.backward()
            optimizer.step()
            for side in "av":
                for i in range(len(labels)):
                    agg_protos_label[side].setdefault(label_g[i].item(), []).append(
                        protos[side][i, :]
                    )
    return {side: official_agg_func(agg_protos_label[side]) for side in "av"}


def official_agg_func(protos):
    for [label, proto_list] in protos.items():
        if len(proto_list) > 1:
            proto = 0 * proto_list[0].data
            for i in proto_list:
                proto += i.data
            protos[label] = proto / len(proto_list)
        else:
            protos[label] = proto_list[0]
    return protos


def global_prototypes(seed: int, missing: int):
    """Server state and the official dict: every class but ``missing`` has one."""
    g = torch.Generator().manual_seed(seed)
    state, official = {}, {}
    for side in "av":
        protos = torch.randn(CLASSES, FEATURES, generator=g)
        counts = torch.ones(CLASSES)
        counts[missing] = 0
        state[f"proto.{side}"], state[f"count.{side}"] = protos, counts
        official[side] = {c: [protos[c]] for c in range(CLASSES) if c != missing}
    return state, official


@pytest.mark.parametrize("missing", [0, 2])
def test_fedproto_client_matches_the_official_code(missing):
    ours, theirs = late_fusion_model(), late_fusion_model()
    x_a, x_v, y = batch()
    state, official = global_prototypes(7, missing)
    reported = official_update_weights_het(theirs, [(x_a, x_v, y)], official, EPOCHS)

    algo = FedProto(FedProto.Params(proto_weight=LD))
    ctx = context(lr=LR, momentum=0.5, weight_decay=0.0, steps=EPOCHS)
    ctx.server_state = state
    client = ClientData(0, "av", x_a, x_v, y)
    result = algo.local_train(ours, copy.deepcopy(ours.state_dict()), client, ctx)
    for name, value in theirs.state_dict().items():
        assert torch.allclose(ours.state_dict()[name], value, atol=1e-6), name
    for side in "av":
        for c in range(CLASSES):
            assert torch.allclose(result.report[f"proto.{side}"][c], reported[side][c], atol=1e-6)
        assert result.report[f"count.{side}"].tolist() == [
            float((y == c).sum()) for c in range(CLASSES)
        ]
