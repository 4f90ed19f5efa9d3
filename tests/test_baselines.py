"""OGM-GE and PMR building blocks against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from fedcmi.algorithms.fedavg_ogm import fusion_halves, modulate_gradients, ogm_coefficient
from fedcmi.algorithms.fedavg_pmr import class_prototypes, pmr_coefficient, prototype_logits
from fedcmi.models import LateFusionModel


def test_ogm_coefficient():
    assert ogm_coefficient(1.5, 0.8) == pytest.approx(1 - math.tanh(0.4))  # 0.620051
    assert ogm_coefficient(1.5, 0.8) == pytest.approx(0.6200510)
    assert ogm_coefficient(1.0, 0.8) == 1.0
    assert ogm_coefficient(0.7, 0.8) == 1.0  # the weaker modality is never slowed down


def test_fusion_halves_split_weights_and_bias():
    model = LateFusionModel(torch.nn.Identity(), torch.nn.Identity(), feature_dim=2, num_classes=2)
    with torch.no_grad():
        model.fusion.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, -1.0, 1.0, 0.5]]))
        model.fusion.bias.copy_(torch.tensor([2.0, -4.0]))
    f_a, f_v = torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.0]])
    out_a, out_v = fusion_halves(model, f_a, f_v)
    assert out_a.tolist() == [[1 + 2 + 1, 0 - 1 - 2]]
    assert out_v.tolist() == [[6 + 1, 2 - 2]]
    assert torch.allclose(out_a + out_v, model.fuse(f_a, f_v))


def test_modulation_scales_gradients_exactly_without_noise():
    p = torch.nn.Parameter(torch.zeros(3, 3))
    p.grad = torch.arange(9.0).reshape(3, 3)
    modulate_gradients([p], 0.25, noise=False, generator=None)
    assert torch.equal(p.grad, 0.25 * torch.arange(9.0).reshape(3, 3))


def test_generalisation_noise_has_the_gradient_std():
    p = torch.nn.Parameter(torch.zeros(200, 200))
    original = torch.randn(200, 200, generator=torch.Generator().manual_seed(0)) * 3.0
    p.grad = original.clone()
    modulate_gradients([p], 0.5, noise=True, generator=torch.Generator().manual_seed(1))
    noise = p.grad - 0.5 * original
    assert float(noise.std()) == pytest.approx(float(original.std()), rel=0.02)
    assert abs(float(noise.mean())) < 0.05


def test_class_prototypes_and_absent_classes():
    feats = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    protos, present = class_prototypes(feats, torch.tensor([0, 0, 2]), 3)
    assert protos[0].tolist() == [1.0, 0.0] and protos[2].tolist() == [0.0, 4.0]
    assert present.tolist() == [True, False, True]


def test_prototype_cross_entropy_by_hand():
    protos = torch.tensor([[1.0, 0.0], [9.0, 9.0], [0.0, 4.0]])
    present = torch.tensor([True, False, True])
    logits = prototype_logits(torch.tensor([[1.0, 0.0]]), protos, present)
    assert logits[0, 0] == 0.0 and logits[0, 1] == float("-inf")
    assert float(logits[0, 2]) == pytest.approx(-math.sqrt(17))
    # CE for class 0: log(1 + e^{-sqrt 17}) = log(1.016196) = 0.016064;
    # the masked class adds nothing.
    loss = F.cross_entropy(logits, torch.tensor([0]))
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-math.sqrt(17))), rel=1e-5)
    assert float(loss) == pytest.approx(0.016064, abs=1e-6)


def test_prototype_loss_gradient_is_finite_with_masked_classes():
    feats = torch.tensor([[1.0, 0.5]], requires_grad=True)
    logits = prototype_logits(
        feats, torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([True, False])
    )
    F.cross_entropy(logits, torch.tensor([0])).backward()
    assert torch.isfinite(feats.grad).all()


def test_pmr_coefficient():
    assert pmr_coefficient(1.5, 1.0) == pytest.approx(math.tanh(0.5))  # 0.462117
    assert pmr_coefficient(1.5, 2.0, "constant") == 2.0
    assert pmr_coefficient(1.0, 1.0) == 0.0
    assert pmr_coefficient(0.5, 1.0) == 0.0
