"""``trimmed-mean``: the coordinate-wise mean after dropping floor(f n) values at each end,
f = ``robustness.trim_fraction``; unweighted like the median."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from fedcmi.config import RobustnessConfig
from fedcmi.core.aggregation import AggregationRule, trimmed_mean
from fedcmi.registry import AGGREGATION_RULES


@AGGREGATION_RULES.register("trimmed-mean")
class TrimmedMean(AggregationRule):
    def combine(
        self, tensors: Sequence[Tensor], weights: Sequence[float], options: RobustnessConfig
    ) -> Tensor:
        return trimmed_mean(tensors, options.trim_fraction)
