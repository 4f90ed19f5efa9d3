"""Test-time missing inputs (eval.missing_rate_*): fixed seeded masks, every head on the
masked test set, and the figures in the record, the summary and results.csv."""

import json

import torch
from torch import nn

from fedcmi.config import EvalConfig
from fedcmi.data.base import Split
from fedcmi.engine.evaluation import MissingInputs
from fedcmi.engine.runner import run_experiment
from fedcmi.models import FedCMIModel, LateFusionModel

N, D, F, C = 6, 3, 4, 2


def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, D, generator=g), torch.randn(N, D, generator=g)


def test_masks_are_fixed_by_their_own_seed_and_zero_the_absent_rows():
    cfg = EvalConfig(missing_rate_a=0.5, missing_rate_v=0.25, missing_seed=7)
    one, two = MissingInputs.draw(400, cfg), MissingInputs.draw(400, cfg)
    assert torch.equal(one.present_a, two.present_a) and torch.equal(one.present_v, two.present_v)
    other = MissingInputs.draw(400, EvalConfig(missing_rate_a=0.5, missing_seed=8))
    assert not torch.equal(one.present_a, other.present_a)
    counts = one.counts()
    assert abs(counts["missing_a"] - 0.5) < 0.08 and abs(counts["missing_v"] - 0.25) < 0.08
    x_a, x_v = torch.ones(400, 2), torch.ones(400, 2)
    masked = one.apply(Split(x_a, x_v, torch.zeros(400, dtype=torch.long)))
    assert torch.equal(masked.x_a.sum(1) == 0, ~one.present_a)
    assert torch.equal(masked.x_v.sum(1) == 0, ~one.present_v)


def test_late_fusion_with_a_missing_everywhere_is_its_v_only_head():
    torch.manual_seed(0)
    model = LateFusionModel(nn.Linear(D, F), nn.Linear(D, F), F, C)
    x_a, x_v = batch()
    absent, present = torch.zeros(N, dtype=torch.bool), torch.ones(N, dtype=torch.bool)
    logits = model.evaluation_logits(x_a, x_v, absent, present)
    # the a slot is zero-filled: fusion([0 ; f_v]) is the v-only head
    assert torch.allclose(logits["acc"], logits["acc_v"])
    assert torch.allclose(logits["acc_v"], model.evaluation_logits(x_a, x_v)["acc_v"])


def test_fedcmi_fills_a_missing_slot_with_the_infiltration_projection():
    torch.manual_seed(0)
    model = FedCMIModel(nn.Linear(D, F), nn.Linear(D, F), F, C)
    x_a, x_v = batch()
    mask_a = torch.tensor([True, False, True, False, True, False])
    logits = model.evaluation_logits(x_a, x_v, mask_a, None)
    complete = model.evaluation_logits(x_a, x_v)
    vv, va = model.project_v(x_v)
    aa, _ = model.project_a(x_a)
    filled = torch.where(mask_a[:, None], aa, va)
    assert torch.allclose(logits["acc"], model.fuse(filled, vv))
    # rows holding a are untouched; rows without it fuse [va ; vv] (the acc_va head)
    assert torch.allclose(logits["acc"][mask_a], complete["acc"][mask_a])
    assert torch.allclose(logits["acc"][~mask_a], complete["acc_va"][~mask_a])


def test_a_run_reports_every_head_on_the_masked_test_set(make_config, tmp_path):
    cfg = make_config("eval.missing_rate_v=0.5", "federation.multimodal_ratio=0.5")
    summary = run_experiment(cfg, tmp_path)
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    masked, complete = records[-1]["test_missing"], records[-1]["test"]
    assert set(complete) < set(masked)  # every head, plus the realised rates
    assert masked["missing_a"] == 0.0 and 0.3 < masked["missing_v"] < 0.7
    assert masked["acc_a"] == complete["acc_a"]  # the a-only head never reads v
    assert summary.test_missing["last"]["acc"] == masked["acc"]


def test_without_test_time_rates_nothing_is_added(small_config, tmp_path):
    summary = run_experiment(small_config, tmp_path)
    assert summary.test_missing is None
    assert "test_missing" not in (tmp_path / "metrics.jsonl").read_text()
    assert "test_missing" not in (tmp_path / "summary.json").read_text()
