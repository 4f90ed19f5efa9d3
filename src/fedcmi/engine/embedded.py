"""The embedded in-process federated engine (the default runner).

One model object serves every client: the engine loads the global state into it,
lets the algorithm train it in place, and copies the resulting state out. Client data
stays on the training device as tensors and is batched by index.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedcmi.algorithms import build_algorithm
from fedcmi.algorithms.base import Algorithm
from fedcmi.config import Config, TrainConfig
from fedcmi.core.aggregation import ClientUpdate, ServerMemory, State
from fedcmi.core.phases import PhaseLog
from fedcmi.core.training import ClientData, rows
from fedcmi.data.base import MultimodalData, Split
from fedcmi.engine.evaluation import Evaluator
from fedcmi.engine.federation import Federation, Missing
from fedcmi.engine.records import RoundRecord
from fedcmi.engine.rounds import Outcome, attempt_in_process, run_round
from fedcmi.engine.schedule import Batches, round_context
from fedcmi.engine.setup import RunSetup
from fedcmi.engine.speed import autocast_factory, prepare_model


def clone_state(state: State) -> State:
    return {k: v.detach().clone() for k, v in state.items()}


def make_client_data(
    train: Split,
    indices: np.ndarray,
    modalities: str,
    cid: int,
    device: torch.device,
    missing: Missing | None = None,
) -> ClientData:
    """A client's partition on ``device``; the modality it lacks is None.

    Rows are gathered on the host and only the partition is copied, so the device never
    holds a second copy of the whole training split. With ``missing`` (per-sample missing
    inputs) the absent inputs' rows are zeros, the masks say which rows are real, and
    samples missing both inputs are left out (they are counted in the manifest).
    """
    keep = np.ones(len(indices), dtype=bool) if missing is None else ~missing.both_missing
    index = torch.as_tensor(indices[keep], dtype=torch.long)

    def part(x: torch.Tensor, present: np.ndarray | None) -> torch.Tensor:
        rows = x[index]
        if present is not None:
            rows[torch.as_tensor(~present[keep])] = 0
        return rows.to(device)

    def mask(present: np.ndarray | None) -> torch.Tensor | None:
        return None if present is None else torch.as_tensor(present[keep]).to(device)

    present_a = None if missing is None else missing.present_a
    present_v = None if missing is None else missing.present_v
    return ClientData(
        cid=cid,
        modalities=modalities,
        x_a=part(train.x_a, present_a) if "a" in modalities else None,
        x_v=part(train.x_v, present_v) if "v" in modalities else None,
        y=part(train.y, None),
        mask_a=mask(present_a),
        mask_v=mask(present_v),
    )


def federation_client(
    federation: Federation, train: Split, cid: int, device: torch.device
) -> ClientData:
    """Client ``cid``'s data as the federation defines it (partition, modalities,
    per-sample missing inputs) from ``train``, the training split as that client sees it
    (:meth:`~fedcmi.data.base.MultimodalData.client_train`)."""
    return make_client_data(
        train,
        federation.client_indices[cid],
        federation.modalities[cid],
        cid,
        device,
        federation.missing.get(cid),
    )


class ClientTrainer:
    """Local training of any client from a global state, with one reusable model."""

    def __init__(
        self, cfg: Config, data: MultimodalData, device: torch.device, precision: str
    ) -> None:
        self.cfg = cfg
        self.num_classes = data.num_classes
        self.device = device
        self.algorithm = build_algorithm(cfg.algorithm.name, cfg.algorithm.params)
        torch.manual_seed(cfg.seed)  # the initial global model is this model's init
        model = self.algorithm.build_model(data, cfg.model).to(device)
        self.algorithm.attach(model)
        self.model = prepare_model(model, cfg.engine, device, precision)
        self.autocast = autocast_factory(precision, device)

    def initial_state(self) -> State:
        # Contiguous copies: a channels_last model must not leak its layout into states.
        return {k: v.detach().clone().contiguous() for k, v in self.model.state_dict().items()}

    def initial_memory(self, global_state: State) -> ServerMemory:
        """The server memory before round 1: the method's initial server state."""
        return ServerMemory(self.algorithm.init_server_state(global_state))

    @torch.no_grad()
    def local_loss(self, client: ClientData, global_state: State) -> float:
        """Mean CE of the global model over the client's samples (eval mode): what a
        power-of-choice candidate reports. A unimodal model averages over the samples
        holding its input."""
        model = self.model
        model.load_state_dict(global_state)
        model.eval()
        side = getattr(model, "side", None)
        needed = {"a": client.mask_a, "v": client.mask_v}.get(side) if side else None
        total, count = 0.0, 0
        step = self.cfg.eval.batch_size
        for start in range(0, len(client), step):
            sl = slice(start, start + step)
            batch = client.take(sl)
            with self.autocast():
                logits = model(batch.x_a, batch.x_v, client.modalities, batch.mask_a, batch.mask_v)
            losses = F.cross_entropy(logits.float(), batch.y, reduction="none")
            keep = None if needed is None else needed[sl]
            total += float(rows(losses, keep).sum())
            count += len(batch.y) if keep is None else int(keep.sum())
        return total / max(count, 1)

    def train(
        self,
        client: ClientData,
        global_state: State,
        round_idx: int,
        timer: PhaseLog | None = None,
        train: TrainConfig | None = None,
        batches: Batches | None = None,
        model: nn.Module | None = None,
        memory: ServerMemory | None = None,
    ) -> tuple[ClientUpdate, dict[str, Any]]:
        """Client ``client``'s local training of round ``round_idx`` from ``global_state``
        (and the server memory's method state and this client's kept state).

        ``train`` replaces ``cfg.train``, ``batches`` the index batching and ``model`` the
        reused model (benchmarks: a warm-up epoch, a reference-style per-sample loader and
        a per-client model copy).
        """
        model = self.model if model is None else model
        model.load_state_dict(global_state)
        ctx = round_context(
            self.cfg,
            round_idx,
            client.cid,
            model,
            self.num_classes,
            self.autocast,
            timer,
            batches,
            train,
        )
        if memory is not None:
            ctx.server_state = memory.server
            ctx.client_state = memory.clients.get(client.cid, {})
        result = self.algorithm.local_train(model, global_state, client, ctx)
        state = clone_state(model.state_dict())
        update = ClientUpdate(
            client.cid,
            client.modalities,
            len(client),
            state,
            report=result.report,
            client_state=result.kept,
        )
        info = {"cid": client.cid, "modalities": client.modalities, "num_samples": len(client)}
        return update, {**info, **result.logs}


class EmbeddedEngine:
    """Runs rounds of a registered algorithm over a fixed federation, in one process."""

    def __init__(self, run: RunSetup) -> None:
        cfg, data, federation, device = run.cfg, run.data, run.federation, run.device
        self.run, self.cfg, self.federation = run, cfg, federation
        self.trainer = ClientTrainer(cfg, data, device, run.precision.name)
        self.global_state = self.trainer.initial_state()
        self.memory = self.trainer.initial_memory(self.global_state)
        # Replicas for concurrent clients: each thread trains its own model.
        self.trainers = [self.trainer] + [
            ClientTrainer(cfg, data, device, run.precision.name)
            for _ in range(cfg.engine.concurrent_clients - 1)
        ]
        self.pool: ThreadPoolExecutor | None = None
        self.free_trainers: queue.Queue[ClientTrainer] = queue.Queue()
        if len(self.trainers) > 1:
            for trainer in self.trainers:
                self.free_trainers.put(trainer)
            self.pool = ThreadPoolExecutor(len(self.trainers), thread_name_prefix="fedcmi-client")
        self.phase_log: PhaseLog | None = None  # set by benchmarks to see where time goes
        self.evaluate = Evaluator(cfg.eval, data, self.trainer.model, device)
        self.clients = [
            federation_client(federation, data.client_train(cid), cid, device)
            for cid in range(len(federation.client_indices))
        ]

    @property
    def algorithm(self) -> Algorithm:
        return self.trainer.algorithm

    def close(self) -> None:
        """Stop the client threads (concurrent clients); the engine cannot train after."""
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def train_client(self, cid: int, round_idx: int) -> tuple[ClientUpdate, dict[str, Any]]:
        """Client ``cid``'s local training of round ``round_idx`` from the global state
        (no faults, no review)."""
        return self.trainer.train(
            self.clients[cid], self.global_state, round_idx, memory=self.memory
        )

    def run_round(self, round_idx: int, train: TrainConfig | None = None) -> RoundRecord:
        """Train the round's clients, aggregate, evaluate; returns the round's record
        (:func:`fedcmi.engine.rounds.run_round`: rejected clients, retries and
        :class:`~fedcmi.engine.rounds.RoundFailedError` as there). ``train`` replaces
        ``cfg.train`` for this round's local training (benchmark warm-up)."""
        self.global_state, self.memory, record = run_round(
            self.cfg,
            self.algorithm,
            self.federation,
            (self.global_state, self.memory),
            round_idx,
            lambda selected, attempt: self._attempt(selected, round_idx, attempt, train),
            self.evaluate,
            self.phase_log,
            self._local_losses,
        )
        return record

    def step(
        self, round_idx: int, state: State, memory: ServerMemory
    ) -> tuple[State, ServerMemory, RoundRecord]:
        """One round from ``state`` and ``memory`` (:func:`fedcmi.engine.loop.run_rounds`'
        step): the engine's own state follows."""
        self.global_state, self.memory = state, memory
        record = self.run_round(round_idx)
        return self.global_state, self.memory, record

    def _local_losses(self, cids: list[int]) -> list[float]:
        return [self.trainer.local_loss(self.clients[cid], self.global_state) for cid in cids]

    def _attempt(
        self, selected: list[int], round_idx: int, attempt: int, train: TrainConfig | None
    ) -> list[Outcome]:
        """One attempt of the round's clients (one after another, or
        ``engine.concurrent_clients`` at a time on separate model replicas and CUDA
        streams); outcomes in schedule order."""

        def one(cid: int, trainer: ClientTrainer) -> Outcome:
            def local(
                data: Callable[[ClientData, int], ClientData],
            ) -> tuple[ClientUpdate, dict[str, Any]]:
                client = data(self.clients[cid], trainer.num_classes)
                return trainer.train(
                    client, self.global_state, round_idx, self.phase_log, train, memory=self.memory
                )

            return attempt_in_process(self.cfg, cid, round_idx, attempt, self.global_state, local)

        if self.pool is None:
            return [one(cid, self.trainer) for cid in selected]
        return list(self.pool.map(lambda cid: self._with_free_trainer(cid, one), selected))

    def _with_free_trainer(self, cid: int, one: Callable[[int, ClientTrainer], Outcome]) -> Outcome:
        trainer = self.free_trainers.get()
        try:
            if trainer.device.type != "cuda":
                return one(cid, trainer)
            # Pool streams do not wait for the default stream by themselves: order this
            # client after the work that made the global state and the client data, and
            # finish it before its update is aggregated on the default stream.
            stream = torch.cuda.Stream(trainer.device)
            stream.wait_stream(torch.cuda.default_stream(trainer.device))
            with torch.cuda.stream(stream):
                outcome = one(cid, trainer)
            stream.synchronize()
            return outcome
        finally:
            self.free_trainers.put(trainer)
