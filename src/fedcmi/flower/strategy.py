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

from fedcmi.core.aggregation import ClientUpdate
from fedcmi.engine.embedded import Evaluator, RoundFailedError, participants, round_record
from fedcmi.engine.faults import validate_update
from fedcmi.flower.common import from_record, to_record
from fedcmi.engine.runner import RunWriter


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
        self.rejected: list[dict[str, Any]] = []
        self.selected: list[int] = []
        self.attempts = 1

    def summary(self) -> None:  # Flower logs this at the start
        pass

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        t = server_round - 1
        self.selected = participants(self.algorithm, self.ws.federation, t)
        self._retry = (grid, arrays, config, t)  # what a retry of this round re-sends
        return self._messages(arrays, config, t, attempt=0)

    def _messages(
        self, arrays: ArrayRecord, config: ConfigRecord, t: int, attempt: int
    ) -> list[Message]:
        messages = []
        for cid in self.selected:
            record = ConfigRecord({**dict(config), "round": t, "cid": cid, "attempt": attempt})
            content = RecordDict({"arrays": arrays, "config": record})
            messages.append(
                Message(content=content, message_type="train", dst_node_id=self.node_of[cid])
            )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Accept the valid replies; a client that raised, sent an invalid update or did
        not answer within ``robustness.client_timeout`` is recorded and left out. With
        fewer than ``robustness.min_clients`` accepted, the round is sent again (up to
        ``robustness.max_round_retries`` times) before the run stops."""
        rob = self.ws.cfg.robustness
        needed = min(rob.min_clients, len(self.selected))
        self.rejected = []
        for attempt in range(rob.max_round_retries + 1):
            if attempt:
                grid, arrays, config, t = self._retry
                timeout = rob.client_timeout or 3600.0
                replies = grid.send_and_receive(
                    self._messages(arrays, config, t, attempt), timeout=timeout
                )
            by_cid = self._accept(replies, attempt)
            if len(by_cid) >= needed:
                break
        else:
            raise RoundFailedError(
                f"round {server_round}: {len(by_cid)} of {len(self.selected)} clients "
                f"succeeded (robustness.min_clients = {needed}) in each of "
                f"{rob.max_round_retries + 1} attempts; failures: {self.rejected}"
            )
        self.attempts = attempt + 1
        ordered = [by_cid[c] for c in self.selected if c in by_cid]  # schedule order
        self.round_logs = [logs for _, logs in ordered]
        if not ordered:
            return None, None
        self.global_state = self.algorithm.aggregate(
            self.global_state, [u for u, _ in ordered], rob
        )
        losses = [logs["loss"] for logs in self.round_logs]
        return to_record(self.global_state), MetricRecord({"train-loss": sum(losses) / len(losses)})

    def _accept(
        self, replies: Iterable[Message], attempt: int
    ) -> dict[int, tuple[ClientUpdate, dict[str, Any]]]:
        by_cid: dict[int, tuple[ClientUpdate, dict[str, Any]]] = {}
        rejected: list[dict[str, Any]] = []
        cid_of_node = {node: cid for cid, node in self.node_of.items()}
        for reply in replies:
            if reply.has_error():
                cid = cid_of_node.get(reply.metadata.src_node_id, -1)
                reason = f"raised on the client: {reply.error.reason}"
                rejected.append({"cid": cid, "attempt": attempt, "reason": reason})
                continue
            info = reply.content["info"]
            cid = int(info["cid"])
            state = from_record(reply.content["arrays"], self.ws.device)
            n = int(reply.content["metrics"]["num-examples"])
            update = ClientUpdate(cid, str(info["modalities"]), n, state)
            reason = validate_update(update, self.global_state)
            if reason is not None:
                rejected.append({"cid": cid, "attempt": attempt, "reason": reason})
                continue
            by_cid[cid] = (update, json.loads(str(info["logs"])))
        answered = set(by_cid) | {r["cid"] for r in rejected}
        rejected += [
            {"cid": c, "attempt": attempt, "reason": "no reply within client_timeout"}
            for c in self.selected
            if c not in answered
        ]
        self.rejected += rejected
        return by_cid

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
        if self.rejected:
            record["rejected"] = self.rejected
            record["attempts"] = self.attempts
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
