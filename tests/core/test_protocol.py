"""The reporting protocol (last-rounds mean, smoothed best-val round, plateau gain) by hand."""

import pytest

from fedcmi.core.protocol import best_index, run_figures, val_gain, window_mean
from fedcmi.engine.run_folder import Summary


def record(round_, val_acc, test_acc, test_v=None):
    test = {"acc": test_acc, "per_class_acc": [test_acc, test_acc]}
    if test_v is not None:
        test["acc_v"] = test_v
    return {"round": round_, "val": {"acc": val_acc}, "test": test}


def test_window_mean_averages_the_last_rounds_and_common_keys():
    records = [record(1, 0.1, 0.2), record(2, 0.5, 0.6, 0.3), record(3, 0.7, 0.8, 0.5)]
    assert window_mean(records, "test", 2) == pytest.approx({"acc": 0.7, "acc_v": 0.4})
    # acc_v is missing in round 1, so a 3-round window keeps only acc: (0.2+0.6+0.8)/3
    assert window_mean(records, "test", 3) == pytest.approx({"acc": 1.6 / 3})


def test_best_round_is_smoothed_and_late_ties_win():
    # val: 1.0 at round 2 alone is a spike; rounds 4-6 are consistently high.
    vals = [0.5, 1.0, 0.6, 0.9, 0.9, 0.9]
    records = [record(i + 1, v, 0.0) for i, v in enumerate(vals)]
    # trailing means over 3: .5, .75, .7, .8333, .8, .9 -> round 6
    assert best_index(records, smooth=3) == 5
    # without smoothing the spike wins
    assert best_index(records, smooth=1) == 1
    # a saturated metric: every round 1.0 -> the last round, not the first
    flat = [record(i + 1, 1.0, 0.0) for i in range(5)]
    assert best_index(flat, smooth=3) == 4


def test_val_gain_compares_the_last_two_windows():
    records = [record(i + 1, v, 0.0) for i, v in enumerate([0.1, 0.2, 0.3, 0.5, 0.6, 0.7])]
    # last 3 mean 0.6, the 3 before 0.2 -> 0.4
    assert val_gain(records, 3) == pytest.approx(0.4)
    assert val_gain(records, 4) is None  # fewer than 8 rounds


def test_run_figures_and_summary_rows():
    records = [record(i + 1, v, t) for i, (v, t) in enumerate([(0.2, 0.3), (0.9, 0.8), (0.8, 0.7)])]
    figures = run_figures(records, last_rounds=2, smooth=1)
    assert figures["best_round"] == 2 and figures["best"]["test"] == {"acc": 0.8}
    assert figures["last"]["test"] == {"acc": 0.7}
    assert figures["last_mean"]["test"] == pytest.approx({"acc": 0.75})
    assert figures["last_rounds"] == 2 and figures["val_gain"] is None
    assert figures["last_test_per_class_acc"] == [0.7, 0.7]
    summary = Summary.from_dict(
        {
            **dict.fromkeys(("fedcmi_version", "engine", "algorithm", "dataset", "device"), ""),
            **dict.fromkeys(("seed", "setup_seconds", "train_seconds", "seconds_per_round"), 0),
            **figures,
            "rounds": 3,
            "probe_a": None,
            "probe_v": 0.5,
        }
    )
    assert summary.probes() == {"probe_v": 0.5}
    keys, rows = summary.rows()
    assert keys == ["acc"]
    assert rows == [
        ["mean of last 2", pytest.approx(0.75)],
        ["best val (round 2)", 0.8],
        ["last (round 3)", 0.7],
    ]
    with pytest.raises(ValueError, match="no round"):
        run_figures([], 5, 3)
