"""``evaluate``, which makes every reported accuracy, against hand-computed values."""

import math

import pytest
import torch
from torch import nn

from fedcmi.data.base import Split
from fedcmi.engine.evaluation import evaluate

LN4 = math.log(4.0)


class FixedHeads(nn.Module):
    """Returns fixed logits per sample (looked up by the sample's index in x_a)."""

    def __init__(self, heads: dict[str, torch.Tensor], imbalance_keys=None) -> None:
        super().__init__()
        self.heads = heads
        self.imbalance_keys = imbalance_keys
        self.calls = 0

    def evaluation_logits(self, x_a, x_v):
        self.calls += 1
        idx = x_a[:, 0].long()
        return {key: logits[idx] for key, logits in self.heads.items()}


def split(y):
    n = len(y)
    return Split(torch.arange(n, dtype=torch.float32)[:, None], torch.zeros(n, 1), torch.tensor(y))


def test_accuracies_per_class_and_imbalance_ratio_by_hand():
    y = [0, 1, 1, 2]
    fused = torch.tensor(
        [[2.0, 0, 0], [0, 2.0, 0], [2.0, 0, 0], [0, 0, 2.0]]
    )  # predicts 0, 1, 0, 2: 3 of 4 right; class 1 is right once of twice
    head_a = torch.zeros(4, 3)  # uniform: p(true) = 1/3, argmax = class 0
    head_v = torch.zeros(4, 3)
    head_v[torch.arange(4), torch.tensor(y)] = LN4  # p(true) = 4 / (4 + 1 + 1) = 2/3
    model = FixedHeads(
        {"acc": fused, "acc_a_head": head_a, "acc_v_head": head_v},
        imbalance_keys=("acc_a_head", "acc_v_head"),
    )
    out = evaluate(model, split(y), batch_size=3, num_classes=3)
    assert model.calls == 2  # batches of 3 and 1
    assert out["acc"] == 0.75
    assert out["per_class_acc"] == [1.0, 0.5, 1.0]
    assert out["acc_a_head"] == 0.25  # argmax 0 is right for the one class-0 sample
    assert out["acc_v_head"] == 1.0
    # mean p_a(true) / mean p_v(true) = (1/3) / (2/3)
    assert out["imbalance_ratio"] == pytest.approx(0.5)


def test_absent_class_is_nan_and_a_single_modality_model_has_no_ratio():
    y = [0, 0, 2]
    fused = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])  # right, wrong, right
    out = evaluate(FixedHeads({"acc": fused}), split(y), batch_size=8, num_classes=3)
    assert out["acc"] == pytest.approx(2 / 3)
    assert out["per_class_acc"][0] == 0.5 and out["per_class_acc"][2] == 1.0
    assert math.isnan(out["per_class_acc"][1])  # class 1 has no test sample
    assert "imbalance_ratio" not in out


def test_non_finite_outputs_are_counted_not_hidden():
    fused = torch.tensor([[1.0, 0.0], [float("nan"), 0.0], [0.0, 1.0]])
    head = torch.tensor([[0.0, 1.0], [0.0, 1.0], [float("inf"), 0.0]])
    model = FixedHeads({"acc": fused, "acc_a_head": head})
    out = evaluate(model, split([0, 0, 1]), batch_size=8, num_classes=2)
    assert out["nonfinite_outputs"] == 2  # samples 1 and 2 have a non-finite logit
    healthy = evaluate(FixedHeads({"acc": fused[[0, 2]]}), split([0, 1]), 8, 2)
    assert "nonfinite_outputs" not in healthy and healthy["acc"] == 1.0


def test_class_fairness_by_hand():
    from fedcmi.engine.evaluation import class_fairness

    # Classes 0, 2, 3 present (class 1 absent: NaN): worst 0.5; mean 0.75, deviations
    # -0.25, +0.25, 0: population std sqrt(0.125 / 3) = 0.204124.
    fair = class_fairness([0.5, float("nan"), 1.0, 0.75])
    assert fair["worst_class_acc"] == 0.5
    assert fair["class_acc_std"] == pytest.approx(0.204124, abs=1e-6)
    assert class_fairness([float("nan")]) == {}
