"""Where a round's time goes: intervals spent in forward, backward and optimizer steps
(training), and in the evaluation's forward passes.

A :class:`PhaseLog` records the start and end of every phase without stalling the
device: on a GPU as CUDA events on the current stream (each concurrent client's own
stream), on a CPU as ``perf_counter`` readings. After the round, :meth:`busy_seconds`
is the length of the union of all intervals, so overlapping clients are not counted
twice, and ``wall - busy`` is the time in which no client was in any of the phases
(data gathering, host syncs, model copies, aggregation, evaluation).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

PHASES = ("forward", "backward", "step", "evaluate")


class PhaseLog:
    """Thread-safe log of phase intervals on one device; read it after the work is done."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._lock = threading.Lock()
        self._spans: list[tuple[str, Any, Any]] = []
        self._origin = self._mark()

    def _mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()  # on the calling thread's current stream
        return event

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = self._mark()
        try:
            yield
        finally:
            end = self._mark()
            with self._lock:
                self._spans.append((name, start, end))

    def intervals(self) -> list[tuple[str, float, float]]:
        """(phase, start, end) in seconds from the log's creation (synchronises a GPU)."""
        if self.cuda:
            torch.cuda.synchronize()
            origin = self._origin

            def offset(event: Any) -> float:
                return origin.elapsed_time(event) / 1000
        else:
            origin = self._origin

            def offset(event: Any) -> float:
                return float(event - origin)

        with self._lock:
            spans = list(self._spans)
        return [(name, offset(start), offset(end)) for name, start, end in spans]

    def seconds(self) -> dict[str, float]:
        """Summed duration per phase (overlapping clients each count)."""
        totals = dict.fromkeys(PHASES, 0.0)
        for name, start, end in self.intervals():
            totals[name] = totals.get(name, 0.0) + end - start
        return totals

    def busy_seconds(self, phases: tuple[str, ...] = PHASES) -> float:
        """Length of the union of the ``phases``' intervals: time in which some client was
        in one of them."""
        spans = [(start, end) for name, start, end in self.intervals() if name in phases]
        return union_length(spans)


def logged(log: PhaseLog | None, name: str) -> AbstractContextManager:
    """Logs the enclosed work as phase ``name`` in ``log`` (nothing without a log)."""
    return nullcontext() if log is None else log.phase(name)


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping [start, end] intervals."""
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        covered += end - max(start, reach)
        reach = end
    return covered
