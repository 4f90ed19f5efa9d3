"""SCAFFOLD, FedProto, AGM, FedOpt server optimisers and power-of-choice selection:
their updates against values computed by hand, and their cross-round state through
checkpoints."""

import math

import pytest
import torch

from fedcmi.algorithms import ALGORITHMS, build_algorithm
from fedcmi.algorithms.fedavg_agm import agm_coefficients, mono_modal_score
from fedcmi.algorithms.fedproto import average_prototypes
from fedcmi.algorithms.scaffold import option_two_variate, variate_mean_counts
from fedcmi.config import ServerConfig
from fedcmi.core.aggregation import ClientUpdate
from fedcmi.core.server_opt import server_step
from fedcmi.core.training import Batch
from fedcmi.data import load_dataset
from fedcmi.engine.checkpoint import load_checkpoint
from fedcmi.engine.federation import build_federation
from fedcmi.engine.runner import run_experiment
from fedcmi.engine.selection.power_of_choice import power_of_choice

# --- SCAFFOLD ---------------------------------------------------------------------


def test_option_two_variate_by_hand():
    one = torch.tensor([1.0])
    # c_i - c + (x - y) / (K eta) = 1 - 0.5 + (2 - 1.5) / (2 * 0.1) = 3
    got = option_two_variate(one, 0.5 * one, 2 * one, 1.5 * one, steps=2, lr=0.1)
    assert got.item() == pytest.approx(3.0)
    # heavy-ball momentum 0.9: the step is 10 x larger, so (x - y) counts 0.1 as much
    got = option_two_variate(one, 0.5 * one, 2 * one, 1.5 * one, 2, 0.1, momentum=0.9)
    assert got.item() == pytest.approx(1 - 0.5 + 0.5 * 0.1 / 0.2)


def test_variate_mean_counts_per_modality():
    mods = ["av", "av", "a", "v", "a"]
    counts = variate_mean_counts(["enc_a.w", "enc_v.w", "fusion.w"], mods, modality_aware=True)
    assert counts == {"enc_a.w": 4, "enc_v.w": 3, "fusion.w": 5}
    assert set(variate_mean_counts(["enc_a.w"], mods, modality_aware=False).values()) == {5}


@pytest.fixture
def scaffold_engine(make_config, make_engine):
    """SCAFFOLD on half-unimodal synthetic clients, one local step of plain SGD."""

    def build(*extra):
        cfg = make_config(
            "algorithm.name=scaffold",
            "train.momentum=0.0",
            "train.weight_decay=0.0",
            "train.batch_size=100000",  # one batch: K = 1 local step
            "federation.multimodal_ratio=0.5",
            *extra,
        )
        return cfg, make_engine(cfg)

    return build


def gradient_at(engine, cid, state):
    """d CE / d theta of client cid's whole data at ``state`` (one full batch)."""
    model = engine.trainer.model
    model.load_state_dict(state)
    model.train()
    model.zero_grad()
    c = engine.clients[cid]
    torch.nn.functional.cross_entropy(model(c.x_a, c.x_v, c.modalities), c.y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_scaffold_control_variates_over_two_rounds(scaffold_engine):
    """With K = 1 plain-SGD step, option II gives c_i+ = c_i - c + (x - y)/eta
    = c_i - c + (g + c - c_i) = g(x): the client's gradient at the global model, whatever
    c and c_i were; the server adds (1/N) sum of the changes."""
    _, engine = scaffold_engine()
    n = len(engine.federation.modalities)
    for t in range(2):
        x = {k: v.clone() for k, v in engine.global_state.items()}
        c_before = dict(engine.memory.server)
        clients_before = {cid: dict(st) for cid, st in engine.memory.clients.items()}
        record = engine.run_round(t)
        changes = {}
        for cid in record.clients:
            grads = gradient_at(engine, cid, x)
            kept = engine.memory.clients[cid]
            for name, g in grads.items():
                torch.testing.assert_close(kept[f"c.{name}"], g, rtol=1e-4, atol=1e-6)
            old = clients_before.get(cid, {})
            for name in engine.algorithm.param_shapes:
                before = old.get(f"c.{name}", torch.zeros_like(kept[f"c.{name}"]))
                changes.setdefault(name, []).append(kept[f"c.{name}"] - before)
        for name in engine.algorithm.param_shapes:
            expected = c_before[f"c.{name}"] + torch.stack(changes[name]).sum(0) / n
            torch.testing.assert_close(engine.memory.server[f"c.{name}"], expected)


def test_scaffold_leaves_an_absent_modality_uncorrected(scaffold_engine):
    _, engine = scaffold_engine()
    record = engine.run_round(0)
    for cid in record.clients:
        mods = engine.federation.modalities[cid]
        kept = engine.memory.clients[cid]
        for side in "av":
            if side not in mods:
                assert all(float(v.abs().sum()) == 0 for k, v in kept.items() if f"enc_{side}" in k)


# --- FedOpt -----------------------------------------------------------------------


def opt_step(kind, deltas, lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3):
    cfg = ServerConfig(optimizer=kind, lr=lr, beta1=beta1, beta2=beta2, tau=tau)
    x, moments = {"w": torch.tensor([1.0], dtype=torch.float64)}, {}
    for d in deltas:
        x, moments = server_step(x, {"w": x["w"] + d}, moments, cfg, ["w"])
    return x["w"].item(), moments


def test_fedadam_moments_by_hand():
    # round 1: Delta = 0.5, m = 0.1 * 0.5, v = 0.99 tau^2 + 0.01 * 0.25
    m1, v1 = 0.05, 0.99 * 1e-6 + 0.01 * 0.25
    x1 = 1.0 + 0.1 * m1 / (math.sqrt(v1) + 1e-3)
    x, moments = opt_step("adam", [0.5])
    assert x == pytest.approx(x1, rel=1e-12)
    assert moments["m.w"].item() == pytest.approx(m1)
    assert moments["v.w"].item() == pytest.approx(v1)
    # round 2: Delta = -0.2
    m2, v2 = 0.9 * m1 + 0.1 * -0.2, 0.99 * v1 + 0.01 * 0.04
    x, moments = opt_step("adam", [0.5, -0.2])
    assert x == pytest.approx(x1 + 0.1 * m2 / (math.sqrt(v2) + 1e-3), rel=1e-12)


def test_fedyogi_and_fedadagrad_second_moments_by_hand():
    v1 = 1e-6 + 0.01 * 0.25  # yogi: v - (1 - b2) D^2 sign(v - D^2), v < D^2 so it grows
    _, moments = opt_step("yogi", [0.5])
    assert moments["v.w"].item() == pytest.approx(v1)
    _, moments = opt_step("yogi", [0.5, -0.2])  # v1 = 0.0025 < 0.04: grows again
    assert moments["v.w"].item() == pytest.approx(v1 + 0.01 * 0.04)
    _, moments = opt_step("adagrad", [0.5, -0.2])
    assert moments["v.w"].item() == pytest.approx(1e-6 + 0.25 + 0.04)


def test_server_sgd_lr_scales_the_pseudo_gradient_and_lr_one_is_averaging():
    x, _ = opt_step("sgd", [0.5], lr=0.5)
    assert x == pytest.approx(1.25)
    plain = ServerConfig()
    agg = {"w": torch.tensor([3.0])}
    assert server_step({"w": torch.tensor([1.0])}, agg, {}, plain, ["w"])[0] is agg


def test_server_optimizer_skips_buffers_and_absent_modalities():
    algorithm = build_algorithm("fedcmi", ALGORITHMS.get("fedcmi").Params())
    algorithm.param_shapes = {"enc_a.w": (1,), "enc_v.w": (1,), "fusion.w": (1,)}
    only_a = [ClientUpdate(0, "a", 1, {})]
    keys = algorithm.updated_keys(only_a)
    assert keys == ["enc_a.w", "fusion.w"]
    glob = {k: torch.zeros(1) for k in ["enc_a.w", "enc_v.w", "fusion.w", "bn.running_mean"]}
    agg = {k: torch.ones(1) for k in glob}
    agg["enc_v.w"] = torch.zeros(1)  # the aggregate keeps an absent side's global value
    new, moments = server_step(glob, agg, {}, ServerConfig("adam", lr=0.1), keys)
    assert new["bn.running_mean"].item() == 1.0  # buffers take the aggregate
    assert new["enc_v.w"].item() == 0.0 and "m.enc_v.w" not in moments
    assert new["enc_a.w"].item() == pytest.approx(0.1 * 0.1 / (math.sqrt(0.01 + 0.99e-6) + 1e-3))


# --- FedProto ---------------------------------------------------------------------


def test_fedproto_prototype_average_by_hand():
    previous = torch.tensor([[9.0], [9.0], [9.0]])
    prev_count = torch.tensor([1.0, 1.0, 1.0])
    client1 = (torch.tensor([[1.0], [3.0], [0.0]]), torch.tensor([1.0, 2.0, 0.0]))
    client2 = (torch.tensor([[4.0], [6.0], [0.0]]), torch.tensor([2.0, 1.0, 0.0]))
    proto, count = average_prototypes(previous, prev_count, [client1, client2])
    # class 0: (1*1 + 2*4)/3 = 3; class 1: (2*3 + 1*6)/3 = 4; class 2: nobody -> kept
    assert proto[:, 0].tolist() == pytest.approx([3.0, 4.0, 9.0])
    assert count.tolist() == [3.0, 3.0, 1.0]


def test_fedproto_server_state_after_a_round_is_the_weighted_average(make_engine, make_config):
    cfg = make_config("algorithm.name=fedproto", "federation.multimodal_ratio=0.5")
    engine = make_engine(cfg)
    data, fed = engine.run.data, engine.federation
    updates = [engine.train_client(cid, 0)[0] for cid in fed.schedule[0]]
    state = engine.algorithm.server_update(engine.memory.server, updates, fed.modalities)
    for side in "av":
        reports = [
            (u.report[f"proto.{side}"], u.report[f"count.{side}"])
            for u in updates
            if side in u.modalities
        ]
        total = sum(n for _, n in reports)
        for c in range(data.num_classes):
            if total[c] == 0:
                continue
            expected = sum(n[c] * p[c] for p, n in reports) / total[c]
            torch.testing.assert_close(state[f"proto.{side}"][c], expected)


# --- AGM --------------------------------------------------------------------------


def test_agm_score_and_coefficients_by_hand():
    assert mono_modal_score(torch.zeros(3, 2), torch.tensor([0, 1, 0])) == pytest.approx(
        math.log(2)
    )
    coeffs = agm_coefficients({"a": 0.5, "v": 1.5}, {"a": 1.0, "v": 1.0}, alpha=0.1)
    # r_a = exp(2 (mean - s_a)) = exp(2 (1 - 0.5)) = e, eta_a = exp(0) = 1:
    # kappa_a = exp(0.1 (1 - e)) < 1 (audio, learning faster now, is damped)
    assert coeffs["a"] == pytest.approx(math.exp(0.1 * (1 - math.e)))
    assert coeffs["v"] == pytest.approx(math.exp(0.1 * (1 - math.exp(-1))))
    # eta_v - r_v = exp(2 (2.5 - 0)) - 1 = e^5 - 1 > cap: kappa_v = exp(cap)
    capped = agm_coefficients({"a": 0.0, "v": 0.0}, {"a": 5.0, "v": 0.0}, alpha=1.0)
    assert capped["v"] == pytest.approx(math.exp(10.0))
    assert agm_coefficients({"a": 0.0, "v": 0.0}, {"a": 5.0, "v": 0.0}, 1.0, cap=7.0)[
        "v"
    ] == pytest.approx(math.exp(7.0))


def test_agm_running_scores_are_the_client_state(make_engine, make_config):
    cfg = make_config("algorithm.name=fedavg-agm", "rounds=2")
    engine = make_engine(cfg)
    record = engine.run_round(0)
    kept = engine.memory.clients[record.clients[0]]["agm.running"]
    steps = record.client_logs[0]["steps"]
    assert kept[2].item() == steps and kept[:2].min() > 0  # S_a, S_v, t


# --- power-of-choice --------------------------------------------------------------


def test_power_of_choice_keeps_the_highest_losses():
    assert power_of_choice([1, 3, 5, 7], [0.5, 2.0, 2.0, 1.0], 2) == [3, 5]
    assert power_of_choice([1, 3, 5, 7], [0.5, 2.0, 2.0, 1.0], 1) == [3]  # tie: lower id
    assert power_of_choice([7, 1], [0.1, 0.2], 2) == [1, 7]


def test_power_of_choice_round_records_candidates_and_picks_the_worst_fit(make_engine, make_config):
    cfg = make_config(
        'federation.selection="power-of-choice"', "federation.candidates=4", "rounds=1"
    )
    engine = make_engine(cfg)
    fed = engine.federation
    state = {k: v.clone() for k, v in engine.global_state.items()}
    losses = {c: engine.trainer.local_loss(engine.clients[c], state) for c in fed.schedule[0]}
    record = engine.run_round(0)
    assert len(fed.schedule[0]) == 4
    assert record.candidate_losses == {str(c): round(v, 6) for c, v in losses.items()}
    top = sorted(losses, key=lambda c: -losses[c])[: cfg.federation.clients_per_round]
    assert record.clients == sorted(top)


def test_power_of_choice_candidates_default_to_twice_the_round(make_config):
    cfg = make_config('federation.selection="power-of-choice"')
    fed = build_federation(
        load_dataset(cfg.data.name, cfg.data.params).train.y.numpy(),
        cfg.federation,
        cfg.rounds,
        cfg.seed,
    )
    assert all(len(s) == 4 for s in fed.schedule)  # min(2 x 2, 4 clients)


# --- cross-round state through checkpoints ----------------------------------------


class StopAfter(Exception):
    pass


@pytest.mark.parametrize(
    "extra",
    [
        ("algorithm.name=scaffold", 'server.optimizer="yogi"', "server.lr=0.05"),
        ("algorithm.name=fedavg-agm", 'federation.selection="power-of-choice"'),
        ("algorithm.name=fedproto", "federation.missing_rate_a=0.3"),
    ],
)
def test_cross_round_state_survives_checkpoint_and_resume(make_config, tmp_path, extra):
    cfg = make_config("rounds=4", "federation.multimodal_ratio=0.5", *extra)
    run_experiment(cfg, tmp_path / "whole")

    def stop(record):
        if record.round == 2:
            raise StopAfter

    with pytest.raises(StopAfter):
        run_experiment(cfg, tmp_path / "cut", on_round=stop)
    saved = load_checkpoint(tmp_path / "cut" / "checkpoints")
    assert saved["rounds_done"] == 2 and saved["memory"]["clients"] or saved["memory"]["server"]
    run_experiment(cfg, tmp_path / "cut", resume=True)
    assert (tmp_path / "cut" / "metrics.jsonl").read_bytes() == (
        tmp_path / "whole" / "metrics.jsonl"
    ).read_bytes()
    assert torch.equal(
        torch.load(tmp_path / "cut" / "final.pt")["fusion.weight"],
        torch.load(tmp_path / "whole" / "final.pt")["fusion.weight"],
    )


def test_batch_both_present_combines_masks():
    y = torch.zeros(3, dtype=torch.long)
    batch = Batch(
        None, None, y, torch.tensor([True, False, True]), torch.tensor([True, True, False])
    )
    assert batch.both_present().tolist() == [True, False, False]
    assert Batch(None, None, y).both_present() is None


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("server.lr=0", "server.lr"),
        ("server.beta2=1.0", "server.beta2"),
        ("server.optimizer=lamb", "server.optimizer"),
        ("federation.candidates=1", "federation.candidates"),
        ("federation.selection=greedy", "federation.selection"),
    ],
)
def test_new_config_keys_are_validated(override, key):
    from fedcmi.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, ["federation.clients_per_round=2", override])
