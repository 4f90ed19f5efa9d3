"""Federated methods: one module per method, each registered by name.

Add a method by adding a module here whose class subclasses
:class:`fedcmi.algorithms.base.Algorithm` and carries ``@ALGORITHMS.register("name")``;
the registry finds it (see :mod:`fedcmi.registry`).
"""

from __future__ import annotations

from typing import Any

from fedcmi.registry import ALGORITHMS


def build_algorithm(name: str, params: Any) -> Any:
    """An instance of the registered algorithm ``name`` with its ``params``."""
    return ALGORITHMS.get(name)(params)


__all__ = ["ALGORITHMS", "build_algorithm"]
