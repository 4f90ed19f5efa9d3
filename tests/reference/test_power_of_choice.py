"""Power-of-choice client selection against its paper.

Cho, Wang, Joshi, "Towards Understanding Biased Client Selection in Federated Learning"
(AISTATS 2022), the pow-d strategy of Section 3 / Algorithm 1, written here from the
paper: (1) a candidate set A of d clients is drawn without replacement with probabilities
p_k (the clients' data fractions); (2) every candidate reports its local loss F_k(w) at
the global model; (3) the m candidates with the highest loss form S; (4) the server
averages their updates with equal weights, w <- (1/m) sum_{k in S} w_k (the size already
counted in the draw). No official code accompanies the paper; the transcription below
is of those four steps.
"""

from __future__ import annotations

import pytest
import torch

from fedcmi.algorithms import build_algorithm
from fedcmi.core.aggregation import ClientUpdate, ServerMemory
from fedcmi.engine.rounds import Outcome, RoundResult, aggregate_round
from fedcmi.engine.selection.power_of_choice import power_of_choice


def paper_pow_d(losses: dict[int, float], m: int) -> list[int]:
    """Step (3): the m candidates of highest loss (ties to the lower id)."""
    return sorted(sorted(losses, key=lambda k: (-losses[k], k))[:m])


def paper_average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Step (4): (1/m) sum_k w_k."""
    return {key: sum(s[key] for s in states) / len(states) for key in states[0]}


def test_selection_keeps_the_highest_losses_as_the_paper():
    losses = {2: 0.3, 4: 1.7, 6: 0.9, 9: 1.7, 11: 0.1}
    assert power_of_choice(list(losses), list(losses.values()), 3) == paper_pow_d(losses, 3)


@pytest.mark.parametrize("selection", ["power-of-choice", "uniform"])
def test_selected_updates_are_averaged_equally(make_config, selection):
    cfg = make_config(f'federation.selection="{selection}"')
    algorithm = build_algorithm(cfg.algorithm.name, cfg.algorithm.params)
    state = {"w": torch.zeros(3)}
    sizes, values = [10, 30], [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([5.0, 6.0, 7.0])]
    outcomes = [
        Outcome(cid, 0, ClientUpdate(cid, "av", n, {"w": w}), logs={})
        for cid, (n, w) in enumerate(zip(sizes, values))
    ]
    new, _ = aggregate_round(
        algorithm, state, RoundResult(outcomes, [], 1), cfg, ServerMemory(), ["av", "av"]
    )
    if selection == "power-of-choice":
        expected = paper_average([{"w": w} for w in values])["w"]  # [3, 4, 5]
    else:  # FedAvg: 10/40 and 30/40 -> [4, 5, 6]
        expected = (10 * values[0] + 30 * values[1]) / 40
    assert torch.allclose(new["w"], expected, atol=1e-6)
