"""Variable kinds of a mixed vector space.

Every variable is encoded as one float column of the design tensor:
a real or integer as its value, a categorical as the index of its choice,
a binary as 0.0 / 1.0. Optimizers see these encodings and the bounds below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"variable name must be a non-empty string, got {name!r}")


@dataclass(frozen=True)
class Real:
    """A continuous variable in [low, high] (sampled log-uniformly when log=True)."""

    name: str
    low: float
    high: float
    log: bool = False
    kind: ClassVar[str] = "real"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"variable {self.name!r}: need finite low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"variable {self.name!r}: log scale needs low > 0, got {self.low}")

    @property
    def bounds(self) -> tuple[float, float]:
        return float(self.low), float(self.high)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Integer:
    """An integer variable in [low, high], both included."""

    name: str
    low: int
    high: int
    kind: ClassVar[str] = "integer"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if int(self.low) != self.low or int(self.high) != self.high or self.low >= self.high:
            raise ValueError(f"variable {self.name!r}: need integers low < high, got low={self.low}, high={self.high}")

    @property
    def bounds(self) -> tuple[float, float]:
        return float(self.low), float(self.high)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "low": int(self.low), "high": int(self.high)}


@dataclass(frozen=True)
class Categorical:
    """One of a fixed list of choices, encoded as the choice's index."""

    name: str
    choices: tuple = field(default=())
    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "choices", tuple(self.choices))
        if len(self.choices) < 2:
            raise ValueError(f"variable {self.name!r}: a categorical needs at least 2 choices, got {list(self.choices)}")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"variable {self.name!r}: choices must be unique, got {list(self.choices)}")

    @property
    def bounds(self) -> tuple[float, float]:
        return 0.0, float(len(self.choices) - 1)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "choices": list(self.choices)}


@dataclass(frozen=True)
class Binary:
    """A yes/no switch, encoded as 0.0 or 1.0."""

    name: str
    kind: ClassVar[str] = "binary"

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def bounds(self) -> tuple[float, float]:
        return 0.0, 1.0

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}


Variable = Real | Integer | Categorical | Binary
_KINDS = {cls.kind: cls for cls in (Real, Integer, Categorical, Binary)}


def variable_from_spec(spec: dict[str, Any]) -> Variable:
    """Rebuild a variable from its JSON spec (as written by ``to_spec``)."""
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"unknown variable kind {kind!r}; expected one of {sorted(_KINDS)}")
    if kind == "categorical":
        spec["choices"] = tuple(spec["choices"])
    return _KINDS[kind](**spec)
