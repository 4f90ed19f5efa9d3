"""``fedcmi bench speed``: one FedCMI round several ways, as ratios from one run.

1. reference: how research code trains: fp32, clients one after another, a per-sample
   ``Dataset`` + ``DataLoader`` (host tensors, moved to the device per batch), the
   global model deep-copied for every client;
2. default: this engine (tensors on the device, index batching, one reused model);
3. tuned: the engine with ``precision = "auto"`` (bf16 only where the hardware runs it
   natively, see :func:`fedcmi.engine.speed.resolve_precision`), ``channels_last``,
   ``deterministic = false`` (cuDNN autotuning) and, on a GPU, the round's clients
   trained concurrently;
4. tuned+compile (with ``--compile``): the same plus ``torch.compile``.

The benchmarked round is FedCMI's first round after its warm-up round, so the global
teacher, the class-wise temperatures and the infiltration loss all run. "Seconds per
round" is the clients' local training plus aggregation (samples/s = local samples x
epochs over it); the evaluation of the val and test splits that follows is reported on
its own (``evaluation_seconds``; ``seconds_with_evaluation`` is the whole round). Before
the timed round every variant trains each of its model replicas for one local epoch
and runs one one-epoch round, untimed (CUDA start-up, cuDNN, allocator, compilation).

Workloads: ``crema-shaped`` (random tensors with CREMA-D's shapes and stored dtypes,
float16 spectrograms and uint8 frames, two ResNet-18s, 5 clients x 335 samples, val and
test of 744 clips each; ``--scale`` shrinks them for CPUs) and ``av-digits`` (the
default preset). Each row gives samples/s, seconds per round, peak memory and the share
of the round (training and aggregation) in which no client was in a forward pass (the
teacher's and the prototype/temperature passes included), backward pass or optimizer
step. Phase intervals come from CUDA events on each client's stream, so nothing is
stalled to measure them, and overlapping clients are counted once; ``phase_seconds``
gives each phase's summed time.
"""

from __future__ import annotations

import copy
import gc
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from fedcmi.config import Config, TrainConfig, find_preset, load_config
from fedcmi.core.aggregation import ClientUpdate, State
from fedcmi.core.phases import PhaseLog, logged
from fedcmi.core.training import Batch, ClientData, RoundContext, batch_indices
from fedcmi.data import load_dataset
from fedcmi.data.base import MultimodalData, Split
from fedcmi.engine.embedded import EmbeddedEngine, clone_state
from fedcmi.engine.federation import build_federation
from fedcmi.engine.rounds import participants
from fedcmi.engine.setup import assemble, select_device
from fedcmi.engine.speed import configure_torch

BENCH_ROUND = 1  # 0-based: the round after FedCMI's warm-up round (warmup_rounds = 1)


@dataclass
class Workload:
    name: str
    cfg: Config
    data: MultimodalData


def crema_shaped(scale: float, epochs: int, seed: int = 0) -> Workload:
    """5 clients x 335 x ``scale`` training clips; val and test of 744 x ``scale`` clips
    each (CREMA-D's 10 % splits), so the round's evaluation costs what it would there."""
    per_client = max(4, int(round(335 * scale)))
    held = max(6, int(round(744 * scale)))
    n = 5 * per_client + 2 * held
    gen = torch.Generator().manual_seed(seed)
    x_a = torch.randn(n, 257, 299, generator=gen).half()  # stored as the cache stores it
    x_v = torch.randint(0, 256, (n, 2, 224, 224, 3), generator=gen, dtype=torch.uint8)
    y = torch.arange(n) % 6
    split = Split(x_a, x_v, y)
    data = MultimodalData(
        "crema-shaped",
        split.subset(torch.arange(2 * held, n)),
        split.subset(torch.arange(held)),
        split.subset(torch.arange(held, 2 * held)),
        [str(c) for c in range(6)],
        ("audio", "visual"),
        ("resnet18-audio", "resnet18-frames"),
    )
    cfg = load_config(
        None,
        [
            "data.name=synthetic",
            f"rounds={BENCH_ROUND + 1}",
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
    cfg = load_config(find_preset("av-digits-fedcmi"), [f"rounds={BENCH_ROUND + 1}"])
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
    engine: EmbeddedEngine,
    host_clients: list[Split],
    round_idx: int = BENCH_ROUND,
    timer: PhaseLog | None = None,
    train: TrainConfig | None = None,
) -> list[ClientUpdate]:
    """The round's client training the reference way: a fresh deep copy of the global
    model per client and a per-sample loader, through the engine's own client training."""
    global_model = copy.deepcopy(engine.trainer.model)
    global_model.load_state_dict(engine.global_state)
    updates = []
    for cid in participants(engine.algorithm, engine.federation, round_idx):
        update, _ = engine.trainer.train(
            engine.clients[cid],
            engine.global_state,
            round_idx,
            timer,
            train,
            batches=_loader_batches(host_clients[cid], engine.trainer.device),
            model=copy.deepcopy(global_model),  # as the reference code does, per client
        )
        updates.append(update)
    return updates


MAIN_VARIANTS = ("reference", "default", "tuned")


def variants(cfg: Config, device: torch.device) -> dict[str, Config]:
    """Each variant's config by label; "reference" runs the reference-style loop."""
    # Concurrent clients on a GPU only: on a CPU the cores are already busy in each op.
    concurrency = cfg.federation.clients_per_round if device.type == "cuda" else 1
    fast = replace(
        cfg.engine,
        precision="auto",
        channels_last=True,
        concurrent_clients=concurrency,
        deterministic=False,
    )
    return {
        "reference": cfg,
        "default": cfg,
        "tuned": replace(cfg, engine=fast),
        "tuned+compile": replace(cfg, engine=replace(fast, compile=True)),
    }


class VariantRun:
    """One variant's engine and its round, run from the same starting state each time."""

    def __init__(self, label: str, cfg: Config, work: Workload, fed, device) -> None:
        self.label, self.device, self.workload = label, device, work.name
        configure_torch(cfg.engine)  # determinism and cuDNN autotuning, as `fedcmi run` sets them
        self.engine = EmbeddedEngine(assemble(cfg, work.data, fed, device))
        self.start: State = clone_state(self.engine.global_state)
        self.host = None
        if label == "reference":
            self.host = [work.data.train.subset(torch.as_tensor(i)) for i in fed.client_indices]

    def close(self) -> None:
        """Free the variant's threads and device memory before the next one is built, so
        each row's peak memory is its own."""
        self.engine.close()
        del self.engine
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def round(self, log: PhaseLog | None = None, train: TrainConfig | None = None) -> None:
        """One end-to-end round: client training, aggregation, evaluation (``train``
        replaces the local-training config, e.g. one epoch for the warm-up)."""
        engine = self.engine
        engine.global_state = self.start
        if self.host is None:
            engine.phase_log = log
            engine.run_round(BENCH_ROUND, train)
            return
        updates = reference_round(engine, self.host, BENCH_ROUND, log, train)
        state = engine.algorithm.aggregate(engine.global_state, updates, engine.cfg.robustness)
        with logged(log, "evaluate"):
            engine.evaluate(state)

    def warm_up(self) -> float:
        """Untimed: one local epoch on every model replica, then a one-epoch round."""
        started = time.perf_counter()
        one_epoch = replace(self.engine.cfg.train, local_epochs=1)
        if self.host is None:
            first = self.engine.clients[self.engine.federation.schedule[BENCH_ROUND][0]]
            for trainer in self.engine.trainers:  # compiles each replica, one at a time
                trainer.train(first, self.start, BENCH_ROUND, train=one_epoch)
        self.round(train=one_epoch)
        _sync(self.device)
        return time.perf_counter() - started


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _measure(fn: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """Wall seconds of ``fn`` and peak memory in GiB (GPU: peak allocated during ``fn``;
    CPU: the process's peak RSS so far)."""
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    fn()
    _sync(device)
    seconds = time.perf_counter() - started
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return seconds, peak


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def bench_workload(
    work: Workload,
    device: torch.device,
    labels: tuple[str, ...] = MAIN_VARIANTS,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    reference_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """The rows of the ``labels`` variants on one workload, each passed to ``on_row`` as
    soon as it is measured. Ratios are to ``reference_seconds``, else to the first row."""
    cfg = replace(work.cfg, engine=replace(work.cfg.engine, device=str(device)))
    fed = build_federation(work.data.train.y.numpy(), cfg.federation, cfg.rounds, cfg.seed)
    configs = variants(cfg, device)
    rows: list[dict[str, Any]] = []
    with torch_settings_restored():
        for label in labels:
            run = VariantRun(label, configs[label], work, fed, device)
            row = bench_variant(run)
            run.close()
            del run
            base = reference_seconds or (rows[0] if rows else row)["seconds_per_round"]
            row["speedup_vs_reference"] = round(base / row["seconds_per_round"], 2)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


@contextmanager
def torch_settings_restored() -> Iterator[None]:
    """Variants change process-wide settings (determinism, cuDNN autotuning); undo them."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark


def bench_variant(run: VariantRun) -> dict[str, Any]:
    """One row: warm the variant up, then time one end-to-end round."""
    engine = run.engine
    cfg, fed = engine.cfg, engine.federation
    selected = participants(engine.algorithm, fed, BENCH_ROUND)
    samples = sum(len(fed.client_indices[c]) for c in selected) * cfg.train.local_epochs
    chosen = engine.run.precision
    warm = run.warm_up()
    log = PhaseLog(run.device)
    wall, peak = _measure(lambda: run.round(log), run.device)
    phases = log.seconds()
    # Evaluation runs alone after aggregation: the training round is the rest.
    seconds = wall - phases["evaluate"]
    training = log.busy_seconds(("forward", "backward", "step"))
    return {
        "workload": run.workload,
        "variant": run.label,
        "device": device_name(run.device),
        "torch": torch.__version__,
        "clients": len(selected),
        "local_epochs": cfg.train.local_epochs,
        "samples": samples,
        "precision": cfg.engine.precision,
        "precision_used": chosen.name,
        "precision_reason": chosen.reason,
        "channels_last": cfg.engine.channels_last,
        "compile": cfg.engine.compile,
        "concurrent_clients": cfg.engine.concurrent_clients,
        "deterministic": cfg.engine.deterministic,
        "samples_per_second": round(samples / seconds, 1),
        "seconds_per_round": round(seconds, 3),
        "evaluation_seconds": round(phases["evaluate"], 3),
        "seconds_with_evaluation": round(wall, 3),
        "warm_up_seconds": round(warm, 1),
        "peak_memory_gib": round(peak, 2),
        "outside_share": round(max(0.0, 1 - training / seconds), 3),
        "phase_seconds": {k: round(v, 3) for k, v in phases.items()},
    }


def bench_speed(
    workloads: list[str],
    scale: float,
    epochs: int,
    compile_: bool,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict]:
    """Every workload's main variants, then (``compile_``) every workload's compiled
    variant: compilation is the slowest part, so a time-boxed run loses it first."""
    device = select_device("auto")
    loaded = [
        crema_shaped(scale, epochs) if name == "crema-shaped" else av_digits() for name in workloads
    ]
    rows: list[dict] = []
    for work in loaded:
        rows += bench_workload(work, device, MAIN_VARIANTS, on_row)
    if compile_:
        for work in loaded:
            reference = next(r for r in rows if r["workload"] == work.name)["seconds_per_round"]
            rows += bench_workload(work, device, ("tuned+compile",), on_row, reference)
    return rows


def print_speed(rows: list[dict[str, Any]], scale: float, epochs: int) -> None:
    """``fedcmi bench speed``'s table, one row per (workload, variant)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"one FedCMI round: training + aggregation, evaluation apart "
        f"(crema-shaped: scale {scale}, {epochs} local epochs)"
    )
    for col in (
        "workload",
        "variant",
        "device",
        "precision",
        "samples/s",
        "s/round",
        "x reference",
        "eval s",
        "peak GiB",
        "outside fwd/bwd/step",
    ):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            r["workload"],
            r["variant"],
            r["device"],
            r["precision_used"],
            f"{r['samples_per_second']:.1f}",
            f"{r['seconds_per_round']:.2f}",
            f"{r['speedup_vs_reference']:.2f}",
            f"{r['evaluation_seconds']:.2f}",
            f"{r['peak_memory_gib']:.2f}",
            f"{100 * r['outside_share']:.1f} %",
        )
    Console(width=140).print(table)
