"""A tiny name -> object registry used for every extension point.

Datasets, encoders and algorithms each have one registry, so adding a method is one
module plus one ``@REGISTRY.register("name")`` line instead of an if/elif ladder.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to registered objects, with helpful errors for unknown names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items:
            hint = difflib.get_close_matches(name, self._items, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}{extra}; registered: {', '.join(sorted(self._items))}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
