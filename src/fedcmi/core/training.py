"""Local-training building blocks shared by every algorithm: batching, SGD, prox term."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fedcmi.config import TrainConfig
from fedcmi.core.phases import PhaseLog, logged


def present(x: Tensor | None) -> Tensor:
    """A modality's tensor where the client's or batch's modalities guarantee it; None
    there is a bug, not a user error."""
    if x is None:
        raise ValueError("a modality this code path needs is missing")
    return x


@dataclass
class ClientData:
    """One client's local training data, already on the training device.

    A missing modality is None, so no algorithm can use it by accident. With per-sample
    missing modalities (``federation.missing_rate_a/v``) a multimodal client's
    ``mask_a``/``mask_v`` say which samples hold each input (True = present); the rows
    of an absent input are zeros, never the real data.
    """

    cid: int
    modalities: str
    x_a: Tensor | None
    x_v: Tensor | None
    y: Tensor
    mask_a: Tensor | None = None
    mask_v: Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: Tensor | slice) -> Batch:
        """The batch of the rows ``index`` selects."""
        return Batch(
            None if self.x_a is None else self.x_a[index],
            None if self.x_v is None else self.x_v[index],
            self.y[index],
            None if self.mask_a is None else self.mask_a[index],
            None if self.mask_v is None else self.mask_v[index],
        )

    def both_present(self) -> Tensor | None:
        """Samples that hold both inputs (None: all of them)."""
        return rows_with_both(self.y, self.mask_a, self.mask_v)


@dataclass
class RoundContext:
    """Everything about the current round that local training needs."""

    round: int  # 0-based
    lr: float
    train: TrainConfig
    generator: torch.Generator  # CPU generator seeded per (run seed, round, client)
    num_classes: int
    # Wraps each batch's forward pass and loss (mixed precision); none by default.
    autocast: Callable[[], AbstractContextManager] = nullcontext
    # Where batches come from (default: index batching of the client's tensors); the
    # speed benchmark swaps in a per-sample DataLoader, as reference code does.
    batches: Callable[[ClientData, RoundContext], Iterator[Batch]] | None = None
    # When set, the intervals spent in forward+loss, backward and optimizer steps are
    # logged here (benchmarks; CUDA events, so the device is not stalled).
    timer: PhaseLog | None = None
    # Cross-round state (see fedcmi.core.aggregation.ServerMemory): the server's state
    # and this client's kept state, as received; local training writes what it reports
    # to the server into ``report`` and what it keeps for its next round into
    # ``new_client_state``.
    server_state: dict[str, Tensor] = field(default_factory=dict)
    client_state: dict[str, Tensor] = field(default_factory=dict)
    report: dict[str, Tensor] = field(default_factory=dict)
    new_client_state: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Batch:
    x_a: Tensor | None
    x_v: Tensor | None
    y: Tensor
    mask_a: Tensor | None = None  # per-sample presence, as in ClientData
    mask_v: Tensor | None = None

    def both_present(self) -> Tensor | None:
        """Rows that hold both inputs (None: every row does)."""
        return rows_with_both(self.y, self.mask_a, self.mask_v)


def rows_with_both(y: Tensor, mask_a: Tensor | None, mask_v: Tensor | None) -> Tensor | None:
    """mask_a & mask_v, an absent mask counting as all-present (None if both are)."""
    if mask_a is None and mask_v is None:
        return None
    kept = torch.ones_like(y, dtype=torch.bool)
    for mask in (mask_a, mask_v):
        if mask is not None:
            kept = kept & mask
    return kept


def rows(x: Tensor, mask: Tensor | None) -> Tensor:
    """The rows of ``x`` that ``mask`` keeps (all of them without a mask)."""
    return x if mask is None else x[mask]


def masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values`` over the rows ``mask`` keeps; 0 when it keeps none (a batch in
    which no sample holds the input contributes no loss, not NaN)."""
    if mask is None:
        return values.mean()
    kept = torch.where(mask, values, torch.zeros_like(values))  # a dropped row may be inf
    return kept.sum() / mask.sum().clamp_min(1).to(values.dtype)


def cross_entropy_rows(logits: Tensor, labels: Tensor, mask: Tensor | None) -> Tensor:
    """CE(logits, labels) averaged over the rows ``mask`` keeps (see :func:`masked_mean`)."""
    if mask is None:
        return F.cross_entropy(logits, labels)
    return masked_mean(F.cross_entropy(logits, labels, reduction="none"), mask)


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A shuffled split of range(n) into batches; a final batch of one sample is merged
    into the previous one (BatchNorm cannot train on a single sample) rather than dropped."""
    order = torch.randperm(n, generator=generator)
    chunks = list(torch.split(order, batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        single = chunks.pop()
        chunks[-1] = torch.cat([chunks[-1], single])
    return chunks


def iterate_batches(client: ClientData, ctx: RoundContext) -> Iterator[Batch]:
    """All local epochs' batches, gathered by index from the client's tensors.

    The batch order of every epoch is drawn up front and copied to the device at once:
    a host-to-device copy per batch would make the host wait for the GPU at every step.
    """
    flat = [
        idx
        for _ in range(ctx.train.local_epochs)
        for idx in batch_indices(len(client), ctx.train.batch_size, ctx.generator)
    ]
    if not flat:
        return
    on_device = torch.cat(flat).to(client.y.device).split([len(idx) for idx in flat])
    for idx in on_device:
        yield client.take(idx)


def timed(ctx: RoundContext, phase: str) -> AbstractContextManager:
    """Logs the enclosed work as ``phase`` in ``ctx.timer`` (nothing without a timer)."""
    return logged(ctx.timer, phase)


def make_optimizer(model: nn.Module, ctx: RoundContext) -> torch.optim.Optimizer:
    tr = ctx.train
    return torch.optim.SGD(
        model.parameters(), lr=ctx.lr, momentum=tr.momentum, weight_decay=tr.weight_decay
    )


def add_proximal_gradient(
    params: list[nn.Parameter], global_params: list[Tensor], mu: float
) -> None:
    """grad += mu * (theta - theta_g): the gradient of (mu/2)||theta - theta_g||^2.

    Parameters without a gradient this step (an absent modality's branch) are left
    alone; their value equals theta_g anyway, so the term is zero for them.
    """
    if mu == 0:
        return
    pairs = [(p, g) for p, g in zip(params, global_params) if p.grad is not None]
    if not pairs:
        return
    grads = [p.grad for p, _ in pairs if p.grad is not None]
    diffs = torch._foreach_sub([p.detach() for p, _ in pairs], [g for _, g in pairs])
    torch._foreach_add_(grads, diffs, alpha=mu)


def train_local(
    model: nn.Module,
    client: ClientData,
    ctx: RoundContext,
    loss_fn: Callable[[Batch], Tensor],
    global_params: list[Tensor] | None = None,
    prox_mu: float = 0.0,
    after_backward: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Run the local epochs of SGD on ``loss_fn``; returns the mean loss and step count.

    ``after_backward`` runs between backward and the proximal term, for methods that
    rescale gradients (OGM-GE).
    """
    model.train()
    optimizer = make_optimizer(model, ctx)
    params = list(model.parameters())
    total = torch.zeros((), device=client.y.device)
    steps = 0
    for batch in (ctx.batches or iterate_batches)(client, ctx):
        optimizer.zero_grad(set_to_none=True)
        with timed(ctx, "forward"), ctx.autocast():
            loss = loss_fn(batch)
        with timed(ctx, "backward"):
            loss.backward()
            if after_backward is not None:
                after_backward()
            if prox_mu and global_params is not None:
                add_proximal_gradient(params, global_params, prox_mu)
        with timed(ctx, "step"):
            optimizer.step()
        total += loss.detach()
        steps += 1
    return {"loss": float(total) / max(steps, 1), "steps": steps}
