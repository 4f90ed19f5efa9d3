"""Server-side aggregation of client model states (pure PyTorch, no engine imports)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from fedcmi.config import RobustnessConfig
from fedcmi.registry import AGGREGATION_RULES

State = dict[str, Tensor]


@dataclass
class ClientUpdate:
    """What a client returns: its trained state, sample count and modality set, and for
    methods that need them, what it reports to the server (``report``: SCAFFOLD's
    control-variate change, FedProto's prototypes) and the state it keeps for its next
    round (``client_state``: SCAFFOLD's variate, AGM's running scores)."""

    cid: int
    modalities: str  # "av", "a" or "v"
    num_samples: int
    state: State
    report: State = field(default_factory=dict)
    client_state: State = field(default_factory=dict)


@dataclass
class ServerMemory:
    """What the server keeps across rounds besides the global model: the method's state
    (``server``), each client's own state (``clients``; held by the server, so clients
    can be stateless processes and a checkpoint holds everything a resumed run needs)
    and the server optimizer's moments (``optimizer``)."""

    server: State = field(default_factory=dict)
    clients: dict[int, State] = field(default_factory=dict)
    optimizer: State = field(default_factory=dict)  # FedOpt moments (core.server_opt)


def weighted_mean(tensors: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """sum_k w_k t_k / sum_k w_k, accumulated in float64 for order-stable results."""
    total = float(sum(weights))
    if total <= 0:
        raise ValueError(f"weights must sum to a positive value, got {list(weights)}")
    acc = torch.zeros_like(tensors[0], dtype=torch.float64)
    for t, w in zip(tensors, weights):
        acc.add_(t.to(torch.float64), alpha=w / total)
    return acc.to(tensors[0].dtype)


def coordinate_median(tensors: Sequence[Tensor]) -> Tensor:
    """Coordinate-wise median; the mean of the two middle values for an even count."""
    stacked = torch.stack([t.to(torch.float64) for t in tensors]).sort(dim=0).values
    n = len(tensors)
    middle = stacked[(n - 1) // 2 : n // 2 + 1].mean(dim=0)
    return middle.to(tensors[0].dtype)


def trimmed_mean(tensors: Sequence[Tensor], trim_fraction: float) -> Tensor:
    """Coordinate-wise mean after dropping floor(trim_fraction * n) values at each end."""
    n = len(tensors)
    k = int(trim_fraction * n)
    if n - 2 * k < 1:
        k = (n - 1) // 2
    stacked = torch.stack([t.to(torch.float64) for t in tensors]).sort(dim=0).values
    return stacked[k : n - k].mean(dim=0).to(tensors[0].dtype)


def clip_updates(
    global_state: State,
    updates: Sequence[ClientUpdate],
    side_of: Callable[[str], str | None],
    clip_norm: float,
) -> list[ClientUpdate]:
    """Scale each client's update theta_k - theta_g, per modality side (a, v, shared), to
    an L2 norm of at most ``clip_norm``."""
    clipped = []
    for u in updates:
        state = dict(u.state)
        for side in ("a", "v", None):
            keys = [
                k
                for k in global_state
                if side_of(k) == side and torch.is_floating_point(global_state[k])
            ]
            if not keys:
                continue
            squares = [((u.state[k] - global_state[k]).double() ** 2).sum() for k in keys]
            norm = torch.sqrt(torch.stack(squares).sum())
            scale = min(1.0, clip_norm / float(norm)) if float(norm) > 0 else 1.0
            for k in keys:
                state[k] = global_state[k] + scale * (u.state[k] - global_state[k])
        clipped.append(replace(u, state=state))
    return clipped


class AggregationRule:
    """One ``robustness.rule``: how the clients' values of one state entry combine.

    An entry is a subclass registered with ``@AGGREGATION_RULES.register("name")`` in a
    module of :mod:`fedcmi.core.aggregation_rules`; :func:`aggregate` calls it per state
    entry with the entry's floating-point values from the clients that hold it (per
    modality side under modality-aware aggregation) and their sample counts.
    """

    def combine(
        self, tensors: Sequence[Tensor], weights: Sequence[float], options: RobustnessConfig
    ) -> Tensor:
        raise NotImplementedError


def aggregate(
    global_state: State,
    updates: Sequence[ClientUpdate],
    side_of: Callable[[str], str | None],
    modality_aware: bool,
    robustness: RobustnessConfig | None = None,
) -> State:
    """Sample-weighted average of client states, per state-dict key.

    With ``modality_aware`` (FedCMI), a key on side a (``side_of(key) == "a"``) is
    averaged over the clients that hold modality a only, side v likewise, and shared
    keys over all clients; a side no selected client holds keeps its global value.
    Without it (FedAvg), every key is averaged over every client. Integer buffers such
    as BatchNorm's ``num_batches_tracked`` are taken from the first contributor.

    ``robustness`` (``[robustness]``): ``rule`` names the registered rule that combines
    the values (``"mean"``: the sample-weighted mean; ``"median"`` and
    ``"trimmed-mean"`` are unweighted, since a client's sample count is unverifiable),
    and ``clip_norm`` first shrinks each client's update per side.
    """
    if not updates:
        raise ValueError("aggregate needs at least one client update")
    options = robustness or RobustnessConfig()
    rule: AggregationRule = AGGREGATION_RULES.get(options.rule)()
    if options.clip_norm is not None:
        updates = clip_updates(global_state, updates, side_of, options.clip_norm)
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
            new_state[key] = rule.combine(
                [u.state[key] for u in contributors],
                [u.num_samples for u in contributors],
                options,
            )
    return new_state
