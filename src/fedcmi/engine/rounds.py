"""One federated round, written once for every runner.

A round has two halves that may run in different processes or machines:

* the **client attempt** (:func:`train_client`): draw the seeded faults of
  (seed, round, client, attempt), train locally, apply injected corruption; the
  embedded engine calls it in-process, the Flower ClientApp on a SuperNode;
* the **server review and round driver** (:func:`review`, :func:`drive_round`,
  :func:`close_round`): accept or reject each reply (timeout, invalid update),
  retry the round while fewer than ``robustness.min_clients`` were accepted, aggregate
  with the algorithm's rule and write the round's record.

Both engines call these functions, so their metrics stay byte-identical.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedcmi.algorithms.base import Algorithm
from fedcmi.config import Config, FederationConfig, RobustnessConfig
from fedcmi.core.aggregation import ClientUpdate, ServerMemory, State
from fedcmi.core.phases import PhaseLog, logged
from fedcmi.core.server_opt import server_step
from fedcmi.core.training import ClientData
from fedcmi.engine.faults import (
    HONEST,
    InjectedFault,
    attack_for,
    attack_generator,
    corrupt,
    draw_faults,
    validate_update,
)
from fedcmi.engine.federation import Federation, selection_of
from fedcmi.engine.records import RoundRecord
from fedcmi.engine.schedule import lr_at
from fedcmi.errors import RunFailure


class RoundFailedError(RunFailure):
    """Too few clients succeeded in a round, even after retries."""


@dataclass
class ClientResult:
    """What a client sends back: its update, its training logs, how long it took and
    whether an injected slowness made it late."""

    update: ClientUpdate
    logs: dict[str, Any]
    seconds: float
    slow: bool = False


@dataclass
class Outcome:
    """The server's verdict on one client in one attempt: accepted (``update`` and
    ``logs`` set) or rejected (``reason`` set)."""

    cid: int
    attempt: int
    update: ClientUpdate | None = None
    logs: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def rejection(self) -> dict[str, Any]:
        """The record entry of a rejected attempt."""
        return {"cid": self.cid, "attempt": self.attempt, "reason": self.reason}


# Local training of one client on its data as the given function returns it (an
# attacker's poisoned data; the data as it is for an honest client).
Train = Callable[[Callable[[ClientData, int], ClientData]], tuple[ClientUpdate, dict[str, Any]]]


def train_client(
    cfg: Config,
    cid: int,
    round_idx: int,
    attempt: int,
    train: Train,
    global_state: State,
    sleep_when_slow: bool = False,
) -> ClientResult:
    """One client attempt: seeded fault draw, local training (``train``), a malicious
    client's attack (:class:`fedcmi.engine.faults.Attack`), injected corruption.

    Raises :class:`~fedcmi.engine.faults.InjectedFault` for an injected crash. An
    injected slowness is reported in the result; with ``sleep_when_slow`` (a real
    client process) the client also sleeps past ``robustness.client_timeout``.
    """
    draw = draw_faults(cfg.faults, cfg.seed, round_idx, cid, attempt)
    if draw.drop:
        raise InjectedFault("injected crash")
    timeout = cfg.robustness.client_timeout
    if draw.slow and sleep_when_slow and timeout is not None:
        time.sleep(timeout + 1.0)
    attack = attack_for(cfg, cid)
    started = time.perf_counter()
    update, logs = train((attack or HONEST).poison_data)
    seconds = time.perf_counter() - started
    if attack is not None:
        generator = attack_generator(cfg.seed, round_idx, cid, attempt)
        update = attack.poison_update(update, global_state, cfg.faults, generator)
    return ClientResult(corrupt(update, draw), logs, seconds, draw.slow)


def review(
    result: ClientResult, attempt: int, global_state: State, timeout: float | None
) -> Outcome:
    """Accept a client's result, or reject it for lateness or an invalid update."""
    cid = result.update.cid
    if timeout is not None and (result.slow or result.seconds > timeout):
        shown = "injected slowness" if result.slow else f"{result.seconds:.1f} s"
        return Outcome(cid, attempt, reason=f"exceeded client_timeout {timeout} s ({shown})")
    reason = validate_update(result.update, global_state)
    if reason is not None:
        return Outcome(cid, attempt, reason=reason)
    return Outcome(cid, attempt, result.update, result.logs)


def attempt_in_process(
    cfg: Config,
    cid: int,
    round_idx: int,
    attempt: int,
    global_state: State,
    train: Train,
) -> Outcome:
    """A client attempt run in this process and reviewed at once (embedded engine)."""
    try:
        result = train_client(cfg, cid, round_idx, attempt, train, global_state)
    except Exception as exc:  # noqa: BLE001 - one client must not stop the round
        return Outcome(cid, attempt, reason=f"raised {type(exc).__name__}: {exc}")
    return review(result, attempt, global_state, cfg.robustness.client_timeout)


@dataclass
class RoundResult:
    """The accepted outcomes of a round in schedule order, every rejection, and how many
    attempts the round took."""

    accepted: list[Outcome]
    rejected: list[dict[str, Any]]
    attempts: int

    @property
    def updates(self) -> list[ClientUpdate]:
        return [o.update for o in self.accepted if o.update is not None]

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [o.logs for o in self.accepted if o.logs is not None]


def drive_round(
    round_idx: int,
    selected: Sequence[int],
    robustness: RobustnessConfig,
    run_attempt: Callable[[int], list[Outcome]],
) -> RoundResult:
    """Run attempts of a round until ``min(robustness.min_clients, len(selected))``
    clients are accepted, at most ``robustness.max_round_retries + 1`` times.

    ``run_attempt(attempt)`` trains the round's clients and returns one outcome per
    client. Raises :class:`RoundFailedError` when every attempt falls short.
    """
    needed = min(robustness.min_clients, len(selected))
    rejected: list[dict[str, Any]] = []
    tries = robustness.max_round_retries + 1
    for attempt in range(tries):
        outcomes = run_attempt(attempt)
        failures = [o for o in outcomes if not o.accepted]
        rejected += [o.rejection() for o in failures]
        accepted = [o for o in outcomes if o.accepted]
        if len(accepted) >= needed:
            order = {cid: i for i, cid in enumerate(selected)}
            accepted.sort(key=lambda o: order.get(o.cid, len(order)))
            return RoundResult(accepted, rejected, attempt + 1)
    last = "; ".join(f"client {o.cid}: {o.reason}" for o in failures)
    raise RoundFailedError(
        f"round {round_idx + 1}: {len(accepted)} of {len(selected)} clients succeeded "
        f"(robustness.min_clients = {robustness.min_clients}) in each of {tries} "
        f"attempts; last failures: {last}"
    )


def participants(algorithm: Algorithm, federation: Federation, round_idx: int) -> list[int]:
    """The round's drawn clients (participants, or power-of-choice's candidates) that can
    take part in ``algorithm``."""
    return [
        cid
        for cid in federation.schedule[round_idx]
        if algorithm.participates(federation.modalities[cid])
    ]


# Local losses of the global model on the given clients (what power-of-choice asks).
LocalLosses = Callable[[list[int]], list[float]]


def aggregation_weights(updates: list[ClientUpdate], cfg: FederationConfig) -> list[ClientUpdate]:
    """The updates as the aggregate weighs them: by sample count, or equally under a
    selection rule that already drew its clients in proportion to their size
    (power-of-choice: Cho et al. 2022's pow-d update), so size does not count twice."""
    if not selection_of(cfg).equal_weights:
        return updates
    return [dataclasses.replace(u, num_samples=1) for u in updates]


def select_clients(
    cfg: FederationConfig,
    algorithm: Algorithm,
    federation: Federation,
    round_idx: int,
    local_losses: LocalLosses | None,
) -> tuple[list[int], dict[str, float] | None]:
    """The round's participants and, under a rule that reads them (power-of-choice),
    every drawn client's loss."""
    drawn = participants(algorithm, federation, round_idx)
    selection = selection_of(cfg)
    if not selection.needs_losses:
        return selection.choose(drawn, None, cfg), None
    if local_losses is None:
        raise RunFailure(
            f"federation.selection = {cfg.selection!r} needs the drawn clients' local losses"
        )
    losses = local_losses(drawn) if drawn else []
    chosen = selection.choose(drawn, losses, cfg)
    return chosen, {str(cid): round(loss, 6) for cid, loss in zip(drawn, losses)}


def aggregate_round(
    algorithm: Algorithm,
    global_state: State,
    result: RoundResult,
    cfg: Config,
    memory: ServerMemory,
    modalities: Sequence[str],
) -> tuple[State, ServerMemory]:
    """The new global state and server memory: the algorithm's aggregate, the server
    optimizer's step (``[server]``), the method's server update from the clients'
    reports, and the accepted clients' kept states. A round in which no client took
    part leaves all of it as is."""
    updates = result.updates
    if not updates:
        return global_state, memory
    averaged = algorithm.aggregate(
        global_state, aggregation_weights(updates, cfg.federation), cfg.robustness
    )
    state, optimizer = server_step(
        global_state, averaged, memory.optimizer, cfg.server, algorithm.updated_keys(updates)
    )
    clients = dict(memory.clients)
    for u in updates:
        if u.client_state:
            clients[u.cid] = u.client_state
    server = algorithm.server_update(memory.server, updates, modalities)
    return state, ServerMemory(server, clients, optimizer)


def round_record(
    round_idx: int,
    cfg: Config,
    selected: list[int],
    result: RoundResult,
    evaluation: dict[str, Any],
) -> RoundRecord:
    """One line of metrics.jsonl (no wall-clock values: identical runs give identical
    files); ``rejected`` and ``attempts`` are written only in rounds where a client failed."""
    logs = result.logs
    losses = [c["loss"] for c in logs]
    return RoundRecord(
        round=round_idx + 1,
        lr=lr_at(round_idx, cfg.train, cfg.rounds),
        clients=selected,
        train_loss=float(np.mean(losses)) if losses else None,
        val=evaluation["val"],
        test=evaluation["test"],
        client_logs=logs,
        rejected=result.rejected,
        attempts=result.attempts,
        test_missing=evaluation.get("test_missing"),
    )


def run_round(
    cfg: Config,
    algorithm: Algorithm,
    federation: Federation,
    start: tuple[State, ServerMemory],
    round_idx: int,
    run_attempt: Callable[[list[int], int], list[Outcome]],
    evaluate: Callable[[State], dict[str, Any]],
    timer: PhaseLog | None = None,
    local_losses: LocalLosses | None = None,
) -> tuple[State, ServerMemory, RoundRecord]:
    """A whole round from ``start`` (global state, server memory): client selection,
    attempts (``run_attempt(selected, attempt)``), aggregation, central evaluation;
    returns the new global state, server memory and the record."""
    global_state, memory = start
    selected, candidate_losses = select_clients(
        cfg.federation, algorithm, federation, round_idx, local_losses
    )
    result = drive_round(
        round_idx, selected, cfg.robustness, lambda attempt: run_attempt(selected, attempt)
    )
    state, memory = aggregate_round(
        algorithm, global_state, result, cfg, memory, federation.modalities
    )
    with logged(timer, "evaluate"):
        evaluation = evaluate(state)
    record = round_record(round_idx, cfg, selected, result, evaluation)
    record.candidate_losses = candidate_losses
    return state, memory, record
