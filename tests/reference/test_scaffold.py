"""SCAFFOLD against its paper's algorithm.

The authors published no code; the reference is Algorithm 1 of Karimireddy, Kale, Mohri,
Reddi, Stich, Suresh, "SCAFFOLD: Stochastic Controlled Averaging for Federated
Learning" (ICML 2020), transcribed from the paper: line 7 (y_i <- x), lines 8-10 (K
local steps y_i <- y_i - eta_l (g_i(y_i) - c_i + c)), line 12 option II
(c_i+ <- c_i - c + (x - y_i) / (K eta_l)), line 13 (Delta y_i, Delta c_i) and lines
16-17 (x <- x + eta_g mean Delta y_i, c <- c + |S| / N mean Delta c_i). The paper's local
step is plain SGD; the project's clients add heavy-ball momentum and weight decay, which
``scaffold.py`` folds into option II (the paper's formula at momentum 0, the setting
checked here; the momentum form is checked by hand in tests/algorithms/test_field_methods.py).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from fedcmi.algorithms.scaffold import Scaffold
from fedcmi.core.aggregation import ClientUpdate
from fedcmi.core.training import ClientData

from .setting import batch, context, late_fusion_model

LR, STEPS = 0.2, 3


def random_like(params: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: 0.1 * torch.randn(v.shape, generator=g) for k, v in params.items()}


def paper_client(model, x_a, x_v, y, c, c_i):
    """Algorithm 1, lines 7-13, for one client."""
    x = {k: p.detach().clone() for k, p in model.named_parameters()}
    for _ in range(STEPS):
        model.zero_grad()
        logits = model.fusion(torch.cat((model.enc_a(x_a), model.enc_v(x_v)), dim=1))
        F.cross_entropy(logits, y).backward()
        with torch.no_grad():
            for k, p in model.named_parameters():
                p -= LR * (p.grad - c_i[k] + c[k])
    y_i = {k: p.detach().clone() for k, p in model.named_parameters()}
    c_plus = {k: c_i[k] - c[k] + (x[k] - y_i[k]) / (STEPS * LR) for k in x}
    return y_i, {k: c_plus[k] - c_i[k] for k in x}


def test_scaffold_client_step_matches_the_paper():
    ours, theirs = late_fusion_model(), late_fusion_model()
    x_a, x_v, y = batch()
    names = dict(ours.named_parameters())
    c, c_i = random_like(names, 1), random_like(names, 2)
    global_state = copy.deepcopy(ours.state_dict())
    y_paper, dc_paper = paper_client(theirs, x_a, x_v, y, c, c_i)

    algo = Scaffold(Scaffold.Params())
    algo.attach(ours)
    ctx = context(lr=LR, momentum=0.0, weight_decay=0.0, steps=STEPS)
    ctx.server_state = {f"c.{k}": v for k, v in c.items()}
    ctx.client_state = {f"c.{k}": v for k, v in c_i.items()}
    result = algo.local_train(ours, global_state, ClientData(0, "av", x_a, x_v, y), ctx)
    for k, p in ours.named_parameters():
        assert torch.allclose(p.detach(), y_paper[k], atol=1e-6), k
        assert torch.allclose(result.report[f"dc.{k}"], dc_paper[k], atol=1e-5), k
        assert torch.allclose(result.kept[f"c.{k}"], c_i[k] + dc_paper[k], atol=1e-5), k


def test_scaffold_server_variate_matches_the_paper():
    # Line 17: c <- c + (|S| / N) (1 / |S|) sum_{i in S} Delta c_i, |S| = 2 of N = 4.
    model = late_fusion_model()
    algo = Scaffold(Scaffold.Params())
    algo.attach(model)
    names = dict(model.named_parameters())
    c = random_like(names, 3)
    deltas = [random_like(names, 4), random_like(names, 5)]
    updates = [
        ClientUpdate(i, "av", 8, {}, report={f"dc.{k}": d[k] for k in names})
        for i, d in enumerate(deltas)
    ]
    server = algo.server_update({f"c.{k}": v for k, v in c.items()}, updates, ["av"] * 4)
    for k in names:
        paper = c[k] + (2 / 4) * (deltas[0][k] + deltas[1][k]) / 2
        assert torch.allclose(server[f"c.{k}"], paper, atol=1e-7), k
