"""The Flower transport of the round: the round's clients reached through Flower's
``Grid``.

:func:`fedcmi.engine.rounds.run_round` asks a transport for two things: one attempt of
the selected clients (their reviewed outcomes) and, for power-of-choice, the drawn
clients' local losses of the global model. Here each is one ``send_and_receive`` of
Flower messages to the nodes holding those clients; a reply becomes the same
:class:`~fedcmi.engine.rounds.ClientResult` the embedded engine's clients return and is
reviewed by the same :func:`~fedcmi.engine.rounds.review`. Selection, retries,
aggregation, evaluation, the record, checkpoints and Ctrl-C are the engine's
(:mod:`fedcmi.engine.loop`), not Flower's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import torch
from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedcmi.core.aggregation import ClientUpdate, ServerMemory, State
from fedcmi.engine.rounds import ClientResult, Outcome, review
from fedcmi.errors import RunFailure
from fedcmi.flower.common import from_record, scalar, to_record


class GridClients:
    """The federation's clients as Flower nodes (``node_of``: client id -> node id).

    ``run_config`` travels in every message's config (the run's TOML and the data
    folder, from which each node builds its workspace); ``timeout`` bounds each
    exchange (``robustness.client_timeout``, else an hour).
    """

    def __init__(
        self,
        grid: Grid,
        node_of: dict[int, int],
        run_config: dict[str, str],
        device: torch.device,
        timeout: float | None,
    ) -> None:
        self.grid = grid
        self.node_of = node_of
        self.cid_of_node = {node: cid for cid, node in node_of.items()}
        self.run_config = run_config
        self.device = device
        self.client_timeout = timeout
        self.timeout = timeout or 3600.0

    def attempt(
        self,
        selected: list[int],
        round_idx: int,
        attempt: int,
        state: State,
        memory: ServerMemory,
    ) -> list[Outcome]:
        """One attempt of the round's clients: one outcome per selected client (its
        reviewed update, the error it raised, or no reply in time)."""
        arrays, server_state = to_record(state), to_record(memory.server)
        messages = []
        for cid in selected:
            config: dict[str, str | int] = {
                **self.run_config,
                "round": round_idx,
                "cid": cid,
                "attempt": attempt,
            }
            content = RecordDict(
                {
                    "arrays": arrays,
                    "config": ConfigRecord(dict(config)),
                    "server-state": server_state,
                    "client-state": to_record(memory.clients.get(cid, {})),
                }
            )
            messages.append(
                Message(content=content, message_type="train", dst_node_id=self.node_of[cid])
            )
        replies = self.grid.send_and_receive(messages, timeout=self.timeout)
        return self._outcomes(replies, selected, attempt, state)

    def local_losses(self, cids: list[int], state: State) -> list[float]:
        """Each drawn client's local loss of the global model (power-of-choice)."""
        arrays = to_record(state)
        messages = [
            Message(
                content=RecordDict(
                    {"arrays": arrays, "config": ConfigRecord({**self.run_config, "cid": cid})}
                ),
                message_type="evaluate",
                dst_node_id=self.node_of[cid],
            )
            for cid in cids
        ]
        losses: dict[int, float] = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            cid = self.cid_of_node.get(reply.metadata.src_node_id, -1)
            if reply.has_error():
                raise RunFailure(f"client {cid} failed the local-loss query: {reply.error}")
            losses[cid] = float(scalar(reply.content.metric_records["metrics"], "loss"))
        missing = [cid for cid in cids if cid not in losses]
        if missing:
            raise RunFailure(f"no local loss from candidate client(s) {missing}")
        return [losses[cid] for cid in cids]

    def _outcomes(
        self, replies: Iterable[Message], selected: list[int], attempt: int, state: State
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for reply in replies:
            if reply.has_error():
                cid = self.cid_of_node.get(reply.metadata.src_node_id, -1)
                reason = f"raised on the client: {reply.error.reason}"
                outcomes.append(Outcome(cid, attempt, reason=reason))
                continue
            outcomes.append(review(self._result(reply), attempt, state, self.client_timeout))
        answered = {o.cid for o in outcomes}
        outcomes += [
            Outcome(cid, attempt, reason="no reply within client_timeout")
            for cid in selected
            if cid not in answered
        ]
        return outcomes

    def _result(self, reply: Message) -> ClientResult:
        info = reply.content.config_records["info"]
        metrics = reply.content.metric_records["metrics"]
        records = reply.content.array_records
        update = ClientUpdate(
            int(scalar(info, "cid")),
            str(scalar(info, "modalities")),
            int(scalar(metrics, "num-examples")),
            from_record(records["arrays"], self.device),
            report=from_record(records["report"], self.device),
            client_state=from_record(records["client-state"], self.device),
        )
        logs = json.loads(str(scalar(info, "logs")))
        seconds = float(scalar(metrics, "seconds"))
        return ClientResult(update, logs, seconds, bool(scalar(info, "slow")))
