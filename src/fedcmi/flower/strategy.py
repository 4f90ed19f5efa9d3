"""The Flower ``Strategy``: the embedded engine's round, over Flower messages.

Each round it sends the global state to the nodes holding the round's scheduled clients
(the same schedule as the embedded engine), turns the replies into the round's
outcomes with :func:`fedcmi.engine.rounds.review`, and lets
:func:`fedcmi.engine.rounds.drive_round` retry, :func:`~fedcmi.engine.rounds.aggregate_round`
aggregate and :func:`~fedcmi.engine.rounds.round_record` write the record, exactly as
the embedded engine does; evaluation is central with the same ``Evaluator`` and
``RunWriter`` writes the run folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedcmi.core.aggregation import ClientUpdate, ServerMemory, State
from fedcmi.engine.evaluation import Evaluator
from fedcmi.engine.rounds import (
    ClientResult,
    Outcome,
    RoundResult,
    aggregate_round,
    drive_round,
    review,
    round_record,
    select_clients,
)
from fedcmi.engine.run_folder import RoundRecord, RunWriter
from fedcmi.errors import RunFailure
from fedcmi.flower.common import Workspace, from_record, scalar, to_record


class FedCMIStrategy(Strategy):
    def __init__(
        self,
        workspace: Workspace,
        node_of: dict[int, int],
        evaluator: Evaluator,
        writer: RunWriter,
        global_state: State,
        rounds_done: int = 0,
        memory: ServerMemory | None = None,
    ) -> None:
        """``rounds_done``: rounds finished before this start (a resumed run); Flower's
        server round r is then the run's round ``rounds_done + r``. ``memory``: the
        server memory to start from (default: the method's initial one)."""
        self.ws = workspace
        self.algorithm = workspace.trainer.algorithm
        self.node_of = node_of
        self.cid_of_node = {node: cid for cid, node in node_of.items()}
        self.evaluator = evaluator
        self.writer = writer
        self.global_state = global_state
        self.memory = memory or workspace.trainer.initial_memory(global_state)
        self.offset = rounds_done
        self.selected: list[int] = []
        self.candidate_losses: dict[str, float] | None = None
        self.result = RoundResult([], [], 1)
        self.on_round: Callable[[RoundRecord], None] | None = None

    def summary(self) -> None:  # Flower logs this at the start
        pass

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        t = self.offset + server_round - 1
        self.selected, self.candidate_losses = select_clients(
            self.ws.cfg,
            self.algorithm,
            self.ws.federation,
            t,
            lambda cids: self._local_losses(grid, arrays, config, cids),
        )
        self._resend = (grid, arrays, config, t)  # what a retry of this round sends again
        return self._messages(arrays, config, t, attempt=0)

    def _local_losses(
        self, grid: Grid, arrays: ArrayRecord, config: ConfigRecord, cids: list[int]
    ) -> list[float]:
        """Power-of-choice's query: each candidate's local loss of the global model."""
        timeout = self.ws.cfg.robustness.client_timeout or 3600.0
        messages = [
            Message(
                content=RecordDict(
                    {"arrays": arrays, "config": ConfigRecord({**dict(config), "cid": cid})}
                ),
                message_type="evaluate",
                dst_node_id=self.node_of[cid],
            )
            for cid in cids
        ]
        losses: dict[int, float] = {}
        for reply in grid.send_and_receive(messages, timeout=timeout):
            cid = self.cid_of_node.get(reply.metadata.src_node_id, -1)
            if reply.has_error():
                raise RunFailure(f"client {cid} failed the local-loss query: {reply.error}")
            losses[cid] = float(scalar(reply.content.metric_records["metrics"], "loss"))
        missing = [cid for cid in cids if cid not in losses]
        if missing:
            raise RunFailure(f"no local loss from candidate client(s) {missing}")
        return [losses[cid] for cid in cids]

    def _messages(
        self, arrays: ArrayRecord, config: ConfigRecord, t: int, attempt: int
    ) -> list[Message]:
        messages = []
        server_state = to_record(self.memory.server)
        for cid in self.selected:
            record = ConfigRecord({**dict(config), "round": t, "cid": cid, "attempt": attempt})
            content = RecordDict(
                {
                    "arrays": arrays,
                    "config": record,
                    "server-state": server_state,
                    "client-state": to_record(self.memory.clients.get(cid, {})),
                }
            )
            messages.append(
                Message(content=content, message_type="train", dst_node_id=self.node_of[cid])
            )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The round driver of :mod:`fedcmi.engine.rounds` over the replies: the first
        attempt's replies are given, a retry sends the round again."""
        first = list(replies)
        rob = self.ws.cfg.robustness

        def run_attempt(attempt: int) -> list[Outcome]:
            if attempt == 0:
                return self._outcomes(first, attempt)
            grid, arrays, config, t = self._resend
            sent = self._messages(arrays, config, t, attempt)
            return self._outcomes(
                grid.send_and_receive(sent, timeout=rob.client_timeout or 3600.0), attempt
            )

        self.result = drive_round(self.offset + server_round - 1, self.selected, rob, run_attempt)
        if not self.result.accepted:
            return None, None
        self.global_state, self.memory = aggregate_round(
            self.algorithm,
            self.global_state,
            self.result,
            self.ws.cfg,
            self.memory,
            self.ws.federation.modalities,
        )
        losses = [logs["loss"] for logs in self.result.logs]
        return to_record(self.global_state), MetricRecord({"train-loss": sum(losses) / len(losses)})

    def _outcomes(self, replies: Iterable[Message], attempt: int) -> list[Outcome]:
        """One outcome per scheduled client: reviewed reply, error, or no reply."""
        outcomes: list[Outcome] = []
        timeout = self.ws.cfg.robustness.client_timeout
        for reply in replies:
            if reply.has_error():
                cid = self.cid_of_node.get(reply.metadata.src_node_id, -1)
                reason = f"raised on the client: {reply.error.reason}"
                outcomes.append(Outcome(cid, attempt, reason=reason))
                continue
            outcomes.append(review(self._result(reply), attempt, self.global_state, timeout))
        answered = {o.cid for o in outcomes}
        outcomes += [
            Outcome(cid, attempt, reason="no reply within client_timeout")
            for cid in self.selected
            if cid not in answered
        ]
        return outcomes

    def _result(self, reply: Message) -> ClientResult:
        info = reply.content.config_records["info"]
        metrics = reply.content.metric_records["metrics"]
        state = from_record(reply.content.array_records["arrays"], self.ws.device)
        n = int(scalar(metrics, "num-examples"))
        cid, modalities = int(scalar(info, "cid")), str(scalar(info, "modalities"))
        records = reply.content.array_records
        update = ClientUpdate(
            cid,
            modalities,
            n,
            state,
            report=from_record(records["report"], self.ws.device),
            client_state=from_record(records["client-state"], self.ws.device),
        )
        logs = json.loads(str(scalar(info, "logs")))
        seconds = float(scalar(metrics, "seconds"))
        return ClientResult(update, logs, seconds, bool(scalar(info, "slow")))

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []  # evaluation is central, on the server's val and test splits

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return None

    def evaluate_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        evaluation = self.evaluator(self.global_state)
        t = self.offset + server_round - 1
        record = round_record(t, self.ws.cfg, self.selected, self.result, evaluation)
        record.candidate_losses = self.candidate_losses
        self.writer.record(record, self.global_state, self.memory)  # and the checkpoint
        if self.on_round is not None:
            self.on_round(record)
        scalars: dict[str, Any] = {
            f"{split}-{k}": v
            for split in ("val", "test")
            for k, v in evaluation[split].items()
            if isinstance(v, float)
        }
        return MetricRecord(scalars)
