"""Class-wise temperatures against hand-computed values."""

import math

import pytest
import torch

from fedcmi.algorithms.fedcmi import class_wise_temperatures

# Two present classes (0, 1) of four. Class means P_c are 0.75 and 0.41820 for the
# dominant modality and 0.5 for the other one, chosen so that for class 0
# rho_0 / rho_bar = 1.5 / ((1.5 + 0.83640) / 2) = e^0.25.
B = 1.5 * (2 - math.exp(0.25)) / math.exp(0.25)  # 0.836402...
STRONG = torch.tensor([0.70, 0.80, 0.5 * B - 0.01, 0.5 * B + 0.01], dtype=torch.float64)
WEAK = torch.full((4,), 0.5, dtype=torch.float64)
LABELS = torch.tensor([0, 0, 1, 1])


def test_audio_dominant_branch_matches_spec_example():
    temps = class_wise_temperatures(STRONG, WEAK, LABELS, num_classes=4, beta=2.0)
    # rho_bar = 1.16820 > 1; class 0: 1 / (1 + 2 * 0.25) = 0.66667; class 1 has
    # rho_1 < rho_bar -> 1; classes 2 and 3 are absent -> 1.
    assert temps.tolist() == pytest.approx([2 / 3, 1.0, 1.0, 1.0], abs=1e-9)
    assert round(float(temps[0]), 4) == 0.6667


def test_visual_dominant_branch_uses_rho_prime_times_rho_bar():
    temps = class_wise_temperatures(WEAK, STRONG, LABELS, num_classes=4, beta=2.0)
    # rho_c = P_a / P_v = [0.66667, 1.19560], rho_bar = 0.93113 <= 1 (v dominant).
    # rho'_0 = 1.5 > 1 / rho_bar = 1.07396 -> T_0 = 1 / (1 + 2 ln(1.5 * 0.93113)) = 0.59944.
    # rho'_1 = 0.83640 < 1.07396 -> T_1 = 1.
    assert temps.tolist() == pytest.approx([0.5994408817, 1.0, 1.0, 1.0], abs=1e-8)


def test_beta_scales_the_sharpening():
    temps = class_wise_temperatures(STRONG, WEAK, LABELS, num_classes=4, beta=1.0)
    assert float(temps[0]) == pytest.approx(1 / 1.25)


def test_balanced_modalities_give_uniform_temperature():
    p = torch.tensor([0.3, 0.6, 0.9])
    temps = class_wise_temperatures(p, p.clone(), torch.tensor([0, 1, 2]), 3)
    assert temps.tolist() == [1.0, 1.0, 1.0]


def test_temperatures_stay_in_unit_interval_and_finite_with_underflow():
    gen = torch.Generator().manual_seed(0)
    p_a = torch.rand(50, generator=gen)
    p_v = torch.rand(50, generator=gen)
    p_v[:5] = 0.0  # an underflowed softmax
    labels = torch.randint(0, 6, (50,), generator=gen)
    temps = class_wise_temperatures(p_a, p_v, labels, 7)
    assert torch.isfinite(temps).all()
    assert ((temps > 0) & (temps <= 1)).all()
    assert float(temps[6]) == 1.0  # class 6 never appears
