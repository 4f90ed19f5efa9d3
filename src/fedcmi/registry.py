"""The extension points: one name -> object registry each for algorithms, datasets,
encoders, dataset preparers, server optimisers, aggregation rules, attacks and client
selection rules.

A new entry is one module in the registry's package with a
``@REGISTRY.register("name")`` decorator (or a ``REGISTRY.register("name")(obj)`` call);
nothing else needs editing. A registry imports every module of its package the first
time it is asked for a name, so an entry is found however the program started. This
module imports nothing of the project: :mod:`fedcmi.config` looks names up here without
depending on the packages that fill the registries.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to registered objects, with helpful errors for unknown names.

    ``package`` is the dotted package whose modules register entries; they are imported
    on the first lookup.
    """

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._items: dict[str, T] = {}
        self._discovered = package is None
        self._broken: dict[str, str] = {}  # module -> why it did not import

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def _discover(self) -> None:
        if self._discovered or self.package is None:
            return
        self._discovered = True  # set first: the imported modules may look names up
        package = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(package.__path__):
            module = f"{self.package}.{info.name}"
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - one broken module must not hide the others
                self._broken[module] = f"{type(exc).__name__}: {exc}"

    def get(self, name: str) -> T:
        self._discover()
        if name not in self._items:
            hint = difflib.get_close_matches(name, self._items, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}{extra}; registered: "
                f"{', '.join(sorted(self._items))}{self.failures()}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._items)

    def failures(self) -> str:
        """``; MODULE failed to import (why)`` for each module of the package that did
        not import (empty when all did): an unknown name may live in one of them."""
        self._discover()
        return "".join(f"; {m} failed to import ({why})" for m, why in self._broken.items())

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# Algorithm classes (fedcmi.algorithms.base.Algorithm subclasses with a Params dataclass).
ALGORITHMS: Registry[Any] = Registry("algorithm", "fedcmi.algorithms")
# Dataset builders (fedcmi.data.base.DatasetBuilder subclasses with a Params dataclass).
DATASETS: Registry[Any] = Registry("dataset", "fedcmi.data")
# Encoder factories: (input shape, feature_dim, **options) -> nn.Module.
ENCODERS: Registry[Callable[..., Any]] = Registry("encoder", "fedcmi.models")
# Preparers of the paper's datasets (fedcmi.data.prepare.cache.Preparer).
PREPARERS: Registry[Any] = Registry("preparer", "fedcmi.data.prepare")
# Server optimisers, the step on the aggregate (fedcmi.core.server_opt.ServerOptimizer).
SERVER_OPTIMIZERS: Registry[Any] = Registry("server optimiser", "fedcmi.core.server_optimizers")
# Aggregation rules, per modality side (fedcmi.core.aggregation.AggregationRule).
AGGREGATION_RULES: Registry[Any] = Registry("aggregation rule", "fedcmi.core.aggregation_rules")
# Attacks of malicious clients (fedcmi.engine.faults.Attack).
ATTACKS: Registry[Any] = Registry("attack", "fedcmi.engine.attacks")
# Client selection rules (fedcmi.engine.federation.Selection).
SELECTIONS: Registry[Any] = Registry("client selection", "fedcmi.engine.selection")
# Partitioners, the split of the training samples over clients
# (fedcmi.engine.federation.Partitioner).
PARTITIONERS: Registry[Any] = Registry("partitioner", "fedcmi.engine.partitioners")
