"""Objectives and constraints.

Users state objectives in their own direction; internally everything is
minimized (``sign * value``). A constraint is feasible when its value is at
most its bound (``<=``) or at least it (``>=``); internally it becomes a
violation ``g`` with ``g <= 0`` feasible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

_DIRECTIONS = {"minimize": 1.0, "min": 1.0, "maximize": -1.0, "max": -1.0}
_SENSES = {"<=": 1.0, ">=": -1.0}


@dataclass(frozen=True)
class Objective:
    """A named quantity to minimize or maximize; ``ref`` is an optional reference value (user's direction)."""

    name: str
    direction: str = "minimize"
    ref: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"objective name must be a non-empty string, got {self.name!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(f"objective {self.name!r}: unknown direction {self.direction!r}; use 'minimize' or 'maximize'")
        object.__setattr__(self, "direction", "minimize" if _DIRECTIONS[self.direction] > 0 else "maximize")
        if self.ref is not None and not math.isfinite(self.ref):
            raise ValueError(f"objective {self.name!r}: reference value must be finite, got {self.ref}")

    @property
    def sign(self) -> float:
        """+1 for minimize, -1 for maximize: ``sign * value`` is minimized."""
        return _DIRECTIONS[self.direction]

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction, "ref": self.ref}


@dataclass(frozen=True)
class Constraint:
    """A named quantity that must satisfy ``value <= bound`` (sense '<=') or ``value >= bound`` (sense '>=')."""

    name: str
    bound: float = 0.0
    sense: str = "<="

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"constraint name must be a non-empty string, got {self.name!r}")
        if self.sense not in _SENSES:
            raise ValueError(f"constraint {self.name!r}: unknown sense {self.sense!r}; use '<=' or '>='")
        if not math.isfinite(self.bound):
            raise ValueError(f"constraint {self.name!r}: bound must be finite, got {self.bound}")

    def violation(self, value: torch.Tensor) -> torch.Tensor:
        """Signed violation: <= 0 when satisfied, positive by how much it is missed."""
        return _SENSES[self.sense] * (value - self.bound)

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "bound": self.bound, "sense": self.sense}


def _coerce(items: Sequence[Any], cls: type, what: str) -> list[Any]:
    """Items as ``cls`` objects: instances as they are, a bare name, or a tuple of constructor arguments."""
    out = []
    for item in items:
        if isinstance(item, cls):
            out.append(item)
        elif isinstance(item, str):
            out.append(cls(item))
        elif isinstance(item, tuple):
            out.append(cls(*item))
        else:
            raise TypeError(f"cannot make {what} from {item!r}")
    _check_unique([o.name for o in out], what)
    return out


def as_objectives(items: Sequence[Objective | str | tuple] | str, default: str = "minimize",
                  directions: Mapping[str, str] | None = None) -> list[Objective]:
    """Accept Objective objects, bare names or (name, direction) tuples (or one bare name). A bare name takes its
    direction from ``directions`` (a domain's natural directions) or else ``default``."""
    if isinstance(items, str):
        items = (items,)
    directions = directions or {}
    items = [(item, directions.get(item, default)) if isinstance(item, str) else item for item in items]
    out = _coerce(items, Objective, "objective")
    if not out:
        raise ValueError("at least one objective is required")
    return out


def as_constraints(items: Sequence[Constraint | str | tuple] | str) -> list[Constraint]:
    """Accept Constraint objects, bare names (``<= 0``) or (name, bound[, sense]) tuples (or one bare name)."""
    return _coerce((items,) if isinstance(items, str) else items, Constraint, "constraint")


def _check_unique(names: list[str], what: str) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate {what} names: {dupes}")


def objective_signs(objectives: Sequence[Objective], device: torch.device | str | None = None) -> torch.Tensor:
    """``[k]`` tensor of +1/-1 turning user values into minimized values."""
    return torch.tensor([o.sign for o in objectives], dtype=torch.float64, device=device)


def violations(constraints: Sequence[Constraint], values: torch.Tensor) -> torch.Tensor:
    """Constraint values ``[n, c]`` -> signed violations ``[n, c]`` (<= 0 feasible)."""
    if not constraints:
        return values.new_zeros((values.shape[0], 0))
    sense = torch.tensor([_SENSES[c.sense] for c in constraints], dtype=values.dtype, device=values.device)
    bound = torch.tensor([c.bound for c in constraints], dtype=values.dtype, device=values.device)
    return sense * (values - bound)
