"""``fedcmi bench speed``: one FedCMI round three ways, as ratios from one run.

1. reference: how research code trains: fp32, clients one after another, a per-sample
   ``Dataset`` + ``DataLoader`` (host tensors, moved to the device per batch), the
   global model deep-copied for every client;
2. default: this engine (tensors on the device, index batching, one reused model);
3. fastest: the engine with ``precision = "bf16"`` and ``channels_last`` (``compile``
   too with ``--compile``).

Workloads: ``crema-shaped`` (random tensors with CREMA-D's shapes, two ResNet-18s,
5 clients x 335 samples, ``--scale`` shrinks the client size for CPUs) and
``av-digits`` (the default preset). Each line gives samples/s, seconds per round, peak
memory and the share of round time spent outside forward/backward/optimizer steps.
"""

from __future__ import annotations

import copy
import resource
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from fedcmi.config import Config, load_config
from fedcmi.data import load_dataset
from fedcmi.data.base import MultimodalData, Split
from fedcmi.engine import EmbeddedEngine, lr_at, seed_client_rngs, select_device
from fedcmi.federation import build_federation
from fedcmi.training import Batch, ClientData, RoundContext, batch_indices


@dataclass
class Workload:
    name: str
    cfg: Config
    data: MultimodalData


def crema_shaped(scale: float, epochs: int, seed: int = 0) -> Workload:
    per_client = max(4, int(round(335 * scale)))
    n = 5 * per_client + 12
    gen = torch.Generator().manual_seed(seed)
    x_a = torch.randn(n, 257, 299, generator=gen)
    x_v = torch.randint(0, 256, (n, 2, 224, 224, 3), generator=gen, dtype=torch.uint8)
    y = torch.arange(n) % 6
    train = Split(x_a[12:], x_v[12:], y[12:])
    held = Split(x_a[:12], x_v[:12], y[:12])
    data = MultimodalData(
        "crema-shaped",
        train,
        held,
        held,
        [str(c) for c in range(6)],
        ("audio", "visual"),
        ("resnet18-audio", "resnet18-frames"),
    )
    cfg = load_config(
        None,
        [
            "data.name=synthetic",
            "rounds=1",
            "federation.num_clients=5",
            "federation.clients_per_round=5",
            "federation.alpha=1000.0",
            "federation.min_client_size=2",
            f"train.local_epochs={epochs}",
            "train.batch_size=64",
            "train.lr=0.001",
            "model.encoder_a=resnet18-audio",
            "model.encoder_v=resnet18-frames",
            "model.feature_dim=512",
            "eval.batch_size=64",
        ],
    )
    return Workload("crema-shaped", cfg, data)


def av_digits() -> Workload:
    cfg = load_config("configs/av-digits-fedcmi.toml", ["rounds=1"])
    return Workload("av-digits", cfg, load_dataset(cfg.data.name, cfg.data.params))


class _PerSample(Dataset):
    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        return self.split.x_a[i], self.split.x_v[i], self.split.y[i]


def _loader_batches(host: Split, device: torch.device):
    """Batches from a per-sample DataLoader in the engine's batch order."""

    def batches(client: ClientData, ctx: RoundContext):
        for _ in range(ctx.train.local_epochs):
            order = batch_indices(len(client), ctx.train.batch_size, ctx.generator)
            loader = DataLoader(_PerSample(host), batch_sampler=[o.tolist() for o in order])
            for x_a, x_v, y in loader:
                yield Batch(x_a.to(device), x_v.to(device), y.to(device))

    return batches


def reference_round(
    engine: EmbeddedEngine, host_clients: list[Split], timer: dict, round_idx: int = 0
) -> list:
    """One round the reference way; returns the client states (for the equality test)."""
    cfg, algorithm = engine.cfg, engine.algorithm
    global_model = copy.deepcopy(engine.trainer.model)
    global_model.load_state_dict(engine.global_state)
    states = []
    for cid in engine.federation.schedule[round_idx]:
        model = copy.deepcopy(global_model)  # as the reference code does, per client
        client = engine.clients[cid]
        ctx = RoundContext(
            round=round_idx,
            lr=lr_at(round_idx, cfg.train, cfg.rounds),
            train=cfg.train,
            generator=seed_client_rngs(cfg.seed, round_idx, cid, model),
            num_classes=engine.trainer.num_classes,
            batches=_loader_batches(host_clients[cid], engine.trainer.device),
            timer=timer,
        )
        algorithm.local_train(model, engine.global_state, client, ctx)
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    return states


def _measure(fn, device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process peak RSS
    return time.perf_counter() - started, peak


def bench_workload(
    work: Workload, device: torch.device, compile_: bool = False
) -> list[dict[str, Any]]:
    cfg = replace(work.cfg, engine=replace(work.cfg.engine, device=str(device)))
    fed = build_federation(work.data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
    samples = sum(len(fed.client_indices[c]) for c in fed.schedule[0]) * cfg.train.local_epochs
    rows = []
    # Concurrent clients on a GPU only: on a CPU the cores are already busy in each op.
    # (Phase times then add up across threads, so the outside share reads 0 there.)
    concurrency = cfg.federation.clients_per_round if device.type == "cuda" else 1
    variants = [
        ("reference", cfg, True),
        ("default", cfg, False),
        (
            "fastest",
            replace(
                cfg,
                engine=replace(
                    cfg.engine,
                    precision="bf16",
                    channels_last=True,
                    compile=compile_,
                    concurrent_clients=concurrency,
                ),
            ),
            False,
        ),
    ]
    for label, variant_cfg, reference in variants:
        engine = EmbeddedEngine(variant_cfg, work.data, fed, device)
        timer: dict[str, float] = {}
        if reference:
            host = [work.data.train.subset(torch.as_tensor(idx)) for idx in fed.client_indices]
            seconds, peak = _measure(
                lambda e=engine, h=host, t=timer: reference_round(e, h, t), device
            )
        else:
            if variant_cfg.engine.compile:
                _engine_round(engine, None)  # compile outside the timed round
            seconds, peak = _measure(lambda e=engine, t=timer: _engine_round(e, t), device)
        inside = sum(timer.values())
        rows.append(
            {
                "workload": work.name,
                "variant": label,
                "device": str(device),
                "samples_per_second": round(samples / seconds, 1),
                "seconds_per_round": round(seconds, 3),
                "peak_memory_gib": round(peak, 2),
                "outside_share": round(max(0.0, 1 - inside / seconds), 3),
            }
        )
    base = rows[0]["seconds_per_round"]
    for row in rows:
        row["speedup_vs_reference"] = round(base / row["seconds_per_round"], 2)
    return rows


def _engine_round(engine: EmbeddedEngine, timer: dict | None) -> None:
    for cid in engine.federation.schedule[0]:
        engine.trainer.train(engine.clients[cid], engine.global_state, 0, timer=timer)


def bench_speed(workloads: list[str], scale: float, epochs: int, compile_: bool) -> list[dict]:
    device = select_device("auto")
    rows: list[dict] = []
    for name in workloads:
        work = crema_shaped(scale, epochs) if name == "crema-shaped" else av_digits()
        rows += bench_workload(work, device, compile_)
    return rows
