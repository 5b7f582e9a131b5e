"""Mixed vectors of real, integer, categorical and binary variables."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .base import Space
from .variables import Binary, Categorical, Integer, Real, Variable, variable_from_spec


class MixedSpace(Space):
    """A vector space of named variables; one design is a float row ``[d]``.

    >>> space = MixedSpace([Real("x", 0, 1), Categorical("material", ["steel", "titanium"])])
    """

    kind = "mixed"

    def __init__(self, variables: Iterable[Variable]) -> None:
        self.variables: list[Variable] = list(variables)
        if not self.variables:
            raise ValueError("a MixedSpace needs at least one variable")
        names = [v.name for v in self.variables]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate variable names: {dupes}")
        self.names: list[str] = names
        bounds = torch.tensor([v.bounds for v in self.variables], dtype=torch.float64).T
        self.bounds: torch.Tensor = bounds  # [2, d]
        kinds = [v.kind for v in self.variables]
        self.real_idx = [i for i, k in enumerate(kinds) if k == "real"]
        self.integer_idx = [i for i, k in enumerate(kinds) if k == "integer"]
        self.categorical_idx = [i for i, k in enumerate(kinds) if k == "categorical"]
        self.binary_idx = [i for i, k in enumerate(kinds) if k == "binary"]
        self.discrete_mask = torch.tensor([k != "real" for k in kinds])  # [d]
        self.log_mask = torch.tensor([isinstance(v, Real) and v.log for v in self.variables])  # [d]

    @classmethod
    def box(cls, n: int, low: float = 0.0, high: float = 1.0, prefix: str = "x") -> MixedSpace:
        """``n`` real variables named x0..x{n-1}, all in [low, high]."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return cls(Real(f"{prefix}{i}", low, high) for i in range(n))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.variables),)

    @property
    def dim(self) -> int:
        return len(self.variables)

    def __len__(self) -> int:
        return len(self.variables)

    def __repr__(self) -> str:
        return f"MixedSpace({len(self.variables)} variables: {', '.join(self.names[:6])}{', ...' if self.dim > 6 else ''})"

    def __getitem__(self, name: str) -> Variable:
        try:
            return self.variables[self.names.index(name)]
        except ValueError:
            raise KeyError(f"unknown variable {name!r}; known: {self.names}") from None

    def index(self, name: str) -> int:
        """Column index of a variable, with a clear error for unknown names."""
        if name not in self.names:
            raise KeyError(f"unknown variable {name!r}; known: {self.names}")
        return self.names.index(name)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """Uniform designs ``[n, d]`` (log-uniform for log reals, uniform over choices)."""
        u = torch.rand((n, self.dim), generator=generator, dtype=torch.float64, device=device or "cpu")
        return self.from_unit(u)

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Map points of the unit cube ``[n, d]`` onto the space (discrete dims floored into bins)."""
        bounds = self.bounds.to(u.device)
        low, high = bounds[0], bounds[1]
        x = low + u * (high - low)
        if bool(self.log_mask.any()):
            lm = self.log_mask.to(u.device)
            loglow, loghigh = torch.log(low[lm]), torch.log(high[lm])
            x[:, lm] = torch.exp(loglow + u[:, lm] * (loghigh - loglow))
        dm = self.discrete_mask.to(u.device)
        if bool(dm.any()):
            # each of the (high - low + 1) values gets an equal share of [0, 1)
            span = (high - low + 1)[dm]
            x[:, dm] = torch.minimum(low[dm] + torch.floor(u[:, dm] * span), high[dm])
        return x

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of ``from_unit`` up to rounding: ``[n, d]`` in [0, 1]."""
        bounds = self.bounds.to(x.device)
        low, high = bounds[0], bounds[1]
        u = (x - low) / (high - low)
        if bool(self.log_mask.any()):
            lm = self.log_mask.to(x.device)
            u[:, lm] = (torch.log(x[:, lm]) - torch.log(low[lm])) / (torch.log(high[lm]) - torch.log(low[lm]))
        return u

    def repair(self, x: torch.Tensor) -> torch.Tensor:
        """Clip to bounds and round discrete variables to their nearest legal value."""
        bounds = self.bounds.to(x.device, x.dtype)
        x = torch.maximum(torch.minimum(x, bounds[1]), bounds[0])
        dm = self.discrete_mask.to(x.device)
        if bool(dm.any()):
            x = torch.where(dm, torch.round(x), x)
        return x

    # ---------------------------------------------------------------- validation
    def invalid_rows(self, x: torch.Tensor) -> dict[int, str]:
        bounds = self.bounds.to(x.device, x.dtype)
        bad: dict[int, str] = {}
        nonfinite = ~torch.isfinite(x)
        below = x < bounds[0]
        above = x > bounds[1]
        dm = self.discrete_mask.to(x.device)
        fractional = dm & (x != torch.round(x))
        problems = nonfinite | below | above | fractional
        rows = torch.nonzero(problems.any(dim=1)).flatten().tolist()
        if not rows:
            return bad
        xs = x[rows].detach().cpu()
        for r, row in zip(rows, xs):
            col = int(torch.nonzero(problems[r]).flatten()[0])
            v = self.variables[col]
            value = float(row[col])
            if not math.isfinite(value):
                bad[r] = f"variable {v.name!r} is {value}"
            elif fractional[r, col]:
                bad[r] = f"variable {v.name!r} ({v.kind}) must be a whole number, got {value}"
            else:
                lo, hi = v.bounds
                bad[r] = f"variable {v.name!r} = {value} is outside [{lo}, {hi}]"
        return bad

    # -------------------------------------------------------------- conversions
    def to_frame(self, x: torch.Tensor) -> pd.DataFrame:
        """Readable values: choice labels for categoricals, ints, bools."""
        arr = self.check_batch(x).detach().cpu().numpy().astype(np.float64, copy=False)
        columns: dict[str, Any] = {}
        for i, v in enumerate(self.variables):
            col = arr[:, i]
            if isinstance(v, Categorical):
                idx = np.clip(np.nan_to_num(col, nan=0).round().astype(np.int64), 0, len(v.choices) - 1)
                values = np.asarray(v.choices, dtype=object)[idx]
                columns[v.name] = np.where(np.isnan(col), None, values)
            elif isinstance(v, Integer):
                columns[v.name] = pd.array(np.where(np.isnan(col), np.nan, col.round()), dtype="Int64")
            elif isinstance(v, Binary):
                columns[v.name] = col >= 0.5
            else:
                columns[v.name] = col
        return pd.DataFrame(columns)

    def from_frame(self, frame: pd.DataFrame | pd.Series | dict | Sequence[dict]) -> torch.Tensor:
        """Encode readable rows (DataFrame, one Series/dict, or list of dicts) as ``[n, d]``."""
        if isinstance(frame, pd.Series):
            frame = frame.to_frame().T
        elif isinstance(frame, dict):
            frame = pd.DataFrame([frame])
        elif not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(list(frame))
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise ValueError(f"missing columns for variables {missing}")
        out = np.empty((len(frame), self.dim), dtype=np.float64)
        for i, v in enumerate(self.variables):
            col = frame[v.name]
            if isinstance(v, Categorical):
                lookup = {c: j for j, c in enumerate(v.choices)}
                codes = []
                for value in col:
                    if value in lookup:
                        codes.append(lookup[value])
                    elif isinstance(value, (int, float, np.integer, np.floating)) and float(value) in range(len(v.choices)):
                        codes.append(int(value))
                    else:
                        raise ValueError(f"variable {v.name!r}: unknown choice {value!r}; choices are {list(v.choices)}")
                out[:, i] = codes
            else:
                try:
                    out[:, i] = pd.to_numeric(col, errors="raise").astype(np.float64)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"variable {v.name!r}: values must be numeric ({err})") from None
        return torch.from_numpy(out)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "variables": [v.to_spec() for v in self.variables]}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> MixedSpace:
        return cls(variable_from_spec(v) for v in spec["variables"])
