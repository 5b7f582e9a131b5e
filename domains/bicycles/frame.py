"""Bicycle frame design on real FEA data: 37 frame parameters -> mass, stiffness, strength, validity.

The structural properties come from an MLP ensemble trained on 11,880 finite-element results of the
FRAMED data set, validity from a classifier trained on 12,077 frames labelled valid / invalid (see
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
    Constraints: ``planar_safety_factor >= safety_factor``, ``eccentric_safety_factor >= safety_factor``
    and ``validity >= validity`` (the predicted probability that the frame is valid); pass None to drop
    either. ``max_spread`` adds the trust constraint ``mass_spread <= max_spread``: the spread of the
    ensemble's mass predictions relative to their mean. Real frames have a median of 0.016 and a 99th
    percentile of 0.061; an optimizer left alone finds "frames" of 0.2 kg where the spread is 0.13 to
    0.4, i.e. where the surrogate extrapolates. 0.06 keeps the search where the surrogate is credible.
    A safety factor that is also an objective keeps its constraint under the name ``min_<name>``. ``bounds``: see :func:`frame_space` ("data": every real frame is a valid design;
    "typical": without the data's far outliers, better for search from random starts).

    >>> dom = BikeFrame(objectives=("mass", "planar_compliance"))
    >>> dom.predict(dom.dataset().head(3))        # all 7 properties (means) and their ensemble stds
    """

    name = "bike_frame"

    def __init__(self, objectives: Sequence[str] = ("mass", "planar_compliance"), safety_factor: float | None = 1.5,
                 validity: float | None = 0.5, device: str | torch.device | None = None,
                 bounds: str | Mapping[str, tuple[float, float]] = "data", max_spread: float | None = None) -> None:
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
        if max_spread is not None:
            if not max_spread > 0:
                raise ValueError(f"max_spread is a relative spread > 0, got {max_spread}")
            cons.append(Constraint("mass_spread", float(max_spread), "<="))
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

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives and constraints by name, each ``[n]`` float64 on ``x``'s device (one batched call
        of the structure model, and of the validity model when its constraint is on)."""
        x = self._as_designs(x)
        structure, validity = self._on(x.device)
        with torch.no_grad():
            props, spread = (t.to(torch.float64) for t in structure.predict(x))
            out = {name: props[:, j] for j, name in enumerate(STRUCTURAL)}
            out["mass_spread"] = spread[:, 0] / props[:, 0].abs().clamp(min=1e-9)
            if self._needs_validity:
                out["validity"] = validity.predict(x)[0][:, 0].to(torch.float64)
        for sf in SAFETY_FACTORS:
            out[f"min_{sf}"] = out[sf]
        return out

    def predict(self, x: torch.Tensor | pd.DataFrame | pd.Series | Mapping) -> pd.DataFrame:
        """All 7 predicted properties (ensemble means) and ``<name>_std`` (spread over the members) of
        designs given as a tensor ``[n, 37]`` or as readable rows (e.g. rows of :meth:`dataset`)."""
        x = self._as_designs(x)
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
                            "bounds": self.bounds_mode}
        return spec

    # ---------------------------------------------------------------- drawing
    def render(self, x: torch.Tensor | pd.DataFrame, ax: Any = None, overlay: bool = False, wheels: bool = True,
               labels: Sequence[str] | None = None, ncols: int = 4) -> Any:
        """Side view of one or several frames, drawn to scale from their geometry (see :func:`frame_geometry`).

        Tubes are bars as wide as their outer diameter, coloured by material; wheels (0.34 m radius) and an
        approximate fork are drawn in grey. Several frames are laid out in a grid of ``ncols`` columns, or
        drawn on top of each other with ``overlay=True``. Returns the matplotlib Axes.
        """
        import matplotlib.pyplot as plt
        from matplotlib.collections import PolyCollection
        from matplotlib.patches import Circle

        x = self._as_designs(x)
        frame = self.space.to_frame(x)
        n = len(frame)
        geo = frame_geometry(frame)
        cols = max(1, min(ncols, n))
        rows = 1 if overlay else math.ceil(n / cols)
        if ax is None:
            size = (6.0, 4.0) if overlay or n == 1 else (3.2 * cols, 2.2 * rows)
            _, ax = plt.subplots(figsize=size)
        dx, dy = 2.0, 1.45  # grid pitch in metres
        colours = {"Steel": "#3b6ea5", "Aluminum": "#8c8c8c", "Titanium": "#b07d2b"}
        cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
        for i in range(n):
            ox, oy = (0.0, 0.0) if overlay else ((i % cols) * dx, -(i // cols) * dy)
            colour = cycle[i % len(cycle)] if overlay and n > 1 else colours.get(frame["Material"].iloc[i], "C0")
            alpha = 0.55 if overlay and n > 1 else 0.95
            pts = {k: v[i] + (ox, oy) for k, v in geo["points"].items()}
            if wheels:
                for centre in (pts["rear_axle"], pts["front_axle"]):
                    ax.add_patch(Circle(centre, WHEEL_RADIUS, fill=False, lw=1.0, color="0.7", zorder=1))
                    ax.add_patch(Circle(centre, 0.02, color="0.6", zorder=1))
                ax.plot(*np.stack([pts["ht_bottom"], pts["front_axle"]]).T, color="0.55", lw=2.0, zorder=2,
                        solid_capstyle="round")
            polys = [_bar(pts[a], pts[b], geo["od"][t][i]) for t, (a, b) in TUBE_ENDS.items() if geo["show"][t][i]]
            ax.add_collection(PolyCollection(polys, facecolors=colour, edgecolors="black", linewidths=0.4,
                                             alpha=alpha, zorder=3))
            ax.add_patch(Circle(pts["bb"], max(geo["od"]["bb"][i], 0.01) / 2, facecolor=colour, edgecolor="black",
                                lw=0.4, alpha=alpha, zorder=4))
            if not overlay or n == 1:
                material = frame["Material"].iloc[i]
                text = labels[i] if labels is not None else (f"#{i} {material}" if n > 1 else material)
                bottom = min(pts["rear_axle"][1], pts["front_axle"][1]) - (WHEEL_RADIUS if wheels else 0.0)
                ax.text(ox + 0.1, bottom - 0.04, text, ha="center", va="top", fontsize=8)
        if overlay and n > 1 and labels is not None:
            for i, text in enumerate(labels):
                ax.plot([], [], color=cycle[i % len(cycle)], lw=4, label=text)
            ax.legend(fontsize=8, loc="upper right")
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.axis("off")
        return ax


WHEEL_RADIUS = 0.34  # m, a 700c / 29" wheel with tyre; the data holds no wheel size
FORK_OFFSET = 0.045  # m, fork rake used to place the front axle
# tube -> (start point, end point) in frame_geometry's points
TUBE_ENDS = {"cs": ("bb", "rear_axle"), "ss": ("rear_axle", "ss_top"), "st": ("bb", "st_top"), "dt": ("bb", "dt_top"),
             "tt": ("tt_rear", "tt_front"), "ht": ("ht_top", "ht_bottom"), "ssb": ("ssb_a", "ssb_b"),
             "csb": ("csb_a", "csb_b")}


def frame_geometry(frame: pd.DataFrame) -> dict[str, Any]:
    """Key points ``[n, 2]`` (metres; bottom bracket at the origin, x forward, y up) and tube diameters.

    A documented approximation of BikeCAD's construction, from the parameter names:
      - rear axle: ``CS Length`` from the bottom bracket, ``BB Drop`` above it;
      - seat tube: ``ST Length`` from the bottom bracket at ``ST Angle`` from horizontal, leaning back; the
        top tube meets it ``ST UX`` below its top, the seat stays ``SS E`` below its top;
      - head tube: its top is ``Stack`` above the bottom bracket, its axis at ``HT Angle``; it is
        ``HT Length`` long, the top tube meets it ``HT UX`` below its top and the down tube ``HT LX``
        above its bottom; its horizontal position makes the down tube ``DT Length`` long;
      - bridges (when included): short bars across the stays ``SSB Offset`` / ``CSB Offset`` from the
        rear axle (bridges are transverse, so the side view shows them as stubs);
      - front axle (for the wheel and fork drawing only): at the rear axle's height, ``FORK_OFFSET``
        ahead of the steering axis.
    """
    g = {c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns if c != "Material"}
    n = len(frame)
    sta, hta = np.radians(g["ST Angle"]), np.radians(g["HT Angle"])
    drop = g["BB Drop"]
    cs = np.maximum(g["CS Length"], np.abs(drop) + 1e-3)
    rear = np.stack([-np.sqrt(cs ** 2 - drop ** 2), drop], axis=1)
    u_st = np.stack([-np.cos(sta), np.sin(sta)], axis=1)  # along the seat tube, up and back
    d_ht = np.stack([np.cos(hta), -np.sin(hta)], axis=1)  # along the head tube, down and forward
    st_len = g["ST Length"]
    a = np.clip(g["HT Length"] - g["HT LX"], 0.0, None)  # head-tube top to down-tube junction
    rise = g["Stack"] - a * np.sin(hta)
    reach_dt = np.sqrt(np.clip(g["DT Length"] ** 2 - rise ** 2, 0.0, None))
    ht_top = np.stack([reach_dt - a * np.cos(hta), g["Stack"]], axis=1)
    pts = {
        "bb": np.zeros((n, 2)),
        "rear_axle": rear,
        "st_top": st_len[:, None] * u_st,
        "tt_rear": np.clip(st_len - g["ST UX"], 0.0, None)[:, None] * u_st,
        "ss_top": np.clip(st_len - g["SS E"], 0.0, None)[:, None] * u_st,
        "ht_top": ht_top,
        "ht_bottom": ht_top + g["HT Length"][:, None] * d_ht,
        "tt_front": ht_top + g["HT UX"][:, None] * d_ht,
        "dt_top": ht_top + a[:, None] * d_ht,
    }
    # bridges: a stub across the stay, SSB / CSB Offset from the rear axle
    bridges = (("ssb", "ss_top", g["SSB Offset"], g["SS OD"]), ("csb", "bb", g["CSB Offset"], g["CS OD"]))
    for key, far, offset, od in bridges:
        vec = pts[far] - rear
        length = np.linalg.norm(vec, axis=1, keepdims=True).clip(1e-6)
        unit = vec / length
        centre = rear + np.minimum(offset[:, None], length) * unit
        normal = np.stack([-unit[:, 1], unit[:, 0]], axis=1) * (0.6 * od[:, None] + 0.01)
        pts[f"{key}_a"], pts[f"{key}_b"] = centre - normal, centre + normal
    # front axle: on the rear axle's height, FORK_OFFSET ahead of the steering axis
    hb = pts["ht_bottom"]
    s = (hb[:, 1] + FORK_OFFSET * np.cos(hta) - rear[:, 1]) / np.sin(hta).clip(1e-3)
    pts["front_axle"] = hb + s[:, None] * d_ht + FORK_OFFSET * np.stack([np.sin(hta), np.cos(hta)], axis=1)
    od = {"cs": g["CS OD"], "ss": g["SS OD"], "st": g["ST OD"], "dt": g["DT OD"], "tt": g["TT OD"], "ht": g["HT OD"],
          "ssb": np.abs(g["SSB OD"]), "csb": np.abs(g["CSB OD"]), "bb": g["BB OD"]}
    show = {t: np.ones(n, dtype=bool) for t in TUBE_ENDS}
    show["ssb"] = g["SSB_Include"] >= 0.5
    show["csb"] = g["CSB_Include"] >= 0.5
    return {"points": pts, "od": {k: np.clip(v, 0.002, None) for k, v in od.items()}, "show": show}


def _bar(p: np.ndarray, q: np.ndarray, width: float) -> np.ndarray:
    """Rectangle ``[4, 2]`` of the given width around the segment p -> q."""
    v = q - p
    length = max(float(np.hypot(*v)), 1e-9)
    normal = np.array([-v[1], v[0]]) / length * (width / 2)
    return np.stack([p + normal, q + normal, q - normal, p - normal])
