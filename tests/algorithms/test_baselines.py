"""OGM-GE and PMR building blocks against hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from fedcmi.algorithms import ALGORITHMS, build_algorithm
from fedcmi.algorithms.fedavg_ogm import (
    FedAvgOGM,
    fusion_halves,
    modulate_gradients,
    ogm_coefficients,
)
from fedcmi.algorithms.fedavg_pmr import (
    FedAvgPMR,
    class_prototypes,
    pmr_coefficient,
    prototype_logits,
)
from fedcmi.config import TrainConfig, load_config
from fedcmi.core.training import ClientData, RoundContext
from fedcmi.models import LateFusionModel


def test_ogm_coefficient_is_the_published_eq_10():
    # k = 1 - tanh(alpha * rho) for rho > 1: tanh(1.2) = (e^2.4 - 1) / (e^2.4 + 1)
    # = 10.0232 / 12.0232 = 0.833655, so k = 0.166345 (not 1 - tanh(0.8 * 0.5) = 0.62).
    k_a, k_v = ogm_coefficients(1.5, 0.8)
    assert (k_a, k_v) == (pytest.approx(0.166345, abs=1e-6), 1.0)
    assert ogm_coefficients(2.0, 0.1)[0] == pytest.approx(1 - math.tanh(0.2))  # 0.802625
    assert ogm_coefficients(2.0, 0.1)[0] == pytest.approx(0.802625, abs=1e-6)
    # rho = 0.5: the image encoder dominates, k_v = 1 - tanh(0.8 * 2) = 1 - 0.921669
    assert ogm_coefficients(0.5, 0.8) == (1.0, pytest.approx(0.078331, abs=1e-6))
    # rho = 1 exactly: the official code slows audio, 1 - tanh(0.8) = 1 - 0.664037
    assert ogm_coefficients(1.0, 0.8) == (pytest.approx(0.335963, abs=1e-6), 1.0)


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


def test_pmr_coefficient_is_constant_by_default_as_in_the_official_code():
    assert pmr_coefficient(1.5, 2.0) == 2.0
    assert pmr_coefficient(1.01, 0.5) == 0.5
    assert pmr_coefficient(1.5, 1.0, "ratio") == pytest.approx(math.tanh(0.5))  # 0.462117
    assert pmr_coefficient(1.5, 1.0, "ratio") == pytest.approx(0.462117, abs=1e-6)
    assert pmr_coefficient(1.0, 1.0) == 0.0  # balanced: no stimulation
    assert pmr_coefficient(0.5, 1.0) == 0.0
    assert FedAvgPMR.Params().scaling == "constant"


def test_generalisation_noise_std_has_the_official_epsilon():
    p = torch.nn.Parameter(torch.zeros(100, 100))
    p.grad = torch.zeros(100, 100)  # std 0: the noise std is 1e-8
    modulate_gradients([p], 0.5, noise=True, generator=torch.Generator().manual_seed(0))
    assert float(p.grad.std()) == pytest.approx(1e-8, rel=0.05)


def one_ogm_step(model, x_a, x_v, y, ctx, alpha):
    """What one OGM-GE step (noise off) must do, computed from the published formulas."""
    import copy

    ref = copy.deepcopy(model)
    f_a, f_v = ref.enc_a(x_a), ref.enc_v(x_v)
    d = ref.feature_dim
    out_a = f_a @ ref.fusion.weight[:, :d].T + ref.fusion.bias / 2
    out_v = f_v @ ref.fusion.weight[:, d:].T + ref.fusion.bias / 2
    s_a = F.softmax(out_a, 1).gather(1, y[:, None]).sum()
    s_v = F.softmax(out_v, 1).gather(1, y[:, None]).sum()
    rho = float((s_a / s_v).detach())
    k_a = 1 - math.tanh(alpha * rho) if rho >= 1 else 1.0
    k_v = 1 - math.tanh(alpha / rho) if rho < 1 else 1.0
    F.cross_entropy(ref.fuse(f_a, f_v), y).backward()
    lr = ctx.lr
    return rho, {
        "enc_a.weight": ref.enc_a.weight - lr * k_a * ref.enc_a.weight.grad,
        "enc_v.weight": ref.enc_v.weight - lr * k_v * ref.enc_v.weight.grad,
        "fusion.weight": ref.fusion.weight - lr * ref.fusion.weight.grad,
    }


@pytest.mark.parametrize("scale_a, scale_v", [(3.0, 0.3), (0.3, 3.0)])  # a, then v dominant
def test_ogm_local_step_matches_the_published_update(scale_a, scale_v):
    def encoder():
        enc = torch.nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            enc.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]]))
        return enc

    model = LateFusionModel(encoder(), encoder(), 2, 3)
    half = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0]])
    with torch.no_grad():
        model.fusion.weight.copy_(torch.cat([scale_a * half, scale_v * half], dim=1))
        model.fusion.bias.copy_(torch.tensor([0.2, -0.2, 0.0]))
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 1.0]])
    y = torch.tensor([0, 1, 2, 0])
    ctx = RoundContext(
        round=0,
        lr=0.5,
        train=TrainConfig(local_epochs=1, batch_size=4, momentum=0.0, weight_decay=0.0),
        generator=torch.Generator().manual_seed(0),
        num_classes=3,
    )
    rho, expected = one_ogm_step(model, x, x.clone(), y, ctx, alpha=0.8)
    assert (rho > 1) == (scale_a > scale_v)
    algo = FedAvgOGM(FedAvgOGM.Params(alpha=0.8, noise=False))
    algo.local_train(model, {}, ClientData(0, "av", x, x.clone(), y), ctx)
    for name, value in expected.items():
        assert torch.allclose(model.state_dict()[name], value, atol=1e-6), name


def test_modulation_ends_returns_to_plain_fedavg():
    algo = FedAvgOGM(FedAvgOGM.Params(modulation_ends=70))
    assert algo.balancing(0) and algo.balancing(69) and not algo.balancing(70)
    assert FedAvgOGM(FedAvgOGM.Params()).balancing(10_000)
    pmr = FedAvgPMR(FedAvgPMR.Params(modulation_ends=2))
    assert pmr.balancing(1) and not pmr.balancing(2)


@pytest.mark.parametrize("method", ["fedavg-ogm", "fedavg-pmr"])
def test_ogm_and_pmr_take_modality_aware_aggregation(method):
    cfg = load_config(None, [f"algorithm.name={method}", "algorithm.aggregation=modality-aware"])
    algo = build_algorithm(cfg.algorithm.name, cfg.algorithm.params)
    assert algo.modality_aware
    assert not build_algorithm(method, ALGORITHMS.get(method).Params()).modality_aware
