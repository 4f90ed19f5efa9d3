"""Infiltration loss, dominance decision and the proximal gradient, by direct formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from fedcmi.algorithms.fedcmi import dominance_ratio, infiltration_loss
from fedcmi.core.training import add_proximal_gradient


def _softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def test_infiltration_loss_matches_direct_formula():
    teacher = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    student = torch.tensor([[0.3, -0.2, 1.0], [1.5, 0.0, 0.5]])
    temps = torch.tensor([0.5, 1.0, 0.8])
    labels = torch.tensor([0, 2])
    expected = 0.0
    for i in range(2):
        t = float(temps[labels[i]])
        q = _softmax([v / t for v in teacher[i].tolist()])
        s = _softmax([v / t for v in student[i].tolist()])
        expected += -sum(qc * math.log(sc) for qc, sc in zip(q, s))
    expected /= 2
    got = infiltration_loss(teacher, student, temps, labels)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_infiltration_loss_sends_no_gradient_to_the_teacher():
    teacher = torch.randn(4, 5, requires_grad=True)
    student = torch.randn(4, 5, requires_grad=True)
    loss = infiltration_loss(teacher, student, torch.ones(5), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_uniform_temperature_reduces_to_soft_cross_entropy():
    teacher, student = torch.randn(6, 4), torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    soft_ce = -(F.softmax(teacher, 1) * F.log_softmax(student, 1)).sum(1).mean()
    assert float(infiltration_loss(teacher, student, torch.ones(4), labels)) == pytest.approx(
        float(soft_ce), rel=1e-6
    )


def test_dominance_ratio_sums_true_class_probabilities():
    labels = torch.tensor([0, 1])
    logits_a = torch.tensor([[3.0, 0.0], [0.0, 3.0]])  # confident and right
    logits_v = torch.tensor([[0.0, 0.0], [1.0, 0.0]])  # unsure, then wrong
    p_a = 2 * math.exp(3) / (math.exp(3) + 1)
    p_v = 0.5 + 1 / (1 + math.e)
    rho = dominance_ratio(logits_a, logits_v, labels)
    assert float(rho) == pytest.approx(p_a / p_v, rel=1e-6)
    assert float(rho) > 1  # a dominant
    assert float(dominance_ratio(logits_v, logits_a, labels)) < 1  # swapped: v dominant


def test_proximal_gradient_equals_mu_times_distance():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    global_params = [p.detach().clone() + 0.5 for p in layer.parameters()]
    x = torch.randn(4, 3)
    layer(x).pow(2).sum().backward()
    plain = [p.grad.clone() for p in layer.parameters()]
    mu = 0.3
    add_proximal_gradient(list(layer.parameters()), global_params, mu)
    for p, g, base in zip(layer.parameters(), global_params, plain):
        assert torch.allclose(p.grad, base + mu * (p.detach() - g))
        assert torch.allclose(p.grad - base, torch.full_like(base, -0.5 * mu))


def test_proximal_gradient_matches_autograd_of_the_penalty():
    torch.manual_seed(1)
    layer = torch.nn.Linear(3, 2)
    global_params = [p.detach().clone() * 0.9 for p in layer.parameters()]
    mu = 0.7
    penalty = sum((p - g).pow(2).sum() for p, g in zip(layer.parameters(), global_params))
    (mu / 2 * penalty).backward()
    autograd = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad(set_to_none=False)
    add_proximal_gradient(list(layer.parameters()), global_params, mu)
    for p, expected in zip(layer.parameters(), autograd):
        assert torch.allclose(p.grad, expected, atol=1e-7)


def test_proximal_gradient_skips_parameters_without_gradient():
    p = torch.nn.Parameter(torch.ones(2))
    add_proximal_gradient([p], [torch.zeros(2)], 1.0)
    assert p.grad is None
