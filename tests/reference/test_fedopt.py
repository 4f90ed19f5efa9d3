"""FedAdagrad, FedAdam and FedYogi against their paper's algorithm.

Transcribed from Reddi, Charles, Zaheer, Garrett, Rush, Konecny, Kumar, McMahan,
"Adaptive Federated Optimization" (ICLR 2021), Algorithm 2, written from the paper:
Delta_t = mean of the clients' Delta_i, m_t = beta1 m_{t-1} + (1 - beta1) Delta_t, the
three second moments (Adagrad v + Delta^2, Yogi v - (1 - beta2) Delta^2
sign(v - Delta^2), Adam beta2 v + (1 - beta2) Delta^2) and
x_{t+1} = x_t + eta m_t / (sqrt(v_t) + tau), with m_{-1} = 0 and
v_{-1} = tau^2 (the paper asks v_{-1} >= tau^2). The paper's experiments ran on
TensorFlow Federated with Keras optimisers (google-research/federated,
``utils/optimizers/optimizer_utils.py``), whose Adam adds bias correction (as Flower's
FedAdam does); the project follows the algorithm as printed, a difference listed in
docs/algorithms.md.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedcmi.config import ServerConfig
from fedcmi.core.server_opt import server_step

ETA, BETA1, BETA2, TAU = 0.3, 0.9, 0.99, 1e-3


def paper_rounds(kind: str, x0: np.ndarray, aggregates: list[np.ndarray]) -> np.ndarray:
    x = x0.copy()
    m = np.zeros_like(x)
    v = np.full_like(x, TAU**2)
    for client_mean in aggregates:
        delta = client_mean - x
        m = BETA1 * m + (1 - BETA1) * delta
        if kind == "adagrad":
            v = v + delta**2
        elif kind == "yogi":
            v = v - (1 - BETA2) * delta**2 * np.sign(v - delta**2)
        else:
            v = BETA2 * v + (1 - BETA2) * delta**2
        x = x + ETA * m / (np.sqrt(v) + TAU)
    return x


@pytest.mark.parametrize("kind", ["adagrad", "adam", "yogi"])
def test_server_optimiser_matches_the_paper_over_three_rounds(kind):
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(4, 3))
    # Each round's client mean lies near the model the server holds then; the sizes
    # vary so that Yogi's sign(v - Delta^2) takes both signs over the rounds.
    offsets = [rng.normal(scale=s, size=(4, 3)) for s in (0.5, 0.01, 0.2)]
    cfg = ServerConfig(optimizer=kind, lr=ETA, beta1=BETA1, beta2=BETA2, tau=TAU)
    state = {"w": torch.tensor(x0)}
    moments: dict[str, torch.Tensor] = {}
    aggregates = []
    for off in offsets:
        aggregate = {"w": state["w"] + torch.tensor(off)}
        aggregates.append(aggregate["w"].numpy().copy())
        state, moments = server_step(state, aggregate, moments, cfg, ["w"])
    paper = paper_rounds(kind, x0, aggregates)
    assert np.allclose(state["w"].numpy(), paper, rtol=0, atol=1e-12)
