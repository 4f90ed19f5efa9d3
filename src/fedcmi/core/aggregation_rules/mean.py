"""``mean``: sum_k n_k theta_k / sum_k n_k, n_k the client's sample count (FedAvg's and
FedCMI's rule)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from fedcmi.config import RobustnessConfig
from fedcmi.core.aggregation import AggregationRule, weighted_mean
from fedcmi.registry import AGGREGATION_RULES


@AGGREGATION_RULES.register("mean")
class Mean(AggregationRule):
    def combine(
        self, tensors: Sequence[Tensor], weights: Sequence[float], options: RobustnessConfig
    ) -> Tensor:
        return weighted_mean(tensors, weights)
