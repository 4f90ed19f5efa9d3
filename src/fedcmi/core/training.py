"""Local-training building blocks shared by every algorithm: batching, SGD, prox term."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

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
    # Cross-round state (see fedcmi.core.aggregation.ServerMemory), as received: the
    # server's state and this client's kept state. What local training sends back is
    # in its LocalResult.
    server_state: dict[str, Tensor] = field(default_factory=dict)
    client_state: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class LocalResult:
    """What a client's local training returns besides its trained weights: ``logs``
    (figures for the round record's client log: loss, steps, loss terms, gradient
    norm, the method's own), ``report`` (tensors sent to the server with the update:
    SCAFFOLD's variate change, FedProto's prototypes) and ``kept`` (the client's state
    for its next round: SCAFFOLD's variate, AGM's running scores)."""

    logs: dict[str, Any]
    report: dict[str, Tensor] = field(default_factory=dict)
    kept: dict[str, Tensor] = field(default_factory=dict)


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


def make_optimizer(
    model: nn.Module, ctx: RoundContext, momentum: float | None = None
) -> torch.optim.Optimizer:
    """SGD with the round's lr and ``train``'s settings; ``momentum`` overrides
    ``train.momentum`` (a method whose own knob sets it)."""
    tr = ctx.train
    return torch.optim.SGD(
        model.parameters(),
        lr=ctx.lr,
        momentum=tr.momentum if momentum is None else momentum,
        weight_decay=tr.weight_decay,
    )


def add_proximal_gradient(
    params: list[nn.Parameter], global_params: list[Tensor], mu: float
) -> Tensor | None:
    """grad += mu * (theta - theta_g): the gradient of (mu/2)||theta - theta_g||^2.

    Returns the term's value (mu/2)||theta - theta_g||^2 over the parameters it acted on
    (None when it did nothing), from the differences it computes anyway. Parameters
    without a gradient this step (an absent modality's branch) are left alone; their
    value equals theta_g anyway, so the term is zero for them.
    """
    if mu == 0:
        return None
    pairs = [(p, g) for p, g in zip(params, global_params) if p.grad is not None]
    if not pairs:
        return None
    grads = [p.grad for p, _ in pairs if p.grad is not None]
    diffs = torch._foreach_sub([p.detach() for p, _ in pairs], [g for _, g in pairs])
    torch._foreach_add_(grads, diffs, alpha=mu)
    return 0.5 * mu * torch.stack(torch._foreach_norm(diffs)).float().square().sum()


# A batch loss: one tensor (a plain cross-entropy, logged as the term "ce") or its named
# terms, each already weighted, summed in order into the loss that is minimised.
LossTerms = dict[str, Tensor]
LossFn = Callable[[Batch], Tensor | LossTerms]


def loss_terms(out: Tensor | LossTerms) -> LossTerms:
    """The named terms of a loss function's result."""
    return {"ce": out} if isinstance(out, Tensor) else out


def total_loss(terms: LossTerms) -> Tensor:
    """The sum of the terms, in order."""
    values = iter(terms.values())
    total = next(values)
    for value in values:
        total = total + value
    return total


def gradient_norm(params: list[nn.Parameter]) -> Tensor:
    """||g||_2 over every parameter's gradient (the step the optimizer is about to take)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)).float())


def clip_gradient(params: list[nn.Parameter], max_norm: float | None) -> Tensor:
    """The gradient's L2 norm ||g||; with ``max_norm`` the gradient is then scaled by
    min(1, max_norm / ||g||) (``torch.nn.utils.clip_grad_norm_``)."""
    if max_norm is None:
        return gradient_norm(params)
    return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True).float()


class NonFiniteTraining(RuntimeError):
    """Local training produced a non-finite loss term or gradient; the message names the
    first one and the step (the client's update would be non-finite)."""


class EpochClock:
    """Which local epoch a batch belongs to, counted in samples (so any batch source
    works, the engine's index batching or a DataLoader): ``done`` epochs are complete
    before the batch passed to :meth:`tick`."""

    def __init__(self, client: ClientData) -> None:
        self.per_epoch = max(len(client), 1)
        self.seen = 0

    @property
    def done(self) -> int:
        return self.seen // self.per_epoch

    def tick(self, batch: Batch) -> None:
        self.seen += len(batch.y)


class StepMonitor:
    """Per-term loss sums, the gradient norm and the first non-finite step of each
    monitored value, accumulated on the device: no host sync until :meth:`report`.

    Monitored values, in order: the loss terms, ``prox`` (the proximal term's value, 0
    without one) and ``grad_norm``.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.names: list[str] | None = None
        self.sums = torch.zeros(0, device=device)
        self.first_bad = torch.zeros(0, dtype=torch.long, device=device)
        self.zero = torch.zeros((), device=device)  # made once: add() runs every step
        self.grad_max = self.zero
        self.steps = 0

    def add(self, terms: LossTerms, prox: Tensor | None, grad_norm: Tensor) -> None:
        names = [*terms, "prox", "grad_norm"]
        if self.names is None:
            self.names = names
            self.sums = torch.zeros(len(names), device=self.device)
            self.first_bad = torch.full((len(names),), -1, dtype=torch.long, device=self.device)
        elif names != self.names:
            raise ValueError(f"loss terms changed from {self.names} to {names} within a client")
        zero = self.zero
        values = torch.stack(
            [t.detach().float().reshape(()) for t in terms.values()]
            + [zero if prox is None else prox.detach().float().to(self.device)]
            + [grad_norm.to(self.device)]
        )
        finite = torch.isfinite(values)
        newly_bad = (~finite) & (self.first_bad < 0)
        self.first_bad = torch.where(newly_bad, self.steps, self.first_bad)
        self.sums += torch.where(finite, values, torch.zeros_like(values))
        self.grad_max = torch.maximum(self.grad_max, torch.where(finite[-1], values[-1], zero))
        self.steps += 1

    def report(self, steps_per_epoch: int | None = None) -> dict[str, float]:
        """``loss_<term>`` (mean over steps of each term and of ``prox``), ``grad_norm``
        (mean) and ``grad_norm_max``; raises :class:`NonFiniteTraining` naming the first
        value, in step order, that went non-finite."""
        if self.names is None:
            return {}
        first_bad = self.first_bad.tolist()
        # (step, position): at one step a loss term comes before the prox term and the
        # gradient it made non-finite.
        bad = [(step, i) for i, step in enumerate(first_bad) if step >= 0]
        if bad:
            step, first = min(bad)
            name = self.names[first]
            where = f"step {step + 1} of {self.steps}"
            if steps_per_epoch:
                where += (
                    f" (epoch {step // steps_per_epoch + 1}, batch {step % steps_per_epoch + 1})"
                )
            what = "the gradient norm" if name == "grad_norm" else f"loss term {name!r}"
            also = [f"{self.names[i]} (step {s + 1})" for s, i in sorted(bad) if i != first]
            tail = f"; also non-finite: {', '.join(also)}" if also else ""
            raise NonFiniteTraining(f"{what} went non-finite first, at {where}{tail}")
        means = (self.sums / self.steps).tolist()
        out = {f"loss_{name}": round(mean, 6) for name, mean in zip(self.names[:-1], means[:-1])}
        out["grad_norm"] = round(means[-1], 6)
        out["grad_norm_max"] = round(float(self.grad_max), 6)
        return out


def train_local(
    model: nn.Module,
    client: ClientData,
    ctx: RoundContext,
    loss_fn: LossFn,
    global_params: list[Tensor] | None = None,
    prox_mu: float = 0.0,
    after_backward: Callable[[], None] | None = None,
    momentum: float | None = None,
) -> LocalResult:
    """Run the local epochs of SGD on ``loss_fn``; returns, as the result's logs, the
    mean loss (without the proximal term), the step count and the :class:`StepMonitor`
    report (each loss term, the proximal term, the gradient norm).

    ``after_backward`` runs between backward and the proximal term, for methods that
    rescale gradients (OGM-GE); ``train.clip_grad_norm`` then bounds the whole step's
    gradient (the reported ``grad_norm`` is the norm before clipping). ``momentum``
    overrides ``train.momentum`` for this training (FedCMI's ``local_momentum``). Raises
    :class:`NonFiniteTraining` when a loss term or the gradient went non-finite.
    """
    model.train()
    optimizer = make_optimizer(model, ctx, momentum)
    params = list(model.parameters())
    monitor = StepMonitor(client.y.device)
    total = torch.zeros((), device=client.y.device)
    for batch in (ctx.batches or iterate_batches)(client, ctx):
        optimizer.zero_grad(set_to_none=True)
        with timed(ctx, "forward"), ctx.autocast():
            terms = loss_terms(loss_fn(batch))
            loss = total_loss(terms)
        with timed(ctx, "backward"):
            loss.backward()
            if after_backward is not None:
                after_backward()
            prox = None
            if prox_mu and global_params is not None:
                prox = add_proximal_gradient(params, global_params, prox_mu)
            monitor.add(terms, prox, clip_gradient(params, ctx.train.clip_grad_norm))
        with timed(ctx, "step"):
            optimizer.step()
        total += loss.detach()
    steps = monitor.steps
    per_epoch = steps // ctx.train.local_epochs if ctx.batches is None else None
    report = monitor.report(per_epoch)
    return LocalResult({"loss": float(total) / max(steps, 1), "steps": steps, **report})
