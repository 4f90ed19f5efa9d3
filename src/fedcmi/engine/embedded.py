"""The embedded in-process federated engine (the default runner).

One model object serves every client: the engine loads the global state into it,
lets the algorithm train it in place, and copies the resulting state out. Client data
stays on the training device as tensors and is batched by index.
"""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.algorithms import build_algorithm
from fedcmi.config import Config, TrainConfig
from fedcmi.data.base import MultimodalData, Split
from fedcmi.engine.faults import InjectedFault, corrupt, draw_faults, validate_update
from fedcmi.engine.federation import Federation
from fedcmi.engine.evaluation import evaluate
from fedcmi.core.phases import PhaseLog, logged
from fedcmi.core.probe import encoder_probe
from fedcmi.engine.speed import autocast_factory, prepare_model
from fedcmi.core.training import ClientData, RoundContext


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(round_idx: int, train: TrainConfig, rounds: int) -> float:
    """Constant lr before ``lr_decay_start``, then linear decay to ``lr_min`` at the end."""
    start = train.lr_decay_start
    if start is None or round_idx < start or rounds - 1 <= start:
        return train.lr
    frac = (round_idx - start) / (rounds - 1 - start)
    return train.lr + frac * (train.lr_min - train.lr)


def client_generator(seed: int, round_idx: int, cid: int) -> torch.Generator:
    """A CPU generator for one client's batch order in one round (resumable, order-free)."""
    state = np.random.SeedSequence([seed, round_idx, cid]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def clone_state(state: State) -> State:
    return {k: v.detach().clone() for k, v in state.items()}


def seed_client_rngs(
    seed: int, round_idx: int, cid: int, model: nn.Module | None = None
) -> torch.Generator:
    """The batch-order generator of one client's local training, and a device generator
    for the model's augmentation modules, both derived from (run seed, round, client)
    alone, so a client trains identically in any process, order or thread."""
    generator = client_generator(seed, round_idx, cid)
    aug_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    torch.manual_seed(aug_seed)  # any other use of the global RNG stays seeded too
    if model is not None:
        for module in model.modules():
            if hasattr(module, "generator"):
                device = next(model.parameters()).device
                module.generator = torch.Generator(device=device).manual_seed(aug_seed)
    return generator


def make_client_data(
    train: Split, indices: np.ndarray, modalities: str, cid: int, device: torch.device
) -> ClientData:
    """A client's partition on ``device``; the modality it lacks is None.

    Rows are gathered on the host and only the partition is copied, so the device never
    holds a second copy of the whole training split.
    """
    index = torch.as_tensor(indices, dtype=torch.long)

    def part(x: torch.Tensor) -> torch.Tensor:
        return x[index].to(device)

    return ClientData(
        cid=cid,
        modalities=modalities,
        x_a=part(train.x_a) if "a" in modalities else None,
        x_v=part(train.x_v) if "v" in modalities else None,
        y=part(train.y),
    )


class ClientTrainer:
    """Local training of any client from a global state, with one reusable model."""

    def __init__(self, cfg: Config, data: MultimodalData, device: torch.device) -> None:
        self.cfg = cfg
        self.num_classes = data.num_classes
        self.device = device
        self.algorithm = build_algorithm(cfg.algorithm.name, cfg.algorithm.params)
        torch.manual_seed(cfg.seed)  # the initial global model is this model's init
        self.model = prepare_model(
            self.algorithm.build_model(data, cfg.model).to(device), cfg.engine
        )
        self.autocast = autocast_factory(cfg.engine, device)

    def initial_state(self) -> State:
        # Contiguous copies: a channels_last model must not leak its layout into states.
        return {k: v.detach().clone().contiguous() for k, v in self.model.state_dict().items()}

    def train(
        self,
        client: ClientData,
        global_state: State,
        round_idx: int,
        timer: PhaseLog | None = None,
    ) -> tuple[ClientUpdate, dict[str, Any]]:
        self.model.load_state_dict(global_state)
        ctx = RoundContext(
            round=round_idx,
            lr=lr_at(round_idx, self.cfg.train, self.cfg.rounds),
            train=self.cfg.train,
            generator=seed_client_rngs(self.cfg.seed, round_idx, client.cid, self.model),
            num_classes=self.num_classes,
            autocast=self.autocast,
            timer=timer,
        )
        logs = self.algorithm.local_train(self.model, global_state, client, ctx)
        state = clone_state(self.model.state_dict())
        update = ClientUpdate(client.cid, client.modalities, len(client), state)
        info = {"cid": client.cid, "modalities": client.modalities, "num_samples": len(client)}
        return update, {**info, **logs}


def round_record(
    round_idx: int,
    cfg: Config,
    selected: list[int],
    client_logs: list[dict[str, Any]],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """One line of metrics.jsonl (no wall-clock values: identical runs give identical files)."""
    losses = [c["loss"] for c in client_logs]
    return {
        "round": round_idx + 1,
        "lr": lr_at(round_idx, cfg.train, cfg.rounds),
        "clients": selected,
        "train_loss": float(np.mean(losses)) if losses else None,
        **evaluation,
        "client_logs": client_logs,
    }


class Evaluator:
    """Central evaluation of a global state on the val and test splits."""

    def __init__(self, cfg: Config, data: MultimodalData, model: nn.Module, device: torch.device):
        self.batch_size = cfg.eval.batch_size
        self.num_classes = data.num_classes
        self.model = model
        self.train = data.train  # stays where it is; the probes move it batch by batch
        self.val = data.val.to(device)
        self.test = data.test.to(device)

    def __call__(self, state: State) -> dict[str, Any]:
        self.model.load_state_dict(state)
        bs, c = self.batch_size, self.num_classes
        return {
            "val": evaluate(self.model, self.val, bs, c),
            "test": evaluate(self.model, self.test, bs, c),
        }

    def probes(self, state: State) -> dict[str, float | None]:
        """``probe_a``, ``probe_v``: linear-probe test accuracy of each encoder of
        ``state`` (fit on the whole training pool, both modalities of every sample, in
        whatever way the federation split it); None where the model has no such encoder.
        """
        self.model.load_state_dict(state)
        out: dict[str, float | None] = {}
        for side in "av":
            encoder = getattr(self.model, f"enc_{side}", None)
            out[f"probe_{side}"] = (
                None
                if encoder is None
                else encoder_probe(
                    encoder,
                    (getattr(self.train, f"x_{side}"), self.train.y),
                    (getattr(self.test, f"x_{side}"), self.test.y),
                    self.num_classes,
                    self.batch_size,
                )
            )
        return out


class EmbeddedEngine:
    """Runs rounds of a registered algorithm over a fixed federation, in one process."""

    def __init__(
        self, cfg: Config, data: MultimodalData, federation: Federation, device: torch.device
    ) -> None:
        self.cfg = cfg
        self.federation = federation
        self.trainer = ClientTrainer(cfg, data, device)
        self.global_state = self.trainer.initial_state()
        # Replicas for concurrent clients: each thread trains its own model.
        self.trainers = [self.trainer] + [
            ClientTrainer(cfg, data, device) for _ in range(cfg.engine.concurrent_clients - 1)
        ]
        self.pool = None
        if len(self.trainers) > 1:
            self.free_trainers: queue.Queue[ClientTrainer] = queue.Queue()
            for trainer in self.trainers:
                self.free_trainers.put(trainer)
            self.pool = ThreadPoolExecutor(len(self.trainers), thread_name_prefix="fedcmi-client")
        self.phase_log: PhaseLog | None = None  # set by benchmarks to see where time goes
        self.evaluate = Evaluator(cfg, data, self.trainer.model, device)
        self.clients = [
            make_client_data(data.train, idx, mods, cid, device)
            for cid, (idx, mods) in enumerate(zip(federation.client_indices, federation.modalities))
        ]

    @property
    def algorithm(self):
        return self.trainer.algorithm

    def close(self) -> None:
        """Stop the client threads (concurrent clients); the engine cannot train after."""
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None

    def train_client(self, cid: int, round_idx: int) -> tuple[ClientUpdate, dict[str, Any]]:
        return self.trainer.train(self.clients[cid], self.global_state, round_idx)

    def run_round(self, round_idx: int) -> dict[str, Any]:
        """Train the round's clients, aggregate, evaluate; returns the round's record.

        A client that raises, exceeds ``robustness.client_timeout`` or returns an invalid
        update is left out with its reason in the record. With fewer than
        ``robustness.min_clients`` accepted updates the round is retried up to
        ``robustness.max_round_retries`` times, then :class:`RoundFailedError` is raised.
        """
        rob = self.cfg.robustness
        selected = participants(self.algorithm, self.federation, round_idx)
        needed = min(rob.min_clients, len(selected))
        rejected: list[dict[str, Any]] = []
        for attempt in range(rob.max_round_retries + 1):
            updates, client_logs, failures = self._train_clients(selected, round_idx, attempt)
            rejected += failures
            if len(updates) >= needed:
                break
        else:
            last = "; ".join(f"client {r['cid']}: {r['reason']}" for r in failures)
            raise RoundFailedError(
                f"round {round_idx + 1}: {len(updates)} of {len(selected)} clients succeeded "
                f"(robustness.min_clients = {rob.min_clients}) in each of "
                f"{rob.max_round_retries + 1} attempts; last failures: {last}"
            )
        if updates:  # a round where no sampled client can take part leaves the model as is
            self.global_state = self.algorithm.aggregate(self.global_state, updates, rob)
        with logged(self.phase_log, "evaluate"):
            evaluation = self.evaluate(self.global_state)
        record = round_record(round_idx, self.cfg, selected, client_logs, evaluation)
        if rejected:
            record["rejected"] = rejected
            record["attempts"] = attempt + 1
        return record

    def _train_clients(
        self, selected: list[int], round_idx: int, attempt: int
    ) -> tuple[list[ClientUpdate], list[dict[str, Any]], list[dict[str, Any]]]:
        """Train the clients (one after another, or ``engine.concurrent_clients`` at a
        time on separate model replicas and CUDA streams); results in schedule order."""
        if self.pool is None:
            outcomes = [
                self._attempt_client(cid, round_idx, attempt, self.trainer) for cid in selected
            ]
        else:
            outcomes = list(
                self.pool.map(
                    lambda cid: self._with_free_trainer(cid, round_idx, attempt), selected
                )
            )
        updates, logs, failures = [], [], []
        for update, log, failure in outcomes:
            if failure is not None:
                failures.append(failure)
            else:
                updates.append(update)
                logs.append(log)
        return updates, logs, failures

    def _with_free_trainer(self, cid: int, round_idx: int, attempt: int):
        trainer = self.free_trainers.get()
        try:
            if trainer.device.type != "cuda":
                return self._attempt_client(cid, round_idx, attempt, trainer)
            # Pool streams do not wait for the default stream by themselves: order this
            # client after the work that made the global state and the client data, and
            # finish it before its update is aggregated on the default stream.
            stream = torch.cuda.Stream(trainer.device)
            stream.wait_stream(torch.cuda.default_stream(trainer.device))
            with torch.cuda.stream(stream):
                outcome = self._attempt_client(cid, round_idx, attempt, trainer)
            stream.synchronize()
            return outcome
        finally:
            self.free_trainers.put(trainer)

    def _attempt_client(self, cid: int, round_idx: int, attempt: int, trainer: ClientTrainer):
        """(update, log, None) for an accepted update, else (None, None, failure)."""
        timeout = self.cfg.robustness.client_timeout
        draw = draw_faults(self.cfg.faults, self.cfg.seed, round_idx, cid, attempt)
        started = time.perf_counter()
        try:
            if draw.drop:
                raise InjectedFault("injected crash")
            update, log = trainer.train(
                self.clients[cid], self.global_state, round_idx, timer=self.phase_log
            )
        except Exception as exc:  # noqa: BLE001 - one client must not stop the round
            reason = f"raised {type(exc).__name__}: {exc}"
            return None, None, {"cid": cid, "attempt": attempt, "reason": reason}
        elapsed = time.perf_counter() - started
        update = corrupt(update, draw)
        if timeout is not None and (draw.slow or elapsed > timeout):
            shown = "injected slowness" if draw.slow else f"{elapsed:.1f} s"
            reason = f"exceeded client_timeout {timeout} s ({shown})"
        else:
            reason = validate_update(update, self.global_state)
        if reason is not None:
            return None, None, {"cid": cid, "attempt": attempt, "reason": reason}
        return update, log, None


class RoundFailedError(RuntimeError):
    """Too few clients succeeded in a round, even after retries."""


def participants(algorithm, federation: Federation, round_idx: int) -> list[int]:
    """The round's sampled clients that can take part in ``algorithm``."""
    return [
        cid
        for cid in federation.schedule[round_idx]
        if algorithm.participates(federation.modalities[cid])
    ]
