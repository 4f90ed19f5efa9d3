"""fedcmi bench scale: the two sweeps' configurations and one measured configuration."""

import fedcmi.tools.bench_scale as bench


def test_one_configuration_is_measured_in_process():
    row = bench._measure(
        [*bench._base(4, 20), "federation.num_clients=6", "federation.clients_per_round=6"]
    )
    assert row["train_samples"] == 72  # 80 samples, 5 % val and 5 % test held out
    assert row["setup_seconds"] > 0 and row["seconds_per_round"] > 0
    assert row["peak_rss_mib"] > 0


def test_sweeps_keep_the_samples_per_round_and_scale_the_federation(monkeypatch):
    seen = []

    def fake(overrides):
        seen.append(dict(o.split("=", 1) for o in overrides))
        per_class = int(seen[-1]["data.per_class"])
        classes = int(seen[-1]["data.num_classes"])
        return {
            "setup_seconds": 1.0,
            "seconds_per_round": 2.0 if len(seen) == 1 else 3.0,
            "peak_rss_mib": 100.0,
            "rss_growth_mib": 1.0,
            "train_samples": round(per_class * classes * 0.9),
        }

    monkeypatch.setattr(bench, "_in_fresh_process", fake)
    rows = bench.per_round_rows()
    assert [r["clients"] for r in rows] == [5, 50, 500]
    # The same pool every time: about 2,000 training samples, 4 per client at 500 clients.
    assert len({r["train_samples"] for r in rows}) == 1
    assert abs(rows[0]["train_samples"] - 2_000) <= 5
    assert rows[-1]["samples_per_client"] == 4.0
    assert [r["x_5_clients"] for r in rows] == [1.0, 1.5, 1.5]
    fed = bench.federation_rows()
    assert [r["clients"] for r in fed] == [20, 100, 1_000, 10_000]
    assert all(int(s["federation.clients_per_round"]) == 10 for s in seen[3:])
    assert all(r["samples_per_client"] >= 18 for r in fed)
