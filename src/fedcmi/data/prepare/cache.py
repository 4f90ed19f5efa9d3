"""Prepared-dataset caches: memory-mappable arrays, an index, a manifest and a skip report.

Layout of a cache folder::

    manifest.json   format version, dataset, parameters (and their hash), counts, shapes,
                    class names, bytes per clip, timing
    index.json      per clip: key, label, split, ok (False = skipped, see skipped.json)
    skipped.json    every clip left out, with its path and the reason
    <array>.npy     one array per modality (e.g. audio float16, frames uint8), row i =
                    index entry i (zeros for skipped clips)
    progress.json   while building: which rows are done (a killed build resumes)

A cache built with another format version or other parameters is refused with a message
saying so (``force=True`` rebuilds it).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedcmi.core.files import write_json
from fedcmi.errors import InputError

CACHE_FORMAT = 1
CHUNK = 32


@dataclass
class ClipJob:
    key: str
    label: int
    split: str
    source: dict[str, Any]  # what the worker needs: paths, time windows
    # Per-sample metadata kept in the index (a natural client key such as the event).
    keys: dict[str, str] = field(default_factory=dict)


@dataclass
class ArraySpec:
    shape: tuple[int, ...]
    dtype: str


def _no_derived(params: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Preparer:
    """How one of the paper's datasets is read from a user's disk.

    ``params``: the dataclass of its ``--set`` options; ``index_clips(src, params)`` ->
    (jobs, skipped, class names); ``array_specs(params)``: the cache's arrays;
    ``prepare_clip(job)``: one clip's arrays (module-level, so worker processes can run
    it); ``derived_params(params)``: values computed from the options that also key the
    cache. Register one with ``PREPARERS.register("name")(Preparer(...))``.
    """

    params: type
    index_clips: Callable[[Path, Any], tuple[list[ClipJob], list[dict[str, str]], list[str]]]
    array_specs: Callable[[Any], dict[str, ArraySpec]]
    prepare_clip: Callable[[ClipJob], dict[str, np.ndarray]]
    derived_params: Callable[[Any], dict[str, Any]] = _no_derived


@dataclass
class CacheSpec:
    dataset: str
    params: dict[str, Any]
    arrays: dict[str, ArraySpec]
    class_names: list[str]
    jobs: list[ClipJob]
    skipped: list[dict[str, str]] = field(default_factory=list)  # found while indexing

    @property
    def params_hash(self) -> str:
        blob = json.dumps(
            {"format": CACHE_FORMAT, "dataset": self.dataset, **self.params},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class CacheMismatchError(InputError):
    """An existing cache was built by another version or with other parameters."""


def _write_json(path: Path, obj: Any) -> None:
    write_json(path, obj, indent=1)


def check_existing(out: Path, spec: CacheSpec, force: bool) -> bool:
    """True when ``out`` already holds this exact finished cache."""
    for name in ("manifest.json", "progress.json"):
        path = out / name
        if not path.is_file():
            continue
        found = json.loads(path.read_text())
        same = found.get("format") == CACHE_FORMAT and found.get("params_hash") == spec.params_hash
        if not same:
            if not force:
                raise CacheMismatchError(
                    f"{out} holds a cache built with format {found.get('format')} and other "
                    f"parameters ({found.get('params')}); pass --force to rebuild it or "
                    "choose another --out"
                )
            shutil.rmtree(out)
            return False
        return name == "manifest.json"
    return False


def build_cache(
    out_dir: str | Path,
    spec: CacheSpec,
    worker: Callable[[ClipJob], dict[str, np.ndarray]],
    workers: int = 1,
    force: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``worker`` on every job (in ``workers`` processes) and fill the cache."""
    out = Path(out_dir)
    if check_existing(out, spec, force):
        return json.loads((out / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    n = len(spec.jobs)
    progress_path = out / "progress.json"
    progress: dict[str, Any] = (
        json.loads(progress_path.read_text())
        if progress_path.is_file()
        else {
            "format": CACHE_FORMAT,
            "params_hash": spec.params_hash,
            "params": spec.params,
            "done": [],
            "errors": {},
        }
    )
    mode = "r+" if progress["done"] or progress["errors"] else "w+"
    arrays = {
        name: np.lib.format.open_memmap(
            out / f"{name}.npy", mode=mode, dtype=a.dtype, shape=(n, *a.shape)
        )
        for name, a in spec.arrays.items()
    }
    finished = set(progress["done"]) | {int(i) for i in progress["errors"]}
    todo = [i for i in range(n) if i not in finished]
    started = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx) if workers > 1 else None
    try:
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start : start + CHUNK]
            jobs = [spec.jobs[i] for i in chunk]
            results = (
                pool.map(_safe, [worker] * len(jobs), jobs)
                if pool
                else map(_safe, [worker] * len(jobs), jobs)
            )
            for i, (ok, value) in zip(chunk, results):
                if ok:
                    for name, array in arrays.items():
                        array[i] = _fit(value[name], spec.arrays[name], spec.jobs[i])
                    progress["done"].append(i)
                else:
                    progress["errors"][str(i)] = value
            for array in arrays.values():
                array.flush()
            _write_json(progress_path, progress)
            if on_progress:
                on_progress(len(progress["done"]) + len(progress["errors"]), n)
    finally:
        if pool:
            pool.shutdown()
    seconds = time.perf_counter() - started
    return _finish(out, spec, progress, arrays, seconds, len(todo), workers)


def _safe(worker: Callable[[ClipJob], dict[str, np.ndarray]], job: ClipJob) -> tuple[bool, Any]:
    try:
        return True, worker(job)
    except ValueError as exc:  # bad data: reported, never fatal
        return False, str(exc)


def _fit(value: np.ndarray, spec: ArraySpec, job: ClipJob) -> np.ndarray:
    if tuple(value.shape) != spec.shape:
        raise InputError(f"{job.key}: worker returned shape {value.shape}, expected {spec.shape}")
    return value.astype(spec.dtype, copy=False)


def _finish(out, spec, progress, arrays, seconds, processed, workers) -> dict[str, Any]:
    errors = progress["errors"]
    index = [
        {
            "key": j.key,
            "label": j.label,
            "split": j.split,
            "ok": str(i) not in errors,
            **({"keys": j.keys} if j.keys else {}),
        }
        for i, j in enumerate(spec.jobs)
    ]
    skipped = spec.skipped + [
        {"path": spec.jobs[int(i)].source.get("path", spec.jobs[int(i)].key), "reason": reason}
        for i, reason in sorted(errors.items(), key=lambda kv: int(kv[0]))
    ]
    _write_json(out / "index.json", index)
    _write_json(out / "skipped.json", skipped)
    bytes_per_clip = sum(
        int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in spec.arrays.values()
    )
    manifest = {
        "format": CACHE_FORMAT,
        "dataset": spec.dataset,
        "params": spec.params,
        "params_hash": spec.params_hash,
        "class_names": spec.class_names,
        "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype} for k, a in spec.arrays.items()},
        "clips": len(spec.jobs),
        "ok": sum(r["ok"] for r in index),
        "skipped": len(skipped),
        "splits": {
            s: sum(r["ok"] and r["split"] == s for r in index)
            for s in sorted({r["split"] for r in index})
        },
        "bytes_per_clip": bytes_per_clip,
        "seconds": round(seconds, 3),
        "workers": workers,
        "clips_per_second_per_worker": round(processed / seconds / workers, 3)
        if processed and seconds
        else None,
    }
    _write_json(out / "manifest.json", manifest)
    (out / "progress.json").unlink(missing_ok=True)
    del arrays
    return manifest
