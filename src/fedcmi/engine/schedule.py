"""What a client's local training in a round depends on besides the data: the learning
rate of the round and the random streams of (run seed, round, client).

Every runner (embedded engine, Flower ClientApp, speed bench) builds a client's
:class:`~fedcmi.core.training.RoundContext` with :func:`round_context`, so a client
trains identically in any process, order or thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch
from torch import nn

from fedcmi.config import Config, TrainConfig
from fedcmi.core.phases import PhaseLog
from fedcmi.core.training import Batch, ClientData, RoundContext


def lr_at(round_idx: int, train: TrainConfig, rounds: int) -> float:
    """The learning rate of round ``round_idx`` (0-based) under ``train.lr_decay``:
    ``"linear"``: lr before ``lr_decay_start``, then linear to ``lr_min`` at the last round;
    ``"reference"``: lr through round ``lr_decay_start``, then lr - (lr - lr_min) t / rounds."""
    start = train.lr_decay_start
    if start is None:
        return train.lr
    if train.lr_decay == "reference":
        if round_idx <= start:
            return train.lr
        return train.lr - (train.lr - train.lr_min) / rounds * round_idx
    if round_idx < start or rounds - 1 <= start:
        return train.lr
    frac = (round_idx - start) / (rounds - 1 - start)
    return train.lr + frac * (train.lr_min - train.lr)


def client_generator(seed: int, round_idx: int, cid: int) -> torch.Generator:
    """A CPU generator for one client's batch order in one round (resumable, order-free)."""
    state = np.random.SeedSequence([seed, round_idx, cid]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def seed_client_rngs(
    seed: int, round_idx: int, cid: int, model: nn.Module | None = None
) -> torch.Generator:
    """The batch-order generator of one client's local training, and a device generator
    for the model's augmentation modules, both derived from (run seed, round, client)
    alone, so a client trains identically in any process, order or thread."""
    generator = client_generator(seed, round_idx, cid)
    aug_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    # Any other use of the global RNGs stays seeded too. The CPU generator directly:
    # torch.manual_seed also queues a lazy CUDA seeding with a stack trace, ~1.5 ms a
    # client; CUDA's generators are seeded only once CUDA is in use.
    torch.default_generator.manual_seed(aug_seed)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(aug_seed)
    if model is not None:
        for module in model.modules():
            if hasattr(module, "generator"):
                device = next(model.parameters()).device
                generator_of_module = torch.Generator(device=device).manual_seed(aug_seed)
                module.generator = generator_of_module  # type: ignore[assignment]
    return generator


Batches = Callable[[ClientData, RoundContext], Iterator[Batch]]


def round_context(
    cfg: Config,
    round_idx: int,
    cid: int,
    model: nn.Module,
    num_classes: int,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
    timer: PhaseLog | None = None,
    batches: Batches | None = None,
    train: TrainConfig | None = None,
) -> RoundContext:
    """Client ``cid``'s context for round ``round_idx``; seeds its random streams.

    ``train`` replaces ``cfg.train`` (e.g. one local epoch for a benchmark's warm-up);
    the learning rate stays the round's.
    """
    return RoundContext(
        round=round_idx,
        lr=lr_at(round_idx, cfg.train, cfg.rounds),
        train=train or cfg.train,
        generator=seed_client_rngs(cfg.seed, round_idx, cid, model),
        num_classes=num_classes,
        autocast=autocast,
        batches=batches,
        timer=timer,
    )
