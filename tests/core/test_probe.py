"""Linear probes: a separable feature is found, noise is not, scaling is folded in."""

import torch

from fedcmi.core.probe import encoder_probe, fit_probe, probe_accuracy


def test_probe_finds_a_separable_feature_among_noise():
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    noise = torch.randn(200, 5, generator=gen)
    # feature 0 is 100 * class (large scale: the z-scoring must handle it)
    x = torch.cat([100.0 * y[:, None].float(), noise], dim=1)
    assert probe_accuracy(x[:100], y[:100], x[100:], y[100:], 4) == 1.0


def test_probe_on_pure_noise_is_near_chance():
    gen = torch.Generator().manual_seed(1)
    y = torch.arange(1000) % 2
    x = torch.randn(1000, 3, generator=gen)
    acc = probe_accuracy(x[:500], y[:500], x[500:], y[500:], 2)
    assert 0.4 < acc < 0.6


def test_fit_probe_folds_the_standardisation_into_the_layer():
    x = torch.tensor([[0.0, 10.0], [1.0, 30.0], [2.0, 10.0], [3.0, 30.0]])
    y = torch.tensor([0, 1, 0, 1])
    probe = fit_probe(x, y, 2)
    # the label follows feature 1 (10 vs 30): the fitted probe must predict it on raw inputs
    assert probe(x.double()).argmax(1).tolist() == [0, 1, 0, 1]
    assert probe.weight.dtype == torch.float64


def test_encoder_probe_uses_the_encoder_in_eval_mode_and_restores_it():
    encoder = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    encoder.train()
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(2))
    y = (x[:, 0] > 0).long()
    before = encoder[1].running_mean.clone()
    acc = encoder_probe(encoder, (x[:20], y[:20]), (x[20:], y[20:]), 2, batch_size=7)
    assert 0.0 <= acc <= 1.0 and acc > 0.8  # a linear function of a linear encoder
    assert torch.equal(encoder[1].running_mean, before)  # eval mode: stats untouched
    assert encoder.training
