"""Targets of a counterfactual search: parsing, validation, and satisfaction as constraint violations.

A target names one predicted property of the domain (an objective or a constraint of it) and says
what the counterfactual must achieve:

- ``(lower, upper)``: a range for a continuous property; ``None`` leaves a side open;
- a set of allowed values, for a class or an integer-coded property (``{1}``, ``{"2", "3"}`` is an error:
  properties are numbers);
- ``"minimize"`` / ``"maximize"``: no requirement, but an extra objective of the search.

Range and class targets become one violation each (``<= 0`` satisfied, positive by how far the
prediction is from the allowed values), so the search is guided towards them, not only told yes or no.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

_DIRECTIONS = {"minimize": "minimize", "min": "minimize", "maximize": "maximize", "max": "maximize"}


@dataclass(frozen=True)
class Target:
    """One parsed target on the domain output ``name``.

    kind: "range" (``lower`` / ``upper``, None = open), "classes" (``classes``, sorted),
    "minimize" or "maximize". ``source`` is "objective" or "constraint" of the wrapped domain and
    ``index`` the column in that block of its outputs.
    """

    name: str
    kind: str
    source: str
    index: int
    lower: float | None = None
    upper: float | None = None
    classes: tuple[float, ...] = ()

    @property
    def is_constraint(self) -> bool:
        return self.kind in ("range", "classes")

    def describe(self) -> str:
        """Readable form, used in messages: ``mass in [None, 2.5]``, ``valid in {1}``, ``maximize cost``."""
        if self.kind == "range":
            lo = "-inf" if self.lower is None else f"{self.lower:g}"
            hi = "inf" if self.upper is None else f"{self.upper:g}"
            return f"{self.name} in [{lo}, {hi}]"
        if self.kind == "classes":
            return f"{self.name} in {{{', '.join(f'{c:g}' for c in self.classes)}}}"
        return f"{self.kind} {self.name}"

    def to_spec(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "lower": self.lower, "upper": self.upper,
                "classes": list(self.classes)}

    def violation(self, y: torch.Tensor) -> torch.Tensor:
        """``[n]`` violation of predictions ``y: [n]``: <= 0 satisfied, else the distance to the allowed values."""
        if self.kind == "range":
            v = torch.full_like(y, -float("inf"))
            if self.lower is not None:
                v = torch.maximum(v, self.lower - y)
            if self.upper is not None:
                v = torch.maximum(v, y - self.upper)
            return v
        if self.kind == "classes":
            allowed = torch.tensor(self.classes, dtype=y.dtype, device=y.device)
            return (y.unsqueeze(1) - allowed).abs().amin(dim=1)
        raise ValueError(f"target {self.describe()!r} is an objective, not a requirement")


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number or None, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{what} is NaN")
    return value


def parse_targets(targets: Mapping[str, Any], objective_names: Sequence[str],
                  constraint_names: Sequence[str]) -> list[Target]:
    """Validate ``targets`` (property name -> spec) against the domain's outputs; returns them in order."""
    if not isinstance(targets, Mapping):
        raise TypeError(f"targets must be a dict of property name -> (lower, upper), a set of classes, "
                        f"'minimize' or 'maximize'; got {type(targets).__name__}")
    if not targets:
        raise ValueError("targets is empty: name at least one property and what it must reach")
    known = list(objective_names) + list(constraint_names)
    out: list[Target] = []
    for name, spec in targets.items():
        if name not in known:
            raise ValueError(f"unknown property {name!r} in targets; the domain predicts: {known}")
        source, index = ("objective", list(objective_names).index(name)) if name in objective_names \
            else ("constraint", list(constraint_names).index(name))
        out.append(_parse_one(name, spec, source, index))
    if not any(t.is_constraint for t in out):
        raise ValueError("targets only minimize or maximize properties; give at least one range or set of "
                         "classes that a counterfactual must reach")
    return out


def _parse_one(name: str, spec: Any, source: str, index: int) -> Target:
    if isinstance(spec, str):
        direction = _DIRECTIONS.get(spec.lower())
        if direction is None:
            raise ValueError(f"target {name!r}: unknown spec {spec!r}; use (lower, upper), a set of classes, "
                             f"'minimize' or 'maximize'")
        return Target(name, direction, source, index)
    if isinstance(spec, (set, frozenset)):
        if not spec:
            raise ValueError(f"target {name!r}: the set of allowed classes is empty, so no design can reach it")
        classes = tuple(sorted(_number(c, f"target {name!r}: class {c!r}") for c in spec))
        return Target(name, "classes", source, index, classes=classes)
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2:
            raise ValueError(f"target {name!r}: a range is (lower, upper), got {len(spec)} values {spec!r}")
        lower = None if spec[0] is None else _number(spec[0], f"target {name!r}: lower bound")
        upper = None if spec[1] is None else _number(spec[1], f"target {name!r}: upper bound")
        if lower is None and upper is None:
            raise ValueError(f"target {name!r}: range (None, None) asks nothing; give a lower or an upper bound")
        if lower is not None and upper is not None and lower > upper:
            raise ValueError(f"target {name!r}: infeasible range, lower bound {lower:g} > upper bound {upper:g}")
        if (lower is not None and math.isinf(lower) and lower > 0) or (upper is not None and math.isinf(upper) and upper < 0):
            raise ValueError(f"target {name!r}: infeasible range ({lower}, {upper})")
        return Target(name, "range", source, index, lower=lower, upper=upper)
    raise TypeError(f"target {name!r}: bad spec {spec!r}; use (lower, upper) with None for an open side, "
                    f"a set of allowed classes, 'minimize' or 'maximize'")
