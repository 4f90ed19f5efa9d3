"""The ``robustness.rule`` entries, one module each (see
:class:`fedcmi.core.aggregation.AggregationRule`)."""
