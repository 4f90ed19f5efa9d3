"""Experiment grids: the product of config axes, run once per cell, resumable.

A grid file (TOML)::

    base = "../av-digits-fedavg.toml"       # preset the cells start from (relative path)
    description = "..."
    [set]                                   # dotted overrides for every cell
    rounds = 20
    [axes]                                  # dotted key -> values; the product is run
    "algorithm.name" = ["fedavg", "fedcmi"]
    seed = [0, 1, 2]
    variant = ["full", "uniform-temperature"]   # optional: names of [variants.*] tables
    [methods.fedcmi]                        # [algorithm] keys used when that method runs
    prox_mu = 0.01
    [variants.uniform-temperature]          # dotted overrides applied by a variant
                                            # (quote names with dots: [variants."mu0.1"])
    "algorithm.temperature" = "uniform"

Ctrl-C or SIGTERM stops the sweep and its worker processes at once; finished cells stay,
and the same command resumes.

Changing ``algorithm.name`` replaces the base's whole ``[algorithm]`` table with the
method's own keys from ``[methods.NAME]``, so every method gets the same data,
federation and training settings. Each cell runs into ``SWEEP_DIR/runs/<cell id>``; a
cell whose folder has a ``summary.json`` is skipped, a folder without one (a killed
run) is cleared and run again. ``results.csv`` is rewritten after every finished cell.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import functools
import itertools
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedcmi.config import ConfigError, apply_overrides, config_from_dict, read_toml
from fedcmi.core.files import atomic_write
from fedcmi.core.protocol import PROBES
from fedcmi.engine.run_folder import RoundRecord, RunFolder, Summary
from fedcmi.errors import RunFailure, RunInterrupted
from fedcmi.tools.results import (
    BEST_METRICS,
    FAILURE_COLUMNS,
    METRICS,
    MISSING_METRICS,
    RESULT_COLUMNS,
)

VARIANT_AXIS = "variant"


class SweepError(RunFailure):
    """Some cells failed; the others finished and are in results.csv."""


@dataclass
class Cell:
    axes: dict[str, Any]
    config: dict[str, Any]  # raw nested config, validated before any cell runs

    @property
    def cell_id(self) -> str:
        short = {"algorithm.name": "method"}
        parts = [f"{short.get(k, k.rsplit('.', 1)[-1])}-{v}" for k, v in self.axes.items()]
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", "__".join(parts))


@dataclass
class Grid:
    path: Path
    description: str
    axes: dict[str, list[Any]]
    cells: list[Cell]


def load_grid(path: str | Path) -> Grid:
    """Read a grid file and expand (and validate) every cell's config."""
    path = Path(path)
    raw = read_toml(path)
    allowed = {"base", "description", "set", "axes", "methods", "variants"}
    for key in raw:
        if key not in allowed:
            raise ConfigError(
                f"{path}: unknown grid key {key!r}; allowed: {', '.join(sorted(allowed))}"
            )
    axes = raw.get("axes", {})
    if not axes or not all(isinstance(v, list) and v for v in axes.values()):
        raise ConfigError(f"{path}: [axes] must map each key to a non-empty list")
    base: dict[str, Any] = read_toml(path.parent / raw["base"]) if "base" in raw else {}
    base = apply_overrides(base, [_dotted(k, v) for k, v in raw.get("set", {}).items()])
    variants = raw.get("variants", {})
    cells = []
    for values in itertools.product(*axes.values()):
        cell_axes = dict(zip(axes, values))
        config = _cell_config(base, cell_axes, raw.get("methods", {}), variants, path)
        try:
            config_from_dict(copy.deepcopy(config))
        except ConfigError as exc:
            raise ConfigError(f"{path}: cell {cell_axes}: {exc}") from None
        cells.append(Cell(cell_axes, config))
    return Grid(path, raw.get("description", ""), axes, cells)


def _dotted(key: str, value: Any) -> str:
    import tomli_w

    return f"{key}={tomli_w.dumps({'v': value})[4:].strip()}"


def _cell_config(
    base: dict[str, Any], axes: dict[str, Any], methods: dict, variants: dict, path: Path
) -> dict[str, Any]:
    pairs: list[tuple[str, Any]] = []
    for key, value in axes.items():
        if key != VARIANT_AXIS:
            pairs.append((key, value))
        elif value not in variants:
            raise ConfigError(f"{path}: variant {value!r} has no [variants.{value}] table")
        else:
            pairs += list(variants[value].items())
    config = copy.deepcopy(base)
    for key, value in pairs:
        if key == "algorithm.name":  # a method brings its own [algorithm] table
            config["algorithm"] = {"name": value, **methods.get(value, {})}
    rest = [_dotted(k, v) for k, v in pairs if k != "algorithm.name"]
    return apply_overrides(config, rest)


def _run_cell(config: dict[str, Any], out_dir: str, threads: int | None) -> Summary:
    """Worker entry point (runs in a child process when --jobs > 1)."""
    from fedcmi.engine.runner import run_experiment

    started = time.perf_counter()
    summary = run_experiment(config_from_dict(with_threads(config, threads)), out_dir)
    summary.wall_seconds = round(time.perf_counter() - started, 2)
    return summary


def run_cells(
    cells: list[Cell],
    work: Callable[..., Any],
    arguments: Callable[[Cell, int | None], tuple],
    jobs: int,
    settle: Callable[[Cell, Callable[[], Any]], None],
) -> None:
    """Call ``work(*arguments(cell, threads))`` for every cell, ``jobs`` processes at a
    time (each limited to its share of the CPU threads) or in this process for one job;
    ``settle(cell, outcome)`` is called as each finishes, ``outcome()`` giving the result
    or raising the cell's error. SIGTERM is handled as Ctrl-C meanwhile: either stops
    the workers and raises KeyboardInterrupt."""
    with sigterm_as_interrupt():
        if jobs <= 1:
            for cell in cells:
                settle(cell, functools.partial(work, *arguments(cell, None)))
            return
        threads = max(1, (os.cpu_count() or 1) // jobs)
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx)
        try:
            futures = {pool.submit(work, *arguments(c, threads)): c for c in cells}
            for future in as_completed(futures):
                settle(futures[future], future.result)
        except BaseException:
            # Ctrl-C, SIGTERM or a failed settle: stop the workers now. Leaving the pool's
            # context would wait for every running cell; exiting without this would orphan them.
            pool.shutdown(wait=False, cancel_futures=True)
            stop_workers()
            raise
        pool.shutdown()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's stop) raised as KeyboardInterrupt, so a sweep or
    calibration grid stops its workers instead of dying and orphaning them (only where
    Python allows a handler: the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_workers(grace: float = 10.0) -> None:
    """Terminate this process's worker processes and wait for them (killed after
    ``grace`` seconds). A cell a worker was running keeps no summary, so the next sweep
    clears and reruns it; finished cells are untouched."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(grace)
        if child.is_alive():
            child.kill()
            child.join()


def with_threads(config: dict[str, Any], threads: int | None) -> dict[str, Any]:
    """``config`` with ``engine.threads`` set (a worker's share of the CPU), if given."""
    if not threads:
        return config
    return {**config, "engine": {**config.get("engine", {}), "threads": threads}}


def run_sweep(
    grid: Grid,
    out_dir: str | Path,
    jobs: int = 1,
    on_cell: Callable[[Cell, Summary | None, str], None] | None = None,
) -> Path:
    """Run every unfinished cell of ``grid`` into ``out_dir``; returns results.csv's path."""
    out = Path(out_dir)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(grid.path, out / "grid.toml")
    todo = []
    for cell in grid.cells:
        cell_dir = runs / cell.cell_id
        if RunFolder(cell_dir).is_finished():
            if on_cell:
                on_cell(cell, None, "skipped (finished earlier)")
            continue
        if cell_dir.exists():
            shutil.rmtree(cell_dir)  # an interrupted run: start the cell again
        todo.append(cell)
    failed: list[str] = []

    def settle(cell: Cell, outcome: Callable[[], Summary]) -> None:
        # One failing cell must not stop the others: record it and go on.
        try:
            _finish_cell(grid, out, cell, outcome(), on_cell)
        except RunInterrupted:
            raise  # Ctrl-C stops the sweep; it is not the cell's failure
        except Exception as exc:  # noqa: BLE001 - reported, and the sweep exits non-zero
            failed.append(cell.cell_id)
            (runs / cell.cell_id).mkdir(parents=True, exist_ok=True)
            (runs / cell.cell_id / "error.txt").write_text(f"{type(exc).__name__}: {exc}\n")
            if on_cell:
                on_cell(cell, None, f"FAILED ({type(exc).__name__}: {exc})")

    run_cells(todo, _run_cell, lambda c, t: (c.config, str(runs / c.cell_id), t), jobs, settle)
    results = write_results(grid, out)
    if failed:
        raise SweepError(
            f"{len(failed)} cell(s) failed (see error.txt in each; rerun to retry them): "
            + ", ".join(failed)
        )
    return results


def _finish_cell(
    grid: Grid,
    out: Path,
    cell: Cell,
    summary: Summary,
    on_cell: Callable[[Cell, Summary | None, str], None] | None,
) -> None:
    RunFolder(out / "runs" / cell.cell_id).write_summary(summary)  # with its wall time
    write_results(grid, out)
    if on_cell:
        on_cell(cell, summary, "done")


def result_row(cell: Cell, summary: Summary, run_dir: Path) -> dict[str, Any]:
    """One results.csv row; an absent figure (a unimodal model's other modality) is ""."""
    final = summary.last_mean
    best = summary.best["test"]
    per_class = [x for x in summary.last_test_per_class_acc if x == x]  # drop NaN
    row: dict[str, Any] = dict(cell.axes)
    row.update({m: final["test"].get(m, "") for m in METRICS})
    row.update({p: _blank_none(summary.probes().get(p)) for p in PROBES})
    row["val_acc"] = final["val"]["acc"]
    row["val_gain"] = _blank_none(summary.val_gain)
    row["best_round"] = summary.best_round
    row.update({f"best_{m}": best.get(m, "") for m in BEST_METRICS})
    row["per_class_std"] = statistics.pstdev(per_class) if per_class else ""
    for key in ("worst_class_acc", "class_acc_std"):
        row[key] = final["test"].get(key, "")
    masked = summary.test_missing["last_mean"] if summary.test_missing else {}
    row.update({f"missing_{m}": masked.get(m, "") for m in MISSING_METRICS})
    row["rounds"] = summary.rounds
    wall = summary.wall_seconds
    row["wall_seconds"] = (
        wall if wall is not None else summary.setup_seconds + summary.train_seconds
    )
    row["run_dir"] = str(run_dir)
    return row


def training_extremes(records: list[RoundRecord]) -> dict[str, Any]:
    """``max_client_loss`` and ``max_grad_norm`` over every client of every round ("" where
    no client logged them): the figures that tell a run that spiked from one that did not."""
    losses = [float(log["loss"]) for r in records for log in r.client_logs if "loss" in log]
    norms = [n for n in (r.max_grad_norm() for r in records) if n is not None]
    return {
        "max_client_loss": max(losses) if losses else "",
        "max_grad_norm": max(norms) if norms else "",
    }


def profile_dominance(
    records: list[RoundRecord], manifest: dict[str, Any], summary: Summary
) -> dict[str, float | str]:
    """With per-client quality profiles: ``a_dominant_p{k}``, the mean share of batches in
    which modality a dominated (FedCMI's ``a_dominant_frac``) over the clients of profile
    k in the summary's last rounds ("" for a method that does not log it); nothing
    without profiles."""
    profile_of = {c["cid"]: c["quality"]["profile"] for c in manifest["clients"] if "quality" in c}
    if not profile_of:
        return {}
    shares: dict[int, list[float]] = {p: [] for p in sorted(set(profile_of.values()))}
    for r in records[-summary.last_rounds :]:
        for log in r.client_logs:
            if "a_dominant_frac" in log:
                shares[profile_of[int(log["cid"])]].append(float(log["a_dominant_frac"]))
    return {f"a_dominant_p{p}": statistics.fmean(v) if v else "" for p, v in shares.items()}


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


def write_results(grid: Grid, out: Path) -> Path:
    """(Re)write results.csv from every finished cell, in grid order."""
    rows = []
    for cell in grid.cells:
        folder = RunFolder(out / "runs" / cell.cell_id)
        if folder.is_finished():
            summary, records = folder.summary(), folder.records()
            rows.append(
                {
                    **result_row(cell, summary, folder.path.relative_to(out)),
                    **training_extremes(records),
                    **profile_dominance(records, folder.manifest(), summary),
                }
            )
    extra = list(dict.fromkeys(k for row in rows for k in row if k.startswith("a_dominant_p")))

    def write(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=[*grid.axes, *RESULT_COLUMNS, *extra])
        writer.writeheader()
        writer.writerows(rows)

    write_failures(grid, out)
    return atomic_write(out / "results.csv", write)


def write_failures(grid: Grid, out: Path) -> Path:
    """(Re)write failures.csv: every cell whose last attempt failed (an ``error.txt`` and
    no finished run), with the error's first line, so a table can count what did not
    finish (a diverged run stops with a non-finite update) instead of dropping it."""
    rows = []
    for cell in grid.cells:
        folder = out / "runs" / cell.cell_id
        error = folder / "error.txt"
        if error.is_file() and not RunFolder(folder).is_finished():
            first = (error.read_text(encoding="utf-8").splitlines() or [""])[0]
            rows.append({**cell.axes, "error": first, "run_dir": str(folder.relative_to(out))})

    def write(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=[*grid.axes, *FAILURE_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)

    return atomic_write(out / "failures.csv", write)
