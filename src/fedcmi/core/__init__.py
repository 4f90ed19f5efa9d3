"""The algorithm core: pure math with no run machinery (aggregation, local-training
steps, the floored dominance ratio, linear probes, the reporting protocol, atomic writes).
It depends on :mod:`fedcmi.config` alone."""
