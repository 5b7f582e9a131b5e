"""3-D wings: drag against structural mass against fuel volume at a required lift (issue 12, part 2).

A design is a planform (span, root chord, taper, quarter-chord sweep, tip twist, dihedral) and a root and a tip
section, each made from the airfoil database of :mod:`.airfoil_data` as 18 Kulfan values (:mod:`.sections`):
a blend of two base airfoils (default: the laminar NACA 65(2)-415 and NASA's LS(1)-0417, the GA(W)-1 general
aviation section), its thickness distribution scaled to a chosen thickness-to-chord ratio and its camber line
(with the leading-edge mode) scaled by a factor. The Kulfan surfaces are linear in the parameters, so the
thickness and camber scalings are exact and a blend of non-crossing sections never crosses. Three numbers per
section keep the search space small (12 variables) while spanning the trades that matter to the wing: thickness
(fuel, structure, profile drag), camber (maximum lift, drag) and the section family (laminar low drag against
high lift).

Every design is lofted into a closed mesh (:mod:`.loft`; checked watertight, consistently wound, of positive
volume), analyzed at cruise at the required lift (:mod:`.wing_aero`: vortex lattice + NeuralFoil), and sized:

- ``drag`` (N, minimized): induced + profile drag at the trimmed cruise angle;
- ``structural_mass`` (kg, minimized): a skin-mass proxy; the skin of each spanwise strip is as thick as the
  bending moment at the ultimate load factor needs (the vortex-lattice span loading, the upper and lower skins
  of a box 0.9 of the section's thickness deep and half the chord wide, normal to the swept axis, carrying it
  as a couple at the allowable stress), at least a minimum gauge; mass = density x sum(strip skin area x
  thickness), skin areas from the mesh;
- ``fuel_volume`` (litres, maximized): the mesh's enclosed volume (gross; the usable share between the spars
  is smaller);
- constraints: ``span <= max_span`` and ``stall_margin >= min_stall_margin``, where ``stall_margin`` is the
  critical-section maximum lift over the lift coefficient needed at the required stall speed, minus 1.

``Wing.analyze`` returns every quantity (CL, CDi, CD, L/D, angle of attack, maximum lift, stall speed, ...);
``Wing.mesh`` / ``Wing.export`` give the trimesh and STL / GLB files; ``Wing.render`` draws 3-D views.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.domain import Domain
from workbench.objectives import Constraint, Objective
from workbench.spaces import MixedSpace, Real

from . import sections
from .loft import GeometryError, Loft, WingShape, check_mesh, export_mesh, loft, measures
from .wing_aero import FlightCondition, cruise

#: design variables: name -> (low, high, unit / meaning)
VARIABLES: dict[str, tuple[float, float, str]] = {
    "span": (7.0, 15.0, "m, tip to tip (projected)"),
    "root_chord": (0.8, 2.6, "m"),
    "taper": (0.3, 1.0, "tip chord / root chord"),
    "sweep": (0.0, 25.0, "degrees, quarter-chord line"),
    "twist": (-6.0, 2.0, "degrees, tip relative to root, nose up positive"),
    "dihedral": (0.0, 8.0, "degrees"),
    "root_blend": (0.0, 1.0, "share of the second base airfoil at the root"),
    "tip_blend": (0.0, 1.0, "share of the second base airfoil at the tip"),
    "root_thickness": (0.08, 0.20, "maximum thickness / chord at the root"),
    "tip_thickness": (0.08, 0.20, "maximum thickness / chord at the tip"),
    "root_camber": (0.0, 1.6, "camber-line scale of the blended root section"),
    "tip_camber": (0.0, 1.6, "camber-line scale of the blended tip section"),
}
BASES = ("naca652415", "ls417")
OBJECTIVES = ("drag", "structural_mass", "fuel_volume")
_DIRECTION = {"drag": "minimize", "structural_mass": "minimize", "fuel_volume": "maximize"}


@dataclass(frozen=True)
class SkinMaterial:
    """The skin of the mass proxy: aluminium 2024-T3 by default (density kg/m^3, allowable stress Pa at the
    ultimate load, minimum gauge m), sized at the ultimate load factor of a normal-category airplane (3.8 x 1.5)."""

    density: float = 2780.0
    allowable_stress: float = 200e6
    min_gauge: float = 0.8e-3
    load_factor: float = 5.7
    box_depth: float = 0.9  # share of the section's maximum thickness
    box_width: float = 0.5  # share of the chord

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"skin material: {name} must be a positive number, got {value!r}")


def camber_and_thickness(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split sections ``v [..., 18]`` into a camber part (mean of the surface weights on both sides, and the
    leading-edge mode) and a thickness part (half their difference, opposite on the two sides, and the
    trailing-edge thickness); ``v = camber + thickness`` exactly."""
    v = sections.check(v)
    mean = 0.5 * (v[..., sections.UPPER] + v[..., sections.LOWER])
    half = 0.5 * (v[..., sections.UPPER] - v[..., sections.LOWER])
    camber = sections.pack(mean, mean, v[..., sections.LE_WEIGHT], 0.0)
    thickness = sections.pack(half, -half, 0.0, v[..., sections.TE_THICKNESS])
    return camber, thickness


def make_section(base_a: np.ndarray, base_b: np.ndarray, blend: Any, thickness: Any, camber: Any) -> np.ndarray:
    """Sections ``[n, 18]``: ``(1 - blend) base_a + blend base_b``, its thickness part scaled so that the maximum
    thickness is ``thickness`` (fraction of chord), its camber part scaled by ``camber``; arrays ``[n]``. A row
    whose blend has no positive thickness to scale (only possible with a blend outside [0, 1]) comes back NaN,
    which :meth:`~.loft.WingShape.problems` reports."""
    blend, thickness, camber = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (blend, thickness, camber))
    mixed = (1.0 - blend)[:, None] * sections.check(base_a)[None, :] + blend[:, None] * sections.check(base_b)[None, :]
    cam, thick = camber_and_thickness(mixed)
    t_now, _ = sections.thickness(thick)
    scale = np.where(t_now > 0, thickness / np.where(t_now > 0, t_now, 1.0), np.nan)
    return camber[:, None] * cam + scale[:, None] * thick


def skin_mass(shape: WingShape, interval_area: np.ndarray, wetted_area: np.ndarray, strip_lift: np.ndarray,
              edges_eta: np.ndarray, material: SkinMaterial) -> tuple[np.ndarray, np.ndarray]:
    """Skin mass (kg) ``[n]`` and root skin thickness (m) ``[n]`` of wings whose strips (``2K`` from the left tip,
    between span fractions ``edges_eta [2K + 1]``) carry ``strip_lift [n, 2K]`` (N, 1 g) and have skin areas
    ``interval_area [n, 2K]``; the tip caps (the rest of ``wetted_area``) get the minimum gauge."""
    k = strip_lift.shape[1] // 2
    half = 0.5 * shape.span[:, None]
    y_edge = edges_eta[k:][None, :] * half  # [n, K + 1], right half, root to tip
    y_mid = 0.5 * (y_edge[:, 1:] + y_edge[:, :-1])  # [n, K]
    load = material.load_factor * strip_lift[:, k:]  # [n, K]
    arm = np.clip(y_mid[:, None, :] - y_edge[:, :, None], 0.0, None)  # [n, K + 1, K]: strips outboard of an edge
    moment_edge = np.einsum("nek,nk->ne", arm, load)
    moment = 0.5 * (moment_edge[:, 1:] + moment_edge[:, :-1])  # [n, K] strip mean
    eta_mid = 0.5 * (edges_eta[k:][1:] + edges_eta[k:][:-1])
    chord = shape.root_chord[:, None] + (shape.tip_chord - shape.root_chord)[:, None] * eta_mid[None, :]
    sec = (1 - eta_mid)[None, :, None] * shape.root[:, None, :] + eta_mid[None, :, None] * shape.tip[:, None, :]
    t_c, _ = sections.thickness(sec)
    cos_sweep = np.cos(np.radians(shape.sweep))[:, None]
    depth = material.box_depth * t_c * chord
    width = material.box_width * chord * cos_sweep
    gauge = np.maximum(material.min_gauge, moment / cos_sweep / (material.allowable_stress * depth * width))
    strips = np.concatenate([gauge[:, ::-1], gauge], axis=1)  # [n, 2K], mirrored
    caps = np.clip(wetted_area - interval_area.sum(axis=1), 0.0, None)
    mass = material.density * (np.sum(strips * interval_area, axis=1) + caps * material.min_gauge)
    return mass, gauge[:, 0]


class Wing(Domain):
    """3-D wings of a light aircraft: 12 design variables (:data:`VARIABLES`) -> ``drag`` (N), ``structural_mass``
    (kg), ``fuel_volume`` (L) at the lift of ``condition`` (a :class:`~.wing_aero.FlightCondition`), with the
    constraints ``span <= max_span`` (m) and ``stall_margin >= min_stall_margin``.

    ``bases``: the two database airfoils the sections blend (names of :mod:`.airfoil_data`); ``bounds``
    overrides chosen variables' ranges, e.g. ``{"span": (8.0, 13.0)}``; ``objectives`` picks a subset of
    :data:`OBJECTIVES`; ``min_confidence`` adds ``confidence >= value`` (NeuralFoil's lowest analysis confidence
    over the strips at cruise); ``n_span`` strips per half wing (loft, lattice and structure share them),
    ``n_chord`` chordwise lattice panels, ``n_points`` mesh points per section surface; ``model_size`` of
    NeuralFoil. A design that cannot be built (crossing surfaces, an open mesh) or cannot carry the weight
    fails with a message; the study goes on.

    >>> dom = Wing()
    >>> dom.analyze(dom.space.sample(2, torch.Generator().manual_seed(0)))   # every quantity, one row each
    """

    name = "wing"

    def __init__(self, condition: FlightCondition | None = None, bases: Sequence[str] = BASES,
                 objectives: Sequence[str] = OBJECTIVES, max_span: float | None = 12.0,
                 min_stall_margin: float | None = 0.0, min_confidence: float | None = None,
                 bounds: Mapping[str, tuple[float, float]] | None = None, material: SkinMaterial | None = None,
                 n_span: int = 12, n_chord: int = 6, n_points: int = 41, model_size: str = "xlarge",
                 cache_size: int = 4096) -> None:
        if isinstance(objectives, str):
            objectives = (objectives,)
        bad = [o for o in objectives if o not in OBJECTIVES]
        if bad or not objectives:
            raise ValueError(f"unknown or no objectives {bad}; choose from {list(OBJECTIVES)}")
        if len(bases) != 2:
            raise ValueError(f"bases names two database airfoils, got {list(bases)}")
        from .airfoil_data import load_database
        db = load_database()
        self.bases = tuple(str(b).lower() for b in bases)
        self._base_a, self._base_b = db.vector(self.bases[0]), db.vector(self.bases[1])
        ranges = {k: (lo, hi) for k, (lo, hi, _) in VARIABLES.items()}
        for key, (lo, hi) in (bounds or {}).items():
            if key not in ranges:
                raise KeyError(f"bounds given for unknown variable {key!r}; variables: {list(VARIABLES)}")
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"bounds of {key!r} must be finite with low < high, got ({lo}, {hi})")
            ranges[key] = (float(lo), float(hi))
        for key in ("span", "root_chord", "taper", "root_thickness", "tip_thickness"):
            if ranges[key][0] <= 0:
                raise ValueError(f"{key} must stay positive; its lower bound is {ranges[key][0]}")
        space = MixedSpace([Real(k, lo, hi) for k, (lo, hi) in ranges.items()])
        cons = []
        if max_span is not None:
            cons.append(Constraint("span", float(max_span), "<="))
        if min_stall_margin is not None:
            cons.append(Constraint("stall_margin", float(min_stall_margin), ">="))
        if min_confidence is not None:
            if not 0.0 <= min_confidence <= 1.0:
                raise ValueError(f"min_confidence is in [0, 1], got {min_confidence}")
            cons.append(Constraint("confidence", float(min_confidence), ">="))
        super().__init__(space, [Objective(o, _DIRECTION[o]) for o in objectives], cons)
        self.condition = condition or FlightCondition()
        self.material = material or SkinMaterial()
        self.max_span, self.min_stall_margin, self.min_confidence = max_span, min_stall_margin, min_confidence
        self.n_span, self.n_chord, self.n_points, self.model_size = int(n_span), int(n_chord), int(n_points), model_size
        self.cache_size = int(cache_size)
        self._memo: OrderedDict[bytes, dict[str, Any]] = OrderedDict()

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(condition=asdict(self.condition), material=asdict(self.material), bases=list(self.bases),
                   n_span=self.n_span, n_chord=self.n_chord, n_points=self.n_points, model_size=self.model_size)
        return out

    # ------------------------------------------------------------------ designs
    def _as_designs(self, x: Any) -> np.ndarray:
        if isinstance(x, (pd.DataFrame, pd.Series, Mapping)):
            x = self.space.from_frame(x)
        arr = (x.detach().to("cpu", torch.float64).numpy().copy() if isinstance(x, torch.Tensor)
               else np.array(x, dtype=np.float64))
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != self.space.dim:
            raise ValueError(f"designs must be [n, {self.space.dim}] ({', '.join(self.space.names)}); "
                             f"got shape {list(arr.shape)}")
        return arr

    def shapes(self, x: Any) -> WingShape:
        """Designs ``[n, 12]`` (or a frame) -> the :class:`~.loft.WingShape` batch; a GeometryError names the first
        row that is not a wing (NaN, non-positive sizes, crossing sections)."""
        arr = self._as_designs(x)
        return self._shapes(arr, check=True)

    def _shapes(self, arr: np.ndarray, check: bool) -> WingShape:
        col = {k: arr[:, j] for j, k in enumerate(self.space.names)}
        finite = np.isfinite(arr).all(axis=1)
        safe = np.where(finite[:, None], arr, np.array([0.5 * (v.bounds[0] + v.bounds[1])
                                                          for v in self.space.variables])[None, :])
        sc = {k: safe[:, j] for j, k in enumerate(self.space.names)}
        root = make_section(self._base_a, self._base_b, sc["root_blend"], sc["root_thickness"], sc["root_camber"])
        tip = make_section(self._base_a, self._base_b, sc["tip_blend"], sc["tip_thickness"], sc["tip_camber"])
        root[~finite] = np.nan
        tip[~finite] = np.nan
        shape = WingShape(span=col["span"].copy(), root_chord=col["root_chord"].copy(),
                          tip_chord=col["root_chord"] * col["taper"], sweep=col["sweep"].copy(),
                          twist=col["twist"].copy(), dihedral=col["dihedral"].copy(), root=root, tip=tip)
        if check:
            bad = shape.problems()
            if bad:
                row, reason = next(iter(bad.items()))
                raise GeometryError(f"wing {row}: {reason}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""))
        return shape

    def loft(self, x: Any) -> Loft:
        """The lofted meshes (vertex arrays) of designs ``x``."""
        return loft(self.shapes(x), self.n_span, self.n_points)

    def mesh(self, x: Any) -> Any:
        """The checked ``trimesh.Trimesh`` of one design (``x`` one row)."""
        arr = self._as_designs(x)
        if len(arr) != 1:
            raise ValueError(f"mesh() takes one design; got {len(arr)} (use loft(x).mesh(i))")
        return self.loft(arr).mesh(0)

    def export(self, x: Any, folder: str | Path, names: Sequence[str] | None = None,
               formats: Sequence[str] = ("stl", "glb")) -> list[Path]:
        """Write each design's mesh to ``folder/<name>.<format>`` (loaded back and checked); returns the paths."""
        lofted = self.loft(x)
        names = list(names) if names is not None else [f"wing{i}" for i in range(len(lofted))]
        if len(names) != len(lofted):
            raise ValueError(f"{len(names)} names for {len(lofted)} designs")
        out = []
        for i, name in enumerate(names):
            mesh = lofted.mesh(i)
            out += [export_mesh(mesh, Path(folder) / f"{name}.{fmt}") for fmt in formats]
        return out

    # ------------------------------------------------------------------ physics
    def analyze(self, x: Any) -> pd.DataFrame:
        """Every quantity of designs ``x`` (``[n, 12]`` or a frame), one row each: the design variables, the
        planform (``area``, ``aspect_ratio``, ``tip_chord``), the aerodynamics of :func:`~.wing_aero.cruise`,
        ``volume`` (m^3), ``fuel_volume`` (L), ``wetted_area`` (m^2), ``structural_mass`` (kg), ``root_skin`` (m),
        ``seconds`` (per design) and ``error`` (None, or why the design failed; its numbers are then NaN)."""
        arr = self._as_designs(x)
        keys = [a.tobytes() for a in arr]
        found = {k: self._memo[k] for k in keys if k in self._memo}
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            found.update(zip((keys[i] for i in todo), self._compute(arr[todo])))
        for k in keys:
            self._memo[k] = found[k]
            self._memo.move_to_end(k)
        while len(self._memo) > self.cache_size:
            self._memo.popitem(last=False)
        return pd.DataFrame([found[k] for k in keys])

    def _compute(self, arr: np.ndarray) -> list[dict[str, Any]]:
        """Rows of :meth:`analyze` for designs ``arr [n, 12]``; an unexpected exception in a batch is isolated to
        its rows by computing them one at a time."""
        try:
            return self._compute_batch(arr)
        except Exception as err:  # noqa: BLE001 - isolate the failing design, keep the others
            if len(arr) == 1:
                row: dict[str, Any] = dict(zip(self.space.names, map(float, arr[0])))
                row.update(seconds=float("nan"), error=f"{type(err).__name__}: {err}")
                return [row]
            return [r for i in range(len(arr)) for r in self._compute(arr[i:i + 1])]

    def _compute_batch(self, arr: np.ndarray) -> list[dict[str, Any]]:
        started = time.perf_counter()
        n = len(arr)
        rows: list[dict[str, Any]] = [dict(zip(self.space.names, map(float, a))) for a in arr]
        errors: list[str | None] = [None] * n
        for i, reason in self.space.invalid_rows(torch.as_tensor(arr)).items():
            errors[i] = f"invalid design: {reason}"
        shape = self._shapes(arr, check=False)
        for i, reason in shape.problems().items():
            errors[i] = errors[i] or reason
        good = [i for i in range(n) if errors[i] is None]
        values: dict[int, dict[str, float]] = {}
        if good:
            sub = WingShape(**{f: getattr(shape, f)[good] for f in WingShape.__dataclass_fields__})
            lofted = loft(sub, self.n_span, self.n_points)
            meas = measures(lofted)
            for j, i in enumerate(good):
                try:
                    check_mesh(lofted.mesh(j, check=False), name=f"wing {i}")
                except GeometryError as err:
                    errors[i] = str(err)
            aero = cruise(sub, self.condition, self.n_span, self.n_chord, self.model_size)
            strip_lift = np.nan_to_num(aero["strip_lift"])
            mass, root_skin = skin_mass(sub, meas["interval_area"], meas["wetted_area"], strip_lift, lofted.eta,
                                        self.material)
            skip = ("strip_cl", "strip_lift", "errors")
            for j, i in enumerate(good):
                errors[i] = errors[i] or aero["errors"][j]
                values[i] = {k: float(v[j]) for k, v in aero.items() if k not in skip}
                values[i].update(area=float(sub.area[j]), aspect_ratio=float(sub.aspect_ratio[j]),
                                 tip_chord=float(sub.tip_chord[j]), volume=float(meas["volume"][j]),
                                 fuel_volume=1000.0 * float(meas["volume"][j]),
                                 wetted_area=float(meas["wetted_area"][j]), structural_mass=float(mass[j]),
                                 root_skin=float(root_skin[j]))
        per = (time.perf_counter() - started) / n
        columns = None
        for i in range(n):
            if errors[i] is None and i in values:
                rows[i].update(values[i])
                columns = columns or list(values[i])
            rows[i]["seconds"] = per
            rows[i]["error"] = errors[i]
        for i in range(n):  # failed rows get every numeric column as NaN
            for c in columns or []:
                rows[i].setdefault(c, float("nan"))
        return rows

    def evaluate(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """Objectives and constraints of designs ``x [n, 12]`` by name. A chunk with a failed design raises (the
        evaluation engine then bisects it; results are cached, so nothing is computed twice) and a single failed
        design raises its own reason."""
        table = self.analyze(x)
        failed = table["error"].notna().to_numpy()
        if failed.any():
            if len(table) == 1:
                raise GeometryError(str(table["error"].iloc[0]))
            raise GeometryError(f"{int(failed.sum())} of {len(table)} designs failed, e.g. row "
                                f"{int(np.argmax(failed))}: {table['error'][failed].iloc[0]}")
        names = [o.name for o in self.objectives] + [c.name for c in self.constraints]
        return {name: table[name].to_numpy(dtype=np.float64) for name in names}

    # ------------------------------------------------------------------ pictures
    def render(self, x: Any, ax: Any = None, titles: Sequence[str] | None = None, **kwargs: Any) -> Any:
        """3-D views of designs ``x`` (:func:`~.render3d.draw_mesh`): on ``ax`` (a 3-D Axes) for one design, else
        a new figure with one view per design (at most 6). Returns the Axes (or the array of Axes)."""
        import matplotlib.pyplot as plt

        from .render3d import draw_mesh

        lofted = self.loft(x)
        if ax is not None:
            if len(lofted) != 1:
                raise ValueError(f"an Axes takes one design; got {len(lofted)}")
            return draw_mesh(lofted.mesh(0), ax=ax, title=titles[0] if titles else None, **kwargs)
        n = min(len(lofted), 6)
        cols = min(n, 3)
        rows = (n + cols - 1) // cols
        fig = plt.figure(figsize=(5.5 * cols, 4.2 * rows))
        axes = []
        for i in range(n):
            sub = fig.add_subplot(rows, cols, i + 1, projection="3d")
            draw_mesh(lofted.mesh(i), ax=sub, title=titles[i] if titles else None, **kwargs)
            axes.append(sub)
        return np.array(axes)
