"""Algorithm registry: one module per method, registered by name."""

from __future__ import annotations

from typing import Any

from fedcmi.registry import Registry

ALGORITHMS: Registry[type] = Registry("algorithm")


def build_algorithm(name: str, params: Any):
    return ALGORITHMS.get(name)(params)


from fedcmi.algorithms import (  # noqa: E402,F401
    fedavg,
    fedavg_ogm,
    fedavg_pmr,
    fedcmi,
    fedprox,
    unimodal,
)

__all__ = ["ALGORITHMS", "build_algorithm"]
