"""``ClientApp`` and ``ServerApp`` of FedCMI on Flower.

Every node runs one client of the federation: its ``node_config`` gives
``partition-id`` (the client id), ``num-partitions`` (must equal
``federation.num_clients``) and optionally ``data-dir`` (the dataset cache folder on that
machine). Each node builds the dataset and the federation from the run config itself
(they are deterministic given the seed) and trains its own partition. The ServerApp
reads ``config`` (a TOML path) or ``config-toml`` (its text) and ``out`` (the run folder)
from the run config.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedcmi.core.aggregation import ClientUpdate, ServerMemory, State
from fedcmi.core.training import ClientData
from fedcmi.engine.embedded import federation_client
from fedcmi.engine.evaluation import Evaluator
from fedcmi.engine.loop import RunState, run_rounds
from fedcmi.engine.quality import describe_quality
from fedcmi.engine.rounds import run_round, train_client
from fedcmi.engine.run_folder import RoundRecord, RunFolder, RunWriter, Summary, to_device
from fedcmi.errors import InputError, RunFailure
from fedcmi.flower.common import (
    Workspace,
    config_from_toml,
    from_record,
    scalar,
    to_record,
    workspace,
)
from fedcmi.flower.grid_clients import GridClients

client_app = ClientApp()
server_app = ServerApp()
NODE_WAIT_SECONDS = 300


@client_app.query()
def query(msg: Message, context: Context) -> Message:
    """Tell the server which partition (client id) this node holds."""
    pid = int(scalar(context.node_config, "partition-id"))
    return Message(RecordDict({"node": ConfigRecord({"partition-id": pid})}), reply_to=msg)


def node_client(msg: Message, context: Context) -> tuple[Workspace, ClientData, int]:
    """This node's workspace, its client's data and the round asked for; the node must
    hold the client the message names."""
    config = msg.content.config_records["config"]
    pid = int(scalar(context.node_config, "partition-id"))
    cid = int(scalar(config, "cid"))
    if cid != pid:
        raise InputError(f"node holds partition {pid} but was asked about client {cid}")
    data_dir = context.node_config.get("data-dir") or config.get("data-dir")
    ws = workspace(str(config["config-toml"]), str(data_dir) if data_dir else None)
    n_parts = int(scalar(context.node_config, "num-partitions", ws.cfg.federation.num_clients))
    if n_parts != ws.cfg.federation.num_clients:
        raise InputError(
            f"num-partitions = {n_parts} but federation.num_clients = "
            f"{ws.cfg.federation.num_clients}"
        )
    client = federation_client(ws.federation, ws.data.client_train(pid), pid, ws.device)
    return ws, client, int(scalar(config, "round", 0))


@client_app.evaluate()
def local_loss(msg: Message, context: Context) -> Message:
    """Power-of-choice's query: the global model's local loss on this node's client."""
    ws, client, _ = node_client(msg, context)
    global_state = from_record(msg.content.array_records["arrays"], ws.device)
    loss = ws.trainer.local_loss(client, global_state)
    return Message(RecordDict({"metrics": MetricRecord({"loss": loss})}), reply_to=msg)


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    config = msg.content.config_records["config"]
    ws, client, round_idx = node_client(msg, context)
    pid = client.cid
    records = msg.content.array_records
    global_state = from_record(records["arrays"], ws.device)
    memory = ServerMemory(
        from_record(records["server-state"], ws.device),
        {pid: from_record(records["client-state"], ws.device)},
    )
    attempt = int(scalar(config, "attempt", 0))

    def local(
        data: Callable[[ClientData, int], ClientData],
    ) -> tuple[ClientUpdate, dict[str, Any]]:
        return ws.trainer.train(
            data(client, ws.trainer.num_classes), global_state, round_idx, memory=memory
        )

    result = train_client(
        ws.cfg, pid, round_idx, attempt, local, global_state, sleep_when_slow=True
    )
    update, logs = result.update, result.logs
    done = context.state.metric_records.get("fedcmi")  # per-client state across rounds
    rounds_trained = int(scalar(done, "rounds-trained")) + 1 if done is not None else 1
    context.state.metric_records["fedcmi"] = MetricRecord(
        {"rounds-trained": rounds_trained, "last-round": round_idx}
    )
    content = RecordDict(
        {
            "arrays": to_record(update.state),
            "report": to_record(update.report),
            "client-state": to_record(update.client_state),
            "metrics": MetricRecord(
                {
                    "num-examples": update.num_samples,
                    "loss": float(logs["loss"]),
                    "seconds": result.seconds,
                }
            ),
            "info": ConfigRecord(
                {
                    "cid": pid,
                    "modalities": update.modalities,
                    "logs": json.dumps(logs),
                    "slow": result.slow,
                }
            ),
        }
    )
    return Message(content, reply_to=msg)


def discover_nodes(
    grid: Grid, num_clients: int, timeout: float = NODE_WAIT_SECONDS
) -> dict[int, int]:
    """Map client id -> node id by asking every node for its partition-id."""
    deadline = time.monotonic() + timeout
    node_ids = list(grid.get_node_ids())
    while len(node_ids) < num_clients:
        if time.monotonic() > deadline:
            raise RunFailure(f"only {len(node_ids)} of {num_clients} SuperNodes connected")
        time.sleep(1.0)
        node_ids = list(grid.get_node_ids())
    queries = [Message(RecordDict(), message_type="query", dst_node_id=n) for n in node_ids]
    node_of: dict[int, int] = {}
    for reply in grid.send_and_receive(queries, timeout=timeout):
        if reply.has_error():
            raise RunFailure(f"node {reply.metadata.src_node_id} failed the query: {reply.error}")
        pid = int(scalar(reply.content.config_records["node"], "partition-id"))
        if pid in node_of:
            raise RunFailure(f"two nodes claim partition-id {pid}")
        node_of[pid] = reply.metadata.src_node_id
    missing = sorted(set(range(num_clients)) - set(node_of))
    if missing:
        raise RunFailure(f"no node holds partition(s) {missing}")
    return node_of


def serve(
    grid: Grid,
    config_toml: str,
    out: str | Path,
    data_dir: str | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    resume: bool = False,
    on_start: Callable[[list[dict[str, Any]]], None] | None = None,
) -> Summary:
    """The server side of a run: the same run folder and checkpoints as the embedded
    engine. With ``resume``, ``out`` is an interrupted run continued from its latest
    checkpoint (its metrics lines after that checkpoint are recomputed identically).
    ``on_start``: as in :func:`fedcmi.engine.runner.run_experiment`."""
    cfg = config_from_toml(config_toml)
    ws = workspace(config_toml, data_dir)
    if resume:
        writer, resumed = RunWriter.resume(out, cfg)
        start = {k: v.to(ws.device) for k, v in resumed.global_state.items()}
        done, memory = resumed.rounds_done, to_device(resumed.memory, ws.device)
    else:
        writer, done = RunWriter(out, cfg), 0
        start = ws.initial_state  # the seeded init, as in the embedded engine
        memory = ws.trainer.initial_memory(start)
    evaluator = Evaluator(cfg.eval, ws.data, ws.trainer.model, ws.device)
    node_of = discover_nodes(grid, cfg.federation.num_clients)
    if not resume:
        quality = describe_quality(ws.setup())
        writer.start(ws.data, ws.federation, quality)
        if quality and on_start is not None:
            on_start(quality)
    clients = GridClients(
        grid,
        node_of,
        {"config-toml": config_toml, "data-dir": data_dir or ""},
        ws.device,
        cfg.robustness.client_timeout,
    )

    def step(t: int, state: State, memory: ServerMemory) -> tuple[State, ServerMemory, RoundRecord]:
        return run_round(
            cfg,
            ws.trainer.algorithm,
            ws.federation,
            (state, memory),
            t,
            lambda selected, attempt: clients.attempt(selected, t, attempt, state, memory),
            evaluator,
            local_losses=lambda cids: clients.local_losses(cids, state),
        )

    end = run_rounds(
        cfg.rounds,
        writer,
        RunState(start, memory, done),
        step,
        on_round,
        "fedcmi run --engine flower --resume",
    )
    probes = evaluator.probes(end.global_state)
    return writer.finish(end.global_state, ws.device, ws.precision, "flower", probes)


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    run_config = context.run_config
    data_dir = str(run_config.get("data-dir") or "") or None
    resume = str(run_config.get("resume") or "")
    if resume:  # an interrupted run folder: its own config, continued in place
        folder = RunFolder(resume)
        serve(grid, folder.config_text(), folder.path, data_dir, resume=True)
        return
    if "config-toml" in run_config and run_config["config-toml"]:
        text = str(run_config["config-toml"])
    else:
        text = config_text(str(run_config.get("config", "av-digits-fedcmi")))
    out = Path(str(run_config.get("out", "runs/flower")))
    if out.exists() and any(out.iterdir()):  # never overwrite: a fresh, timestamped folder
        out = out.with_name(f"{out.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    serve(grid, text, out, data_dir)


def config_text(path: str, overrides: list[str] | None = None) -> str:
    """A resolved config's TOML text (what travels to every node)."""
    from fedcmi.config import find_preset, load_config

    return load_config(find_preset(path), overrides).to_toml()
