"""Linear probes: how much a frozen encoder's features say about the label.

A probe is a multinomial logistic regression on an encoder's features: fit on the
training split, scored on a held-out split. It measures an encoder's quality the same
way for every method, whatever fusion head (or projector) sits on top of it, so the
weak modality of FedAvg, OGM-GE, PMR and FedCMI can be compared on equal terms.

Fit: features are z-scored with the training features' mean and std, then
``W, b = argmin CE(W x + b, y) + weight_decay * ||W||^2`` by full-batch L-BFGS
(strong Wolfe line search, ``max_iter`` iterations, float64, on the CPU: deterministic,
and cheap for the feature widths used here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PROBE_WEIGHT_DECAY = 1e-3
PROBE_MAX_ITER = 200


@torch.no_grad()
def encode(encoder: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """Features of ``x`` (any device: batches move to the encoder's device), float64 CPU."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    parts = [
        encoder(x[start : start + batch_size].to(device)).double().cpu()
        for start in range(0, len(x), batch_size)
    ]
    encoder.train(was_training)
    return torch.cat(parts)


def fit_probe(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    weight_decay: float = PROBE_WEIGHT_DECAY,
    max_iter: int = PROBE_MAX_ITER,
) -> nn.Linear:
    """A linear classifier on z-scored ``features`` (the scaling is folded into it)."""
    x = features.double().cpu()
    y = labels.long().cpu()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-8)
    z = (x - mean) / std
    weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ weight.T + bias, y) + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    probe = nn.Linear(x.shape[1], num_classes, dtype=torch.float64)
    with torch.no_grad():  # W ((x - mean) / std) + b  ==  (W / std) x + (b - W mean / std)
        probe.weight.copy_(weight / std)
        probe.bias.copy_(bias - (weight / std) @ mean)
    return probe


def probe_accuracy(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
) -> float:
    """Test accuracy of a linear probe fit on the training features."""
    probe = fit_probe(train_features, train_labels, num_classes)
    with torch.no_grad():
        pred = probe(test_features.double().cpu()).argmax(1)
    return float((pred == test_labels.cpu()).double().mean())


def encoder_probe(
    encoder: nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    num_classes: int,
    batch_size: int,
) -> float:
    """Linear-probe test accuracy of ``encoder``'s features (train/test: (x, y))."""
    return probe_accuracy(
        encode(encoder, train[0], batch_size),
        train[1],
        encode(encoder, test[0], batch_size),
        test[1],
        num_classes,
    )
