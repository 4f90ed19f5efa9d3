"""FedProx (Li et al., MLSys 2020): FedAvg plus (mu/2)||theta - theta_g||^2 locally.

The proximal term is applied as ``grad += mu * (theta - theta_g)`` after backward.
Default mu = 0.01 (the FedProx paper's grid is {0.001, 0.01, 0.1, 1}); tune it on val.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedcmi.algorithms.fedavg import FedAvg
from fedcmi.bounds import NonNegative
from fedcmi.registry import ALGORITHMS


@ALGORITHMS.register("fedprox")
class FedProx(FedAvg):
    @dataclass
    class Params(FedAvg.Params):
        prox_mu: NonNegative = 0.01
        """mu of the proximal term (mu / 2) ||theta - theta_g||^2."""

    params: Params

    def prox_mu(self) -> float:
        return self.params.prox_mu
