"""Reading a stored study without its domain's code: tables, Pareto fronts, hypervolume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .objectives import Constraint, Objective, violations
from .pareto import hypervolume as _hypervolume
from .pareto import is_nondominated
from .spaces import Space, space_from_spec
from .storage import Storage, StudyRecord, open_storage


class StudyResults:
    """Everything stored about one study, decoded with the spec stored beside it."""

    def __init__(self, storage: Storage, record: StudyRecord) -> None:
        self.storage = storage
        self.record = record
        spec = record.spec
        self.name = record.name
        self.space: Space = space_from_spec(spec["domain"]["space"])
        self.objectives = [Objective(**o) for o in spec["domain"]["objectives"]]
        self.constraints = [Constraint(**c) for c in spec["domain"]["constraints"]]
        self._raw: dict[str, Any] | None = None

    @classmethod
    def load(cls, storage: Storage | str, name: str) -> StudyResults:
        if not isinstance(storage, Storage):
            storage = open_storage(storage, create=False)
        return cls(storage, storage.get_study(name))

    def refresh(self) -> StudyResults:
        self._raw = None
        self.record = self.storage.get_study(self.name)
        return self

    @property
    def raw(self) -> dict[str, Any]:
        if self._raw is None:
            self._raw = self.storage.load_evaluations(self.record.id, len(self.objectives), len(self.constraints))
        return self._raw

    def __len__(self) -> int:
        return len(self.raw["idx"])

    def counters(self) -> dict[str, Any]:
        """Stored call counters and time split (optimizer vs evaluation seconds), as ``Study.counters``."""
        return self.storage.load_counters(self.record.id)

    # ----------------------------------------------------------------- arrays
    def designs(self) -> torch.Tensor:
        """Encoded designs ``[n, *space.shape]`` in evaluation order."""
        return self.space.decode_rows(self.raw["x"])

    def feasible_mask(self) -> np.ndarray:
        """``[n]`` bool: evaluated without error and every constraint satisfied."""
        raw = self.raw
        feasible = raw["ok"].copy()
        if self.constraints:
            g = violations(self.constraints, torch.from_numpy(raw["g"].copy()))
            feasible &= (g <= 0).all(dim=1).numpy()
        return feasible

    def minimized(self) -> np.ndarray:
        """Objectives ``[n, k]`` with maximized ones negated (NaN where failed)."""
        signs = np.array([o.sign for o in self.objectives])
        return self.raw["f"] * signs

    # ------------------------------------------------------------------ tables
    def frame(self) -> pd.DataFrame:
        """One row per evaluated design: readable parameters, objectives, constraints, status, timings."""
        raw = self.raw
        params = self.space.to_frame(self.designs())
        obj_names = [o.name for o in self.objectives]
        con_names = [c.name for c in self.constraints]
        clash = set(params.columns) & set(obj_names + con_names)
        if clash:
            params = params.rename(columns={c: f"param_{c}" for c in clash})
        out = pd.DataFrame({"index": raw["idx"], "batch": raw["batch"]})
        out = pd.concat([out, params], axis=1)
        for j, name in enumerate(obj_names):
            out[name] = raw["f"][:, j]
        for j, name in enumerate(con_names):
            out[name] = raw["g"][:, j]
        out["feasible"] = self.feasible_mask()
        out["status"] = np.where(raw["ok"], "ok", "failed")
        out["error"] = raw["error"]
        out["seconds"] = raw["seconds"]
        out["worker"] = raw["worker"]
        return out.set_index("index")

    def pareto_mask(self) -> np.ndarray:
        """``[n]`` bool: feasible and not dominated by any other feasible design."""
        feasible = self.feasible_mask()
        mask = np.zeros(len(feasible), dtype=bool)
        idx = np.flatnonzero(feasible)
        if len(idx):
            mask[idx] = is_nondominated(torch.from_numpy(self.minimized()[idx])).numpy()
        return mask

    def pareto_front(self) -> pd.DataFrame:
        """The feasible non-dominated rows of :meth:`frame`."""
        return self.frame()[self.pareto_mask()]

    # --------------------------------------------------------------- indicators
    def reference_point(self, ref: Sequence[float] | None = None) -> np.ndarray:
        """Reference point in minimized form, from ``ref`` (user's directions) or the objectives' own refs."""
        k = len(self.objectives)
        if ref is None:
            if any(o.ref is None for o in self.objectives):
                missing = [o.name for o in self.objectives if o.ref is None]
                raise ValueError(f"give a reference point: objectives {missing} have no ref value")
            ref = [o.ref for o in self.objectives]
        r = np.asarray(ref, dtype=np.float64).reshape(-1)
        if r.shape[0] != k:
            raise ValueError(f"reference point has {r.shape[0]} values; the study has {k} objectives "
                             f"({', '.join(o.name for o in self.objectives)})")
        return r * np.array([o.sign for o in self.objectives])

    def hypervolume(self, ref: Sequence[float] | None = None) -> float:
        """Hypervolume of the feasible designs up to ``ref`` (given in the user's directions)."""
        r = self.reference_point(ref)
        feasible = self.feasible_mask()
        return _hypervolume(self.minimized()[feasible], r)

    def hypervolume_trace(self, ref: Sequence[float] | None = None, points: int = 50) -> pd.DataFrame:
        """Hypervolume of the first ``e`` evaluations at up to ``points`` values of ``e`` (batch ends)."""
        r = self.reference_point(ref)
        f = self.minimized()
        feasible = self.feasible_mask()
        batch = self.raw["batch"]
        ends = np.flatnonzero(np.diff(batch, append=-1) != 0) + 1  # evaluations count at each batch end
        if len(ends) > points:
            ends = ends[np.unique(np.linspace(0, len(ends) - 1, points).round().astype(int))]
        rows = []
        front = np.empty((0, f.shape[1]))
        last = 0
        for end in ends:
            new = f[last:end][feasible[last:end] & np.all(f[last:end] < r, axis=1)]
            if len(new):
                pool = np.vstack([front, new])
                front = pool[is_nondominated(torch.from_numpy(pool)).numpy()]
            rows.append({"evaluations": int(end), "hypervolume": _hypervolume(front, r) if len(front) else 0.0})
            last = end
        return pd.DataFrame(rows, columns=["evaluations", "hypervolume"])
