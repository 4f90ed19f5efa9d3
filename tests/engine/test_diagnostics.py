"""Loss-term diagnostics of local training: per-term means, the proximal term and the
gradient norm against hand-computed values; a constructed divergence names its term;
FedCMI's distillation options (its parity with the authors' code is in
tests/reference/test_fedcmi_client.py)."""

import math

import pytest
import torch
from torch import nn

from fedcmi.algorithms.fedcmi import infiltration_loss
from fedcmi.config import TrainConfig
from fedcmi.core.training import (
    ClientData,
    NonFiniteTraining,
    RoundContext,
    clip_gradient,
    train_local,
)
from fedcmi.engine.rounds import RoundFailedError
from fedcmi.engine.run_folder import RoundRecord


def linear_client(
    batch_size: int, epochs: int, copies: int = 1, **train: float
) -> tuple[nn.Module, ClientData, RoundContext]:
    """w = (1, 2) on the rows of I (``copies`` times): hand-computable losses and gradients."""
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    x = torch.eye(2).repeat(copies, 1)
    client = ClientData(0, "a", x, None, torch.tensor([0, 1] * copies))
    cfg = TrainConfig(local_epochs=epochs, batch_size=batch_size, momentum=0.0, weight_decay=0.0)
    for key, value in train.items():
        setattr(cfg, key, value)
    ctx = RoundContext(0, 0.1, cfg, torch.Generator().manual_seed(0), 2)
    return model, client, ctx


def two_terms(model: nn.Module):
    def loss_fn(batch):
        out = model(batch.x_a).squeeze(1)
        return {"sq": out.square().mean(), "lin": 3 * model.weight.sum()}

    return loss_fn


def test_terms_prox_and_gradient_norm_equal_hand_computed_values():
    # Step 1, w = (1, 2): sq = (1 + 4) / 2 = 2.5, lin = 9, grad = (1, 2) + (3, 3) = (4, 5),
    # prox = 0. Step 2, w = (0.6, 1.5): sq = (0.36 + 2.25) / 2 = 1.305, lin = 6.3,
    # prox = 0.5 * 1 * (0.4^2 + 0.5^2) = 0.205, grad = (0.6, 1.5) + (3, 3) + (-0.4, -0.5).
    model, client, ctx = linear_client(batch_size=2, epochs=2)
    anchor = [p.detach().clone() for p in model.parameters()]
    stats = train_local(model, client, ctx, two_terms(model), anchor, prox_mu=1.0).logs
    assert stats["steps"] == 2
    assert stats["loss_sq"] == pytest.approx((2.5 + 1.305) / 2, abs=1e-6)
    assert stats["loss_lin"] == pytest.approx((9 + 6.3) / 2, abs=1e-6)
    assert stats["loss_prox"] == pytest.approx(0.205 / 2, abs=1e-6)
    assert stats["loss"] == pytest.approx((2.5 + 9 + 1.305 + 6.3) / 2, abs=1e-5)
    norms = [math.sqrt(4**2 + 5**2), math.sqrt(3.2**2 + 4.0**2)]
    assert stats["grad_norm"] == pytest.approx(sum(norms) / 2, abs=1e-5)
    assert stats["grad_norm_max"] == pytest.approx(norms[0], abs=1e-5)


def test_a_plain_loss_is_the_term_ce_and_no_prox_reports_zero():
    model, client, ctx = linear_client(batch_size=2, epochs=1)
    stats = train_local(model, client, ctx, lambda b: model(b.x_a).square().mean()).logs
    assert stats["loss_ce"] == pytest.approx(2.5)
    assert stats["loss_prox"] == 0.0


def test_clipping_rescales_the_step_and_reports_the_norm_before():
    param = nn.Parameter(torch.zeros(2))
    param.grad = torch.tensor([3.0, 4.0])
    assert float(clip_gradient([param], 1.0)) == pytest.approx(5.0)
    assert param.grad.tolist() == pytest.approx([0.6, 0.8])
    param.grad = torch.tensor([0.3, 0.4])
    assert float(clip_gradient([param], 1.0)) == pytest.approx(0.5)
    assert param.grad.tolist() == pytest.approx([0.3, 0.4])  # under the bound: unchanged


def test_clipped_training_takes_the_bounded_step():
    # Step 1's gradient (4, 5) has norm sqrt(41); clipped to 1: w -= 0.1 * (4, 5) / sqrt(41).
    model, client, ctx = linear_client(batch_size=2, epochs=1, clip_grad_norm=1.0)
    stats = train_local(model, client, ctx, two_terms(model)).logs
    step = 0.1 / math.sqrt(41)
    assert model.weight.flatten().tolist() == pytest.approx([1 - 4 * step, 2 - 5 * step])
    assert stats["grad_norm"] == pytest.approx(math.sqrt(41), abs=1e-5)


def test_constructed_divergence_names_the_first_term_and_step():
    # Two batches per epoch: "late" turns inf at the third step, "early" (the second
    # term) at the second; the message names "early" and step 2.
    model, client, ctx = linear_client(batch_size=2, epochs=2, copies=2)
    calls = []

    def loss_fn(batch):
        calls.append(1)
        out = model(batch.x_a).square().mean()
        late = out * (math.inf if len(calls) >= 3 else 1.0)
        early = out * (math.inf if len(calls) >= 2 else 1.0)
        return {"late": late, "early": early}

    with pytest.raises(NonFiniteTraining) as err:
        train_local(model, client, ctx, loss_fn)
    assert str(err.value) == (
        "loss term 'early' went non-finite first, at step 2 of 4 (epoch 1, batch 2); "
        "also non-finite: grad_norm (step 2), late (step 3)"
    )


def test_a_diverging_fedcmi_round_fails_naming_the_term(make_config, make_engine):
    cfg = make_config("train.lr=1e8", "robustness.max_round_retries=0")
    engine = make_engine(cfg)
    with pytest.raises(RoundFailedError, match=r"went non-finite first, at step \d+ of \d+"):
        for t in range(cfg.rounds):
            engine.run_round(t)


def test_fedcmi_reports_each_term_per_client(make_config, make_engine):
    engine = make_engine(make_config("federation.multimodal_ratio=0.5"))
    engine.run_round(0)
    logs = engine.run_round(1).client_logs
    for log in logs:
        expected = ["fused", "prox"]
        if log["modalities"] == "av":
            expected = ["fused", "head_a", "head_v", "cmi", "prox"]
        assert [k.removeprefix("loss_") for k in log if k.startswith("loss_")] == expected
        assert log["grad_norm_max"] >= log["grad_norm"] > 0


def test_round_record_averages_terms_over_the_clients_reporting_them():
    record = RoundRecord(
        round=1, lr=0.1, clients=[0, 1], train_loss=1.0, val={}, test={},
        client_logs=[
            {"loss_fused": 1.0, "loss_cmi": 4.0, "grad_norm_max": 3.0},
            {"loss_fused": 2.0, "grad_norm_max": 7.5},
        ],
    )  # fmt: skip
    assert record.loss_terms() == {"fused": 1.5, "cmi": 4.0}
    assert record.max_grad_norm() == 7.5


def test_temperature_scaled_distillation_keeps_the_target_and_drops_the_step_factor():
    # Two classes, T = 1/2, teacher logits (1, 0), student logits (0, 0):
    # q = softmax((2, 0)) = (e^2, 1) / (e^2 + 1); softmax(student / T) = (1/2, 1/2), so
    # L = -sum_c q_c ln(1/2) = ln 2, and dL/ds = (softmax(s / T) - q) / T with
    # 1/2 - q_0 = -(e^2 - 1) / (2 (e^2 + 1)) = -tanh(1) / 2: dL/ds_0 = -tanh(1).
    # Scaled by T: L = ln(2) / 2 and dL/ds_0 = -tanh(1) / 2, the same target.
    teacher = torch.tensor([[1.0, 0.0]])
    temps, labels = torch.tensor([0.5, 1.0]), torch.tensor([0])
    for scaled, factor in ((False, 1.0), (True, 0.5)):
        student = torch.zeros(1, 2, requires_grad=True)
        loss = infiltration_loss(teacher, student, temps, labels, temperature_scaled=scaled)
        loss.backward()
        assert loss.item() == pytest.approx(factor * math.log(2), rel=1e-6)
        expected = factor * math.tanh(1.0)
        assert student.grad.tolist()[0] == pytest.approx([-expected, expected], rel=1e-5)


def test_temperature_scaling_weighs_each_sample_by_its_class_temperature():
    # The option is wired through: at T_y = 1 the two scales agree, below 1 they differ
    # by exactly the factor T_y of each sample.
    teacher = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0]])
    student = torch.tensor([[0.3, 0.2, -0.4], [1.0, -2.0, 0.1]])
    labels = torch.tensor([0, 2])
    temps = torch.tensor([0.25, 1.0, 0.5])
    per_sample = [
        float(infiltration_loss(teacher[i : i + 1], student[i : i + 1], temps, labels[i : i + 1]))
        for i in range(2)
    ]
    scaled = float(infiltration_loss(teacher, student, temps, labels, temperature_scaled=True))
    assert scaled == pytest.approx((0.25 * per_sample[0] + 0.5 * per_sample[1]) / 2, rel=1e-6)


def test_distill_scale_temperature_reaches_every_distillation_of_a_round(
    make_config, make_engine, monkeypatch
):
    import fedcmi.algorithms.fedcmi as fedcmi_module

    flags: list[bool] = []
    real = fedcmi_module.infiltration_loss

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        flags.append(args[5] if len(args) > 5 else kwargs.get("temperature_scaled", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(fedcmi_module, "infiltration_loss", spy)
    for scale, expected in (("none", False), ("temperature", True)):
        flags.clear()
        engine = make_engine(make_config(f'algorithm.distill_scale="{scale}"'))
        engine.run_round(0)  # warm-up round: no distillation
        assert flags == []
        engine.run_round(1)
        assert flags and set(flags) == {expected}


def test_local_momentum_trains_as_train_momentum_would_and_absent_leaves_it(
    make_config, make_engine
):
    # algorithm.local_momentum = m trains exactly as train.momentum = m, and absent it
    # leaves train.momentum in force (the stabiliser and the published form).
    def final_state(*overrides: str) -> dict[str, torch.Tensor]:
        engine = make_engine(make_config("federation.multimodal_ratio=0.5", *overrides))
        for t in range(2):
            engine.run_round(t)
        return engine.global_state

    def same(one: dict[str, torch.Tensor], two: dict[str, torch.Tensor]) -> bool:
        return all(torch.equal(one[k], two[k]) for k in one)

    by_train = final_state("train.momentum=0.0")
    by_algorithm = final_state("train.momentum=0.9", "algorithm.local_momentum=0.0")
    published = final_state("train.momentum=0.9")
    assert same(by_train, by_algorithm)
    assert same(published, final_state("train.momentum=0.9", "algorithm.local_momentum=0.9"))
    assert not same(published, by_algorithm)
