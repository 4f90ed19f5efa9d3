"""The paper presets' learning-rate schedule against the FedCMI authors' code.

Transcribed from github.com/fanyunfeng-bit/Balanced-Modality-Selection-in-MFL (commit
14c762c), ``client/FedCMI.py`` lines 81-84 (the client's rate in round ``global_epoch``,
0-based as the server loop of ``server/FedCMI.py`` line 92 counts it).
"""

from __future__ import annotations

import pytest

from fedcmi.config import TrainConfig
from fedcmi.engine.schedule import lr_at


def official_lr(global_epoch: int, local_lr: float, lr_min: float, global_epochs: int) -> float:
    if global_epoch > 80:
        lr = local_lr - (local_lr - lr_min) / global_epochs * global_epoch
    else:
        lr = local_lr
    return lr


def test_reference_schedule_is_the_authors_code():
    train = TrainConfig(lr=0.01, lr_min=1e-4, lr_decay_start=80, lr_decay="reference")
    for t in range(200):
        assert lr_at(t, train, 200) == pytest.approx(official_lr(t, 0.01, 1e-4, 200), abs=1e-12)
    # the step: round 80 at the full rate, round 81 at 0.01 - 0.0099 * 81 / 200 = 0.0059905
    assert lr_at(80, train, 200) == 0.01
    assert lr_at(81, train, 200) == pytest.approx(0.0059905, abs=1e-12)


def test_linear_schedule_starts_from_the_full_rate():
    train = TrainConfig(lr=0.01, lr_min=1e-4, lr_decay_start=80)
    # lr + (t - 80) / 119 (lr_min - lr): round 81 at 0.01 - 0.0099 / 119 = 0.00991681
    assert lr_at(81, train, 200) == pytest.approx(0.0099168067, abs=1e-9)
    assert lr_at(199, train, 200) == pytest.approx(1e-4, abs=1e-12)
