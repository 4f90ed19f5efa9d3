# src/fedcmi/core/aggregation_rules/unweighted_mean.py
"""Every client counts once, whatever sample count it reports (a count the server cannot
verify): sum_k theta_k / K."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from fedcmi.config import RobustnessConfig
from fedcmi.core.aggregation import AggregationRule, weighted_mean
from fedcmi.registry import AGGREGATION_RULES


@AGGREGATION_RULES.register("unweighted-mean")
class UnweightedMean(AggregationRule):
    def combine(
        self, tensors: Sequence[Tensor], weights: Sequence[float], options: RobustnessConfig
    ) -> Tensor:
        return weighted_mean(tensors, [1.0] * len(tensors))
