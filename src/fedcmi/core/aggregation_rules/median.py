"""``median``: the coordinate-wise median, unweighted (a client's sample count cannot be
verified); the mean of the two middle values for an even count."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from fedcmi.config import RobustnessConfig
from fedcmi.core.aggregation import AggregationRule, coordinate_median
from fedcmi.registry import AGGREGATION_RULES


@AGGREGATION_RULES.register("median")
class Median(AggregationRule):
    def combine(
        self, tensors: Sequence[Tensor], weights: Sequence[float], options: RobustnessConfig
    ) -> Tensor:
        return coordinate_median(tensors)
