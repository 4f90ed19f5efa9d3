"""Value ranges declared on config fields, so a parameter states what it accepts where it
is defined::

    alpha: NonNegative = 0.1                      # Annotated[float, Range(low=0)]
    lr: Annotated[float, Range(low=0, low_open=True)] = 0.01

The config builder (``fedcmi.config.build_dataclass``) checks every value against its
ranges after the type check and names the dotted key in its error; the reference page
shows the range beside the type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any


@dataclass(frozen=True)
class Range:
    """The interval a number must lie in; None leaves that side open-ended."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def admits(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"a value in {left}{self.low:g}, {self.high:g}{right}"


@dataclass(frozen=True, eq=False)
class OneOf:
    """A name one of the registries of :mod:`fedcmi.registry` knows (``server.optimizer``,
    ``robustness.rule``, ...); the error lists the registered names."""

    registry: Any  # a fedcmi.registry.Registry (this module imports nothing of the project)

    def admits(self, value: Any) -> bool:
        return value in self.registry

    def __str__(self) -> str:
        return f"one of {', '.join(map(repr, self.registry.names()))}{self.registry.failures()}"


NonNegative = Annotated[float, Range(low=0.0)]
Positive = Annotated[float, Range(low=0.0, low_open=True)]
Fraction = Annotated[float, Range(low=0.0, high=1.0, high_open=True)]  # momentum, rates
Probability = Annotated[float, Range(low=0.0, high=1.0)]
PositiveInt = Annotated[int, Range(low=1)]
NonNegativeInt = Annotated[int, Range(low=0)]
