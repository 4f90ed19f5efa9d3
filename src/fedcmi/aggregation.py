"""Server-side aggregation of client model states (pure PyTorch, no engine imports)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

State = dict[str, Tensor]


@dataclass
class ClientUpdate:
    """What a client returns: its trained state, sample count and modality set."""

    cid: int
    modalities: str  # "av", "a" or "v"
    num_samples: int
    state: State


def weighted_mean(tensors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """sum_k w_k t_k / sum_k w_k, accumulated in float64 for order-stable results."""
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(f"weights must sum to a positive value, got {list(weights)}")
    acc = torch.zeros_like(tensors[0], dtype=torch.float64)
    for t, w in zip(tensors, weights):
        acc.add_(t.to(torch.float64), alpha=w / total)
    return acc.to(tensors[0].dtype)


def aggregate(
    global_state: State,
    updates: Sequence[ClientUpdate],
    side_of: Callable[[str], str | None],
    modality_aware: bool,
) -> State:
    """Sample-weighted average of client states, per state-dict key.

    With ``modality_aware`` (FedCMI), a key on side a (``side_of(key) == "a"``) is
    averaged over the clients that hold modality a only, side v likewise, and shared
    keys over all clients; a side no selected client holds keeps its global value.
    Without it (FedAvg), every key is averaged over every client. Integer buffers such
    as BatchNorm's ``num_batches_tracked`` are taken from the first contributor.
    """
    if not updates:
        raise ValueError("aggregate needs at least one client update")
    new_state: State = {}
    for key, global_value in global_state.items():
        side = side_of(key)
        contributors = [
            u for u in updates if not modality_aware or side is None or side in u.modalities
        ]
        if not contributors:
            new_state[key] = global_value.clone()
        elif not torch.is_floating_point(global_value):
            new_state[key] = contributors[0].state[key].clone()
        else:
            new_state[key] = weighted_mean(
                [u.state[key] for u in contributors], [u.num_samples for u in contributors]
            )
    return new_state
