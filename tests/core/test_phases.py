"""Phase intervals: the union of overlapping intervals, and the log's sums."""

import threading
import time

import pytest
import torch

from fedcmi.core.phases import PhaseLog, union_length


def test_union_length_counts_overlaps_once():
    # [0,2] u [1,3] u [5,6] u [5.5,5.7] = [0,3] u [5,6]: 3 + 1
    assert union_length([(1, 3), (0, 2), (5, 6), (5.5, 5.7)]) == pytest.approx(4.0)
    assert union_length([]) == 0.0
    assert union_length([(0, 1), (1, 2)]) == pytest.approx(2.0)


def test_phase_log_sums_and_union_on_cpu_threads():
    log = PhaseLog(torch.device("cpu"))

    def client() -> None:
        with log.phase("forward"):
            time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = log.seconds()
    assert seconds["forward"] >= 3 * 0.05 and seconds["backward"] == 0.0
    # Three overlapping sleeps: the union is far shorter than their sum.
    assert 0.05 <= log.busy_seconds() < seconds["forward"]


def test_busy_seconds_can_leave_phases_out():
    log = PhaseLog(torch.device("cpu"))
    with log.phase("forward"):
        time.sleep(0.02)
    with log.phase("evaluate"):
        time.sleep(0.05)
    training = log.busy_seconds(("forward", "backward", "step"))
    assert 0.02 <= training < 0.05 <= log.busy_seconds() - training
