"""The one floored dominance ratio shared by FedCMI, OGM-GE, PMR and the metrics."""

import math

import pytest
import torch

from fedcmi.core.dominance import (
    PROB_FLOOR,
    dominance_ratio,
    floored_ratio,
    true_class_probability,
)


def test_true_class_probability_by_hand():
    # softmax([ln 3, 0]) = [0.75, 0.25]
    logits = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    p = true_class_probability(logits, torch.tensor([0, 1]))
    assert p.tolist() == pytest.approx([0.75, 0.25])


def test_dominance_ratio_sums_over_the_batch():
    # a: true-class probabilities 0.75 and 0.25 (sum 1.0); v: 0.5 and 0.5 (sum 1.0) -> 1.0
    logits_a = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    logits_v = torch.zeros(2, 2)
    labels = torch.tensor([0, 1])
    assert float(dominance_ratio(logits_a, logits_v, labels)) == pytest.approx(1.0)
    # only the first sample: 0.75 / 0.5 = 1.5
    assert float(dominance_ratio(logits_a[:1], logits_v[:1], labels[:1])) == pytest.approx(1.5)


def test_underflow_gives_a_large_finite_ratio():
    logits_a = torch.zeros(1, 2)  # p = 0.5
    logits_v = torch.tensor([[-1000.0, 0.0]])  # softmax underflows to exactly 0
    ratio = float(dominance_ratio(logits_a, logits_v, torch.tensor([0])))
    assert ratio == pytest.approx(0.5 / PROB_FLOOR)
    assert float(floored_ratio(torch.tensor(2.0), torch.tensor(0.0))) == pytest.approx(2e12)
