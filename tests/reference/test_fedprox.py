"""FedProx's local step against its official code.

Transcribed from github.com/litian96/FedProx (commit 6be8d40), ``flearn/optimizer/pgd.py``,
``PerturbedGradientDescent._apply_dense``: ``var <- var - lr (grad + mu (var - vstar))``
with ``vstar`` the global model loaded by ``set_params`` before local training. The
official optimiser is plain gradient descent, so the project's method runs with SGD
momentum 0 and weight decay 0 here (with momentum the same gradient, proximal term
included, enters the momentum buffer).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from fedcmi.algorithms.fedprox import FedProx
from fedcmi.core.training import ClientData

from .setting import batch, context, late_fusion_model


def official_pgd_training(model, x_a, x_v, y, lr, mu, steps):
    vstar = [p.detach().clone() for p in model.parameters()]  # set_params(global model)
    model.train()
    for _ in range(steps):
        model.zero_grad()
        F.cross_entropy(model.fuse(model.enc_a(x_a), model.enc_v(x_v)), y).backward()
        with torch.no_grad():
            for var, star in zip(model.parameters(), vstar):
                var.sub_(lr * (var.grad + mu * (var - star)))


def test_fedprox_training_matches_the_official_code():
    ours = late_fusion_model()
    theirs = copy.deepcopy(ours)
    x_a, x_v, y = batch()
    official_pgd_training(theirs, x_a, x_v, y, lr=0.5, mu=0.3, steps=4)
    algo = FedProx(FedProx.Params(prox_mu=0.3))
    global_state = {k: v.clone() for k, v in ours.state_dict().items()}
    ctx = context(lr=0.5, momentum=0.0, weight_decay=0.0, steps=4)
    algo.local_train(ours, global_state, ClientData(0, "av", x_a, x_v, y), ctx)
    moved = max(
        float((a - b).detach().abs().max())
        for a, b in zip(ours.parameters(), late_fusion_model().parameters())
    )
    assert moved > 0.05  # training moved the weights, so the proximal term acted
    for name, value in theirs.state_dict().items():
        assert torch.allclose(ours.state_dict()[name], value, atol=1e-6), name
