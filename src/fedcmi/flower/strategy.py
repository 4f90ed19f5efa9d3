"""The Flower ``Strategy``: the embedded engine's round, over Flower messages.

Each round it sends the global state to the nodes holding the round's scheduled clients
(the same schedule as the embedded engine), rebuilds ``ClientUpdate`` objects from the
replies in schedule order, aggregates them with the algorithm's own ``aggregate`` and
evaluates centrally with the same ``Evaluator``; ``RunWriter`` writes the run folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedcmi.aggregation import ClientUpdate
from fedcmi.engine import Evaluator, participants, round_record
from fedcmi.flower.common import from_record, to_record
from fedcmi.runner import RunWriter


class ClientFailedError(RuntimeError):
    """A client replied with an error."""


class FedCMIStrategy(Strategy):
    def __init__(
        self,
        workspace,
        node_of: dict[int, int],
        evaluator: Evaluator,
        writer: RunWriter,
        global_state: dict,
    ) -> None:
        self.ws = workspace
        self.algorithm = workspace.trainer.algorithm
        self.node_of = node_of
        self.evaluator = evaluator
        self.writer = writer
        self.global_state = global_state
        self.round_logs: list[dict[str, Any]] = []
        self.selected: list[int] = []

    def summary(self) -> None:  # Flower logs this at the start
        pass

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        t = server_round - 1
        self.selected = participants(self.algorithm, self.ws.federation, t)
        messages = []
        for cid in self.selected:
            content = RecordDict(
                {
                    "arrays": arrays,
                    "config": ConfigRecord({**dict(config), "round": t, "cid": cid}),
                }
            )
            messages.append(
                Message(content=content, message_type="train", dst_node_id=self.node_of[cid])
            )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        by_cid: dict[int, tuple[ClientUpdate, dict[str, Any]]] = {}
        for reply in replies:
            if reply.has_error():
                raise ClientFailedError(f"round {server_round}: a client failed: {reply.error}")
            info = reply.content["info"]
            cid = int(info["cid"])
            state = from_record(reply.content["arrays"], self.ws.device)
            n = int(reply.content["metrics"]["num-examples"])
            by_cid[cid] = (
                ClientUpdate(cid, str(info["modalities"]), n, state),
                json.loads(str(info["logs"])),
            )
        missing = [c for c in self.selected if c not in by_cid]
        if missing:
            raise ClientFailedError(f"round {server_round}: no reply from clients {missing}")
        ordered = [by_cid[c] for c in self.selected]  # schedule order, as the embedded engine
        self.round_logs = [logs for _, logs in ordered]
        if not ordered:
            return None, None
        self.global_state = self.algorithm.aggregate(self.global_state, [u for u, _ in ordered])
        losses = [logs["loss"] for logs in self.round_logs]
        return to_record(self.global_state), MetricRecord({"train-loss": sum(losses) / len(losses)})

    def configure_evaluate(self, server_round, arrays, config, grid) -> Iterable[Message]:
        return []  # evaluation is central, on the server's val and test splits

    def aggregate_evaluate(self, server_round, replies) -> MetricRecord | None:
        return None

    def evaluate_round(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        evaluation = self.evaluator(self.global_state)
        record = round_record(
            server_round - 1, self.ws.cfg, self.selected, self.round_logs, evaluation
        )
        self.writer.record(record)
        if self.on_round is not None:
            self.on_round(record)
        scalars = {
            f"{split}-{k}": v
            for split in ("val", "test")
            for k, v in evaluation[split].items()
            if isinstance(v, float)
        }
        return MetricRecord(scalars)

    on_round = None
