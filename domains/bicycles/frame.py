"""Bicycle frame design on real FEA data: 37 frame parameters -> mass, stiffness, strength, buildability.

The structural properties come from an MLP ensemble trained on 11,880 finite-element results of the
FRAMED data set; whether a frame can be built (wheels that clear each other and the tubes, tubes that
meet where they should, walls inside their tubes, pedals above the ground) is computed from its
geometry (:mod:`.geometry`); an optional classifier predicts FRAMED's own valid / invalid label (see
``docs/bicycles.md``). Lengths are in metres, angles in degrees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.domain import Domain
from workbench.objectives import Constraint, Objective
from workbench.spaces import Binary, Categorical, MixedSpace, Real

from .data import BINARY_COLUMNS, FRAME_COLUMNS, MATERIALS, STRUCTURE_TARGETS, load_frames_with_results
from .geometry import CHECKS, FIT, TUBE_ENDS, Build, check_parameters, fit_quantities, frame_checks, frame_points
from .surrogates import Surrogate, load_surrogate

#: readable names of the six FEA results, in the structure model's output order
STRUCTURAL = ("mass", "planar_compliance", "transverse_compliance", "eccentric_compliance",
              "planar_safety_factor", "eccentric_safety_factor")
PROPERTIES = (*STRUCTURAL, "validity")
_DIRECTION = {"mass": "minimize", "planar_compliance": "minimize", "transverse_compliance": "minimize",
              "eccentric_compliance": "minimize", "planar_safety_factor": "maximize",
              "eccentric_safety_factor": "maximize"}
SAFETY_FACTORS = ("planar_safety_factor", "eccentric_safety_factor")


def _round_out(value: float, digits: int, up: bool) -> float:
    """Round away from the data to ``digits`` significant digits (keeps the sign: 0 stays 0)."""
    if value == 0:
        return 0.0
    exp = math.floor(math.log10(abs(value))) - digits + 1
    k = math.ceil(value / 10.0 ** exp) if up else math.floor(value / 10.0 ** exp)
    while True:  # parse the decimal so the bound prints cleanly, and step if binary rounding crossed the value
        out = float(f"{k}e{exp}")
        if (out >= value) if up else (out <= value):
            return out
        k += 1 if up else -1


def frame_space(bounds: str | Mapping[str, tuple[float, float]] | None = "data") -> MixedSpace:
    """The 37 frame parameters: ``Material`` categorical, the two bridge switches binary, the rest real.

    ``bounds``: ``"data"`` (or None) spans every real frame (min / max over both splits, rounded outwards
    to 3 significant digits); ``"typical"`` is the 1 % to 99 % quantile range widened by a quarter of it
    on each side (within the data's min / max): it leaves out the far outliers of the data (``Stack`` up
    to 544 m, ``ST Angle`` 16 to 120 degrees) and 11 % of the real frames. A mapping overrides chosen
    variables of the "data" bounds, e.g. ``{"Stack": (0.45, 0.70)}``.
    """
    frames, _ = load_frames_with_results()
    if bounds is None or isinstance(bounds, str):
        if bounds not in (None, "data", "typical"):
            raise ValueError(f"bounds must be 'data', 'typical' or a mapping, got {bounds!r}")
        overrides = {}
        if bounds == "typical":
            reals = [c for c in FRAME_COLUMNS if c != "Material" and c not in BINARY_COLUMNS]
            q1, q99 = frames[reals].quantile(0.01), frames[reals].quantile(0.99)
            lo = np.maximum(q1 - 0.25 * (q99 - q1), frames[reals].min())
            hi = np.minimum(q99 + 0.25 * (q99 - q1), frames[reals].max())
            overrides = {c: (_round_out(float(lo[c]), 3, False), _round_out(float(hi[c]), 3, True)) for c in reals}
    else:
        overrides = dict(bounds)
    unknown = sorted(set(overrides) - set(FRAME_COLUMNS))
    if unknown:
        raise KeyError(f"bounds given for unknown variables {unknown}; variables: {list(FRAME_COLUMNS)}")
    variables = []
    for col in FRAME_COLUMNS:
        if col == "Material":
            variables.append(Categorical(col, MATERIALS))
        elif col in BINARY_COLUMNS:
            variables.append(Binary(col))
        else:
            lo, hi = overrides.get(col, (_round_out(float(frames[col].min()), 3, False),
                                         _round_out(float(frames[col].max()), 3, True)))
            variables.append(Real(col, float(lo), float(hi)))
    return MixedSpace(variables)


class BikeFrame(Domain):
    """Bicycle frames: 37 parameters (the data set's column names), FEA properties from a surrogate.

    Objectives: any of ``STRUCTURAL`` (mass in kg; planar / transverse / eccentric compliance,
    dimensionless, 1 = data-set average, minimized; planar / eccentric safety factor, maximized).
    Constraints: ``planar_safety_factor >= safety_factor``, ``eccentric_safety_factor >= safety_factor``;
    the geometric checks of :data:`~.geometry.CHECKS` (``checks=True``, the default: each a violation in
    metres, ``<= 0``; or a list of check names), computed for the wheels and fork of ``build``
    (:class:`~.geometry.Build`, 700c road by default); ``fit``: bounds on rider-fit quantities
    (:data:`~.geometry.FIT`, e.g. ``{"stack": (0.55, 0.58), "reach": (0.37, None)}``: constraints
    ``stack <= 0.58``, ``min_stack >= 0.55``, ``min_reach >= 0.37``); ``validity >= validity`` (the
    classifier's probability of FRAMED's "valid" label, which means "the FEA ran", not "buildable"; off by
    default). Pass None to drop the safety or validity constraints.

    ``max_spread`` adds trust constraints ``<property>_spread <= limit``: the spread of the ensemble's
    predictions relative to their mean; a number bounds the mass's, a mapping any properties', e.g.
    ``{"mass": 0.06, "planar_compliance": 0.1}``. Real frames have a median mass spread of 0.016 and a 99th
    percentile of 0.061; an optimizer left alone finds "frames" of 0.2 kg where the spread is 0.13 to
    0.4, i.e. where the surrogate extrapolates. 0.06 keeps the search where the surrogate is credible.
    A safety factor that is also an objective keeps its constraint under the name ``min_<name>``. ``bounds``:
    see :func:`frame_space` ("data": every real frame is a valid design; "typical": without the data's far
    outliers, better for search from random starts).

    >>> dom = BikeFrame(objectives=("mass", "planar_compliance"))
    >>> dom.predict(dom.dataset().head(3))        # all 7 properties (means) and their ensemble stds
    """

    name = "bike_frame"

    def __init__(self, objectives: Sequence[str] = ("mass", "planar_compliance"), safety_factor: float | None = 1.5,
                 validity: float | None = None, device: str | torch.device | None = None,
                 bounds: str | Mapping[str, tuple[float, float]] = "data",
                 max_spread: float | Mapping[str, float] | None = None,
                 checks: bool | Sequence[str] = True, build: Build | None = None,
                 fit: Mapping[str, tuple[float | None, float | None]] | None = None) -> None:
        if isinstance(objectives, str):
            objectives = (objectives,)
        bad = [o for o in objectives if o not in STRUCTURAL]
        if bad:
            raise ValueError(f"unknown objectives {bad}; choose from {list(STRUCTURAL)}")
        if validity is not None and not 0.0 <= validity <= 1.0:
            raise ValueError(f"validity is a probability threshold in [0, 1], got {validity}")
        objs = [Objective(o, _DIRECTION[o]) for o in objectives]
        cons = []
        if safety_factor is not None:
            cons += [Constraint(f"min_{sf}" if sf in objectives else sf, float(safety_factor), ">=")
                     for sf in SAFETY_FACTORS]
        if validity is not None:
            cons.append(Constraint("validity", float(validity), ">="))
        spreads = {} if max_spread is None else (dict(max_spread) if isinstance(max_spread, Mapping)
                                                  else {"mass": max_spread})
        for prop, limit in spreads.items():
            if prop not in STRUCTURAL:
                raise ValueError(f"max_spread names unknown property {prop!r}; choose from {list(STRUCTURAL)}")
            if not limit > 0:
                raise ValueError(f"max_spread is a relative spread > 0, got {limit} for {prop}")
            cons.append(Constraint(f"{prop}_spread", float(limit), "<="))
        self.checks = list(CHECKS) if checks is True else [] if checks is False else list(checks)
        unknown = sorted(set(self.checks) - set(CHECKS))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; choose from {list(CHECKS)}")
        cons += [Constraint(name, 0.0, "<=") for name in self.checks]
        self.fit = {k: (None if lo is None else float(lo), None if hi is None else float(hi))
                    for k, (lo, hi) in (fit or {}).items()}
        unknown = sorted(set(self.fit) - set(FIT))
        if unknown:
            raise ValueError(f"unknown fit quantities {unknown}; choose from {list(FIT)}")
        for name, (lo, hi) in self.fit.items():
            if hi is not None:
                cons.append(Constraint(name, hi, "<="))
            if lo is not None:
                cons.append(Constraint(f"min_{name}", lo, ">="))
        self.build = build or Build()
        super().__init__(frame_space(bounds), objs, cons)
        self.safety_factor, self.validity, self.max_spread = safety_factor, validity, max_spread
        self.bounds_mode = bounds if isinstance(bounds, str) else "custom"
        self._structure: Surrogate = load_surrogate("structure", device)
        self._validity: Surrogate = load_surrogate("validity", device)
        self._needs_validity = validity is not None

    # ------------------------------------------------------------------ scoring
    def _on(self, device: torch.device) -> tuple[Surrogate, Surrogate]:
        if self._structure.device != device:
            self._structure.to(device)
            self._validity.to(device)
        return self._structure, self._validity

    def _as_designs(self, x: torch.Tensor | pd.DataFrame | pd.Series | Mapping) -> torch.Tensor:
        if isinstance(x, (pd.DataFrame, pd.Series, Mapping)):
            x = self.space.from_frame(x)
        x = torch.as_tensor(x)
        return self.space.check_batch(x.unsqueeze(0) if x.dim() == 1 else x)

    def parameters_of(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoded designs ``[n, 37]`` -> the real parameters by name ``[n]`` (float64), after checking that
        each row can describe a frame (positive lengths, diameters and walls; angles in (0, 180) degrees)."""
        x = self._as_designs(x).to(torch.float64)
        params = {name: x[:, j] for j, name in enumerate(self.space.names) if name != "Material"}
        bad = check_parameters(params)
        if bad:
            row, reason = next(iter(sorted(bad.items())))
            more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
            raise ValueError(f"frame {row} cannot be built: {reason}{more}")
        return params

    def geometry(self, x: torch.Tensor | pd.DataFrame | pd.Series | Mapping) -> pd.DataFrame:
        """Rider-fit quantities (:data:`~.geometry.FIT`, metres) and check violations (:data:`~.geometry.CHECKS`,
        metres, <= 0 passes) of designs, one row each, for this domain's ``build``; ``buildable`` is True when
        every check passes."""
        params = self.parameters_of(x)
        pts = frame_points(params, self.build)
        out = {**fit_quantities(params, pts, self.build), **frame_checks(params, pts, self.build)}
        frame = pd.DataFrame({k: v.detach().cpu().numpy() for k, v in out.items()})
        frame["buildable"] = (frame[list(CHECKS)] <= 0).all(axis=1)
        return frame

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives and constraints by name, each ``[n]`` float64 on ``x``'s device (one batched call
        of the structure model, of the validity model when its constraint is on, and of the geometry).
        A row that cannot describe a frame raises a ValueError naming it (the evaluation engine marks it
        failed and scores the others)."""
        x = self._as_designs(x)
        params = self.parameters_of(x)
        structure, validity = self._on(x.device)
        with torch.no_grad():
            props, spread = (t.to(torch.float64) for t in structure.predict(x))
            out = {name: props[:, j] for j, name in enumerate(STRUCTURAL)}
            for j, name in enumerate(STRUCTURAL):  # relative spread of the ensemble: the trust constraints
                out[f"{name}_spread"] = spread[:, j] / props[:, j].abs().clamp(min=1e-9)
            if self._needs_validity:
                out["validity"] = validity.predict(x)[0][:, 0].to(torch.float64)
        for sf in SAFETY_FACTORS:
            out[f"min_{sf}"] = out[sf]
        if self.checks or self.fit:
            pts = frame_points(params, self.build)
            out.update(frame_checks(params, pts, self.build))
            for name, value in fit_quantities(params, pts, self.build).items():
                out[name] = out[f"min_{name}"] = value
        return out

    def predict(self, x: torch.Tensor | pd.DataFrame | pd.Series | Mapping) -> pd.DataFrame:
        """All 7 predicted properties (ensemble means) and ``<name>_std`` (spread over the members) of
        designs given as a tensor ``[n, 37]`` or as readable rows (e.g. rows of :meth:`dataset`); a row that
        cannot describe a frame is a ValueError naming it."""
        x = self._as_designs(x)
        self.parameters_of(x)
        structure, validity = self._on(x.device)
        with torch.no_grad():
            sm, ss = structure.predict(x)
            vm, vs = validity.predict(x)
        mean = torch.cat([sm, vm], dim=1).double().cpu().numpy()
        std = torch.cat([ss, vs], dim=1).double().cpu().numpy()
        cols = {name: mean[:, j] for j, name in enumerate(PROPERTIES)}
        cols.update({f"{name}_std": std[:, j] for j, name in enumerate(PROPERTIES)})
        return pd.DataFrame(cols)

    def dataset(self) -> pd.DataFrame:
        """The 14,851 real frames (train then test split, indexed by the data set's row id): the 37
        parameters under the space's names, then their FEA results under the property names."""
        frames, results = load_frames_with_results()
        results = results.rename(columns=dict(zip(STRUCTURE_TARGETS, STRUCTURAL)))
        return pd.concat([frames, results], axis=1)

    def describe(self) -> dict[str, Any]:
        spec = super().describe()
        spec["settings"] = {"safety_factor": self.safety_factor, "validity": self.validity,
                            "bounds": self.bounds_mode, "build": self.build.to_spec(), "fit": self.fit}
        return spec

    # ---------------------------------------------------------------- drawing
    def render(self, x: torch.Tensor | pd.DataFrame, ax: Any = None, overlay: bool = False, wheels: bool = True,
               labels: Sequence[str] | None = None, ncols: int = 4,
               ghost: torch.Tensor | pd.DataFrame | pd.Series | None = None) -> Any:
        """Side view of one or several frames, drawn to scale from :func:`~.geometry.frame_points` (the
        geometry the checks use) with this domain's wheels and fork.

        Tubes are bars as wide as their outer diameter, coloured by material; wheels, tyres and the fork in
        grey. Several frames are laid out in a grid of ``ncols`` columns, or drawn on top of each other with
        ``overlay=True``. ``ghost``: one design drawn faintly under each frame (e.g. the query a
        counterfactual changed). Returns the matplotlib Axes.
        """
        import matplotlib.pyplot as plt

        x = self._as_designs(x)
        params = self.parameters_of(x)
        n = len(params["Stack"])
        materials = self.space.to_frame(x)["Material"].tolist()
        pts = {k: v.cpu().numpy() for k, v in frame_points(params, self.build).items()}
        od = {t: params[f"{t.upper()} OD"].cpu().numpy() for t in ("cs", "ss", "st", "dt", "tt", "ht", "bb")}
        od["ssb"], od["csb"] = params["SSB OD"].abs().cpu().numpy(), params["CSB OD"].abs().cpu().numpy()
        show = {"ssb": params["SSB_Include"].cpu().numpy() >= 0.5, "csb": params["CSB_Include"].cpu().numpy() >= 0.5}
        ghost_pts = None
        if ghost is not None:
            gp = self.parameters_of(ghost)
            ghost_pts = {k: v[0].cpu().numpy() for k, v in frame_points(gp, self.build).items()}
            ghost_od = {t: float(gp[f"{t.upper()} OD"][0]) for t in ("cs", "ss", "st", "dt", "tt", "ht")}
        cols = max(1, min(ncols, n))
        rows = 1 if overlay else math.ceil(n / cols)
        if ax is None:
            size = (6.0, 4.0) if overlay or n == 1 else (3.2 * cols, 2.2 * rows)
            _, ax = plt.subplots(figsize=size)
        radius = self.build.radius
        dx, dy = 2.2, 2 * radius + 0.85  # grid pitch in metres
        colours = {"Steel": "#3b6ea5", "Aluminum": "#8c8c8c", "Titanium": "#b07d2b"}
        cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        for i in range(n):
            origin = np.zeros(2) if overlay else np.array([(i % cols) * dx, -(i // cols) * dy])
            colour = cycle[i % len(cycle)] if overlay and n > 1 else colours.get(materials[i], "C0")
            alpha = 0.55 if overlay and n > 1 else 0.95
            p = {k: v[i] + origin for k, v in pts.items()}
            if ghost_pts is not None:
                g = {k: v + origin for k, v in ghost_pts.items()}
                _draw_frame(ax, g, ghost_od, {}, "0.75", 0.5, radius, wheels, ghost=True)
            widths = {t: od[t][i] for t in od}
            shown = {t: bool(show[t][i]) for t in show}
            _draw_frame(ax, p, widths, shown, colour, alpha, radius, wheels)
            if not overlay or n == 1:
                text = labels[i] if labels is not None else (f"#{i} {materials[i]}" if n > 1 else materials[i])
                bottom = min(p["rear_axle"][1], p["front_axle"][1]) - (radius if wheels else 0.0)
                ax.text(origin[0] + 0.1, bottom - 0.04, text, ha="center", va="top", fontsize=8)
        if overlay and n > 1 and labels is not None:
            for i, text in enumerate(labels):
                ax.plot([], [], color=cycle[i % len(cycle)], lw=4, label=text)
            ax.legend(fontsize=8, loc="upper right")
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.axis("off")
        return ax


def _draw_frame(ax: Any, p: dict[str, np.ndarray], od: dict[str, float], shown: dict[str, bool], colour: Any,
                alpha: float, radius: float, wheels: bool, ghost: bool = False) -> None:
    """One frame's wheels, fork, tubes and bottom bracket at points ``p`` (metres)."""
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Circle

    if wheels:
        for centre in (p["rear_axle"], p["front_axle"]):
            ax.add_patch(Circle(centre, radius, fill=False, lw=0.8 if ghost else 1.0, color="0.8" if ghost else "0.6",
                                ls="--" if ghost else "-", zorder=1))
            if not ghost:
                ax.add_patch(Circle(centre, radius - 0.028, fill=False, lw=0.5, color="0.75", zorder=1))  # rim
                ax.add_patch(Circle(centre, 0.02, color="0.6", zorder=1))
        ax.plot(*np.stack([p["fork_crown"], p["front_axle"]]).T, color="0.8" if ghost else "0.55",
                lw=1.0 if ghost else 2.0, zorder=2, solid_capstyle="round")
    tubes = [t for t in TUBE_ENDS if t in od and shown.get(t, t not in ("ssb", "csb"))]
    polys = [_bar(p[TUBE_ENDS[t][0]], p[TUBE_ENDS[t][1]], max(od[t], 0.002)) for t in tubes]
    ax.add_collection(PolyCollection(polys, facecolors="none" if ghost else colour,
                                     edgecolors=colour if ghost else "black", linewidths=0.5 if ghost else 0.4,
                                     alpha=alpha, zorder=0 if ghost else 3))
    if not ghost:
        ax.add_patch(Circle(p["bb"], max(od["bb"], 0.01) / 2, facecolor=colour, edgecolor="black", lw=0.4,
                            alpha=alpha, zorder=4))


def _bar(p: np.ndarray, q: np.ndarray, width: float) -> np.ndarray:
    """Rectangle ``[4, 2]`` of the given width around the segment p -> q."""
    v = q - p
    length = max(float(np.hypot(*v)), 1e-9)
    normal = np.array([-v[1], v[0]]) / length * (width / 2)
    return np.stack([p + normal, q + normal, q - normal, p - normal])
