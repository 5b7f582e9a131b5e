"""Airfoil design under NeuralFoil physics: L/D (or CD) at a required lift, CM, thickness and a spar.

``Airfoil`` designs 18-value Kulfan sections (``sections``) in one of two encodings:

- ``"parameters"``: a ``MixedSpace`` of the 18 Kulfan values themselves (``upper_0`` .. ``TE_thickness``), each
  bounded to the clean UIUC airfoils' mean +- 4 standard deviations (TE thickness from 0): what NSGA-II and
  qLogNEHVI search directly;
- ``"standardized"``: ``TensorSpace((18,), -4, 4)`` of the same values standardized per parameter, the space of
  the shipped Gaussian-diffusion prior (``prior()``), for SVDD, best-of-N, DRAKES and the other samplers.

Both decode to the same sections and are scored alike, batched in torch: each section is trimmed to the
required lift ``cl`` at Reynolds number ``Re`` (batched Newton steps on the angle of attack,
``neuralfoil_torch.at_lift``) and NeuralFoil's ``model`` gives CD, CM and its analysis confidence there. A small
model (default ``"xsmall"``) is the optimization reward; ``"xxxlarge"`` is the held-out evaluation
(``Airfoil(model="xxxlarge")``, or ``aero_table``). ``evaluate_soft`` gives the same numbers differentiably
(DRAKES, DPS).

Objectives (names, or (name, direction) tuples): ``ld`` (max), ``cd`` (min), ``cm`` (max: least nose-down),
``thickness`` (max), ``area`` (max). Constraints, each optional by its bound (None drops it):
``min_thickness`` (max thickness >= ``min_thickness`` chord), ``spar_area`` (area between the surfaces from
``spar[0]`` to ``spar[1]`` chord >= ``min_spar_area``), ``crossing`` (largest overlap of the surfaces <= 0, always
on), ``confidence`` (NeuralFoil's analysis confidence >= ``min_confidence``: its value is stored for every design,
so low-confidence designs are flagged even with ``min_confidence=0``), ``lift_error`` (|CL - cl| <= ``lift_tol``:
the trim reached the lift), ``cm_limit`` (CM >= ``min_cm``) and ``database_distance`` (distance to the nearest
training airfoil in standardized units <= ``near_database``, e.g. ``airfoil_prior.near_threshold()``; off by
default). ``table`` gives every quantity of a batch of sections, ``airfoil_like`` / ``like_from_table`` say which
look like airfoils.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.domain import Domain
from workbench.objectives import Constraint
from workbench.spaces import MixedSpace, Real

from . import sections
from .airfoil_data import THICKNESS_RANGE, load_database
from .airfoil_prior import BOX, database_distance, load_prior, near_threshold, space as prior_space, standardizer
from .neuralfoil_torch import MODEL_SIZES, at_lift, neuralfoil

OBJECTIVES = {"ld": "maximize", "cd": "minimize", "cm": "maximize", "thickness": "maximize", "area": "maximize"}
ENCODINGS = ("parameters", "standardized")
REWARD_MODEL, HELDOUT_MODEL = "xsmall", "xxxlarge"
GEOMETRY_POINTS = 101  # cosine-spaced stations for thickness and crossing


class Geometry:
    """Thickness, areas and surface crossing of sections ``v [n, 18]`` in torch (differentiable; max thickness and
    crossing are maxima over ``points`` cosine-spaced stations), matching ``sections`` to float precision."""

    def __init__(self, spar: tuple[float, float] = (0.15, 0.5), points: int = GEOMETRY_POINTS) -> None:
        x = sections.cosine_stations(points)
        self.basis = torch.from_numpy(sections.basis(x))  # [18, 2, m]
        self.area_w = torch.from_numpy(np.array(sections.area_weights()))  # [18]
        self.spar_w = torch.from_numpy(np.array(sections.area_weights(*spar)))  # [18]

    def __call__(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        b = self.basis.to(v.device)
        y = torch.einsum("np,psm->nsm", v, b)
        gap = y[:, 0] - y[:, 1]  # [n, m] thickness at each station
        return {"thickness": gap.max(dim=1).values, "crossing": (-gap[:, 1:-1]).max(dim=1).values,
                "area": v @ self.area_w.to(v.device), "spar_area": v @ self.spar_w.to(v.device)}


class Airfoil(Domain):
    """Airfoil sections scored by NeuralFoil at a required lift (see the module docstring)."""

    name = "airfoil"

    def __init__(self, objectives: Sequence[str | tuple] = ("ld", "thickness"), cl: float = 0.6, Re: float = 5e5,
                 model: str = REWARD_MODEL, encoding: str = "parameters", min_thickness: float | None = 0.08,
                 min_spar_area: float | None = 0.02, spar: tuple[float, float] = (0.15, 0.5),
                 min_confidence: float | None = 0.9, lift_tol: float | None = 0.01, min_cm: float | None = -0.15,
                 near_database: float | None = None, n_crit: float = 9.0, device: str | None = None) -> None:
        names = [o if isinstance(o, str) else o[0] for o in objectives]
        unknown = [o for o in names if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objectives {unknown}; choose from {list(OBJECTIVES)}")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        if model not in MODEL_SIZES:
            raise ValueError(f"unknown NeuralFoil model {model!r}; choose from {list(MODEL_SIZES)}")
        if not (np.isfinite(cl) and -1.0 <= cl <= 2.0):
            raise ValueError(f"required lift coefficient cl must be in [-1, 2], got {cl}")
        if not (np.isfinite(Re) and 1e4 <= Re <= 1e8):
            raise ValueError(f"Reynolds number Re must be in [1e4, 1e8] (NeuralFoil's range), got {Re}")
        if not 0.0 <= spar[0] < spar[1] <= 1.0:
            raise ValueError(f"spar stations must satisfy 0 <= front < rear <= 1, got {spar}")
        if "cm" in names and min_cm is not None:
            raise ValueError("CM is an objective here; drop its constraint with min_cm=None")
        self.cl, self.Re, self.n_crit = float(cl), float(Re), float(n_crit)
        self.model, self.encoding, self.spar = model, encoding, (float(spar[0]), float(spar[1]))
        self.bounds = {"min_thickness": min_thickness, "min_spar_area": min_spar_area,
                       "min_confidence": min_confidence, "lift_tol": lift_tol, "min_cm": min_cm,
                       "near_database": near_database}
        constraints = [Constraint("crossing", 0.0, "<=")]
        for name, bound, sense in (("min_thickness", min_thickness, ">="), ("spar_area", min_spar_area, ">="),
                                   ("confidence", min_confidence, ">="), ("lift_error", lift_tol, "<="),
                                   ("cm_limit", min_cm, ">="), ("database_distance", near_database, "<=")):
            if bound is not None:
                constraints.append(Constraint(name, float(bound), sense))
        self.standardizer = standardizer()
        super().__init__(self._space(), [(o, OBJECTIVES[o]) if isinstance(o, str) else o for o in objectives],
                         constraints)
        self.geometry = Geometry(self.spar)
        self.device = device

    def _space(self) -> Any:
        if self.encoding == "standardized":
            return prior_space()
        mean, std = self.standardizer.mean, self.standardizer.std
        low, high = mean - BOX * std, mean + BOX * std
        low[sections.TE_THICKNESS] = 0.0
        return MixedSpace(Real(n, float(lo), float(hi)) for n, lo, hi in zip(sections.NAMES, low, high))

    # -------------------------------------------------------------- encoding
    def sections(self, x: torch.Tensor) -> torch.Tensor:
        """Designs ``[n, 18]`` of this domain's space -> Kulfan sections ``[n, 18]`` float64 (differentiable)."""
        if x.dim() != 2 or x.shape[1] != sections.SECTION_SIZE:
            raise ValueError(f"expected designs [n, {sections.SECTION_SIZE}], got shape {list(x.shape)}")
        if self.encoding == "standardized":
            return self.standardizer.to_sections(x)
        return x.double()

    def encode(self, v: Any) -> torch.Tensor:
        """Kulfan sections ``[n, 18]`` -> designs of this domain's space ``[n, 18]`` (not clipped to its bounds)."""
        v = sections.check(v)
        if self.encoding == "standardized":
            return torch.from_numpy(self.standardizer.to_z(v)).float()
        return torch.tensor(v, dtype=torch.float64)  # a copy: the caller's array stays as it is

    # ------------------------------------------------------------- scoring
    def _scores(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        """All quantities of sections ``v [n, 18]`` by name, each ``[n]``."""
        device = v.device if self.device is None else torch.device(self.device)
        v = v.to(device)
        geo = self.geometry(v)
        aero = at_lift(neuralfoil(self.model, device), v, self.cl, self.Re, n_crit=self.n_crit)
        return {"ld": aero["LD"], "cd": aero["CD"], "cm": aero["CM"], "thickness": geo["thickness"],
                "area": geo["area"], "min_thickness": geo["thickness"], "spar_area": geo["spar_area"],
                "crossing": geo["crossing"], "confidence": aero["confidence"],
                "lift_error": (aero["CL"] - self.cl).abs(), "cm_limit": aero["CM"], "alpha": aero["alpha"],
                "CL": aero["CL"], "database_distance": database_distance(v)}

    def _wanted(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k.name: scores[k.name] for k in [*self.objectives, *self.constraints]}

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {k: t.double() for k, t in self._wanted(self._scores(self.sections(x))).items()}

    def evaluate_soft(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._wanted(self._scores(self.sections(x)))

    def table(self, v: Any) -> pd.DataFrame:
        """Every quantity (objectives, constraints, alpha, CL, camber) of Kulfan sections ``v [n, 18]`` with this
        domain's model and flow, one row per section, plus ``feasible``."""
        arr = sections.check(v).reshape(-1, sections.SECTION_SIZE)
        with torch.no_grad():
            scores = self._scores(torch.from_numpy(arr))
        frame = pd.DataFrame({k: t.detach().cpu().double().numpy() for k, t in scores.items()})
        frame["camber"] = sections.camber(arr)[0]
        values = torch.from_numpy(frame[[c.name for c in self.constraints]].to_numpy().copy())
        ok = np.ones(len(frame), dtype=bool)
        for j, c in enumerate(self.constraints):
            ok &= (c.violation(values[:, j]) <= 0).numpy()
        frame["feasible"] = ok & np.isfinite(frame[["ld", "cd"]].to_numpy()).all(1)
        return frame

    # ------------------------------------------------------------- the rest
    def dataset(self) -> pd.DataFrame:
        """The clean fitted UIUC airfoils: name, the 18 Kulfan values, fit error, thickness and camber."""
        db = load_database()
        keep = db.clean()
        v = db.vectors[keep]
        frame = pd.DataFrame(v, columns=sections.NAMES)
        frame.insert(0, "name", db.names[keep])
        frame["fit_max"] = db.fit_max[keep]
        frame["thickness"] = sections.thickness(v)[0]
        frame["camber"] = sections.camber(v)[0]
        return frame

    def prior(self) -> Any:
        """The shipped Gaussian-diffusion prior (``"standardized"`` encoding only)."""
        if self.encoding != "standardized":
            return None
        return load_prior(self.device or "cpu")

    def render(self, x: torch.Tensor, ax: Any = None, labels: Sequence[str] | None = None, **style: Any) -> Any:
        """Outlines of designs ``x [n, 18]`` stacked top to bottom, true to scale (equal axes)."""
        with torch.no_grad():
            v = self.sections(torch.as_tensor(x)).cpu().numpy()
        return draw_sections(v, ax=ax, labels=labels, **style)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["settings"] = {"cl": self.cl, "Re": self.Re, "model": self.model, "encoding": self.encoding,
                           "spar": list(self.spar), "n_crit": self.n_crit, **self.bounds}
        return out

    def with_model(self, model: str) -> Airfoil:
        """The same domain scored by another NeuralFoil model (e.g. the held-out ``"xxxlarge"``)."""
        return Airfoil([(o.name, o.direction) for o in self.objectives], self.cl, self.Re, model, self.encoding,
                       self.bounds["min_thickness"], self.bounds["min_spar_area"], self.spar,
                       self.bounds["min_confidence"], self.bounds["lift_tol"], self.bounds["min_cm"],
                       self.bounds["near_database"], self.n_crit, self.device)


def like_from_table(tab: pd.DataFrame, min_confidence: float = 0.9) -> pd.DataFrame:
    """Airfoil-likeness from a ``table`` (its ``crossing``, ``thickness``, ``confidence`` and ``database_distance``
    columns): one row per section with ``no_crossing``, ``thickness_ok`` (within the database's
    ``THICKNESS_RANGE``), ``confident`` (>= ``min_confidence``), ``near_data`` (``database_distance`` at most
    ``near_threshold()``: as close to a training airfoil as 99% of the held-out airfoils are) and ``airfoil_like``
    (all four)."""
    low, high = THICKNESS_RANGE
    out = pd.DataFrame({"no_crossing": (tab["crossing"] <= 0).to_numpy(),
                        "thickness_ok": tab["thickness"].between(low, high).to_numpy(),
                        "confident": (tab["confidence"] >= min_confidence).to_numpy(),
                        "near_data": (tab["database_distance"] <= near_threshold()).to_numpy()})
    out["airfoil_like"] = out.no_crossing & out.thickness_ok & out.confident & out.near_data
    return out


def airfoil_like(v: Any, cl: float = 0.6, Re: float = 5e5, model: str = HELDOUT_MODEL, min_confidence: float = 0.9
                 ) -> pd.DataFrame:
    """Which sections ``v [n, 18]`` look like airfoils: surfaces that do not cross, a max thickness within the
    database's range, NeuralFoil (``model``, trimmed to ``cl`` at ``Re``) confident (>= ``min_confidence``) and
    near the database; see ``like_from_table``, plus the ``thickness``, ``confidence`` and ``database_distance``
    columns."""
    dom = Airfoil(("ld",), cl=cl, Re=Re, model=model, min_thickness=None, min_spar_area=None, min_confidence=None,
                  lift_tol=None, min_cm=None)
    tab = dom.table(v)
    out = like_from_table(tab, min_confidence)
    for col in ("thickness", "confidence", "database_distance"):
        out[col] = tab[col].to_numpy()
    return out


def draw_sections(v: np.ndarray, ax: Any = None, labels: Sequence[str] | None = None, spacing: float | None = None,
                  **style: Any) -> Any:
    """Outlines of sections ``v [n, 18]`` on one Axes, stacked with ``spacing`` chord between them."""
    import matplotlib.pyplot as plt

    v = sections.check(v).reshape(-1, sections.SECTION_SIZE)
    outline = sections.contour(v, 121)  # [n, 241, 2]
    if ax is None:
        ax = plt.subplots(figsize=(5, 1.0 + 0.55 * len(v)))[1]
    spacing = spacing if spacing is not None else max(0.3, 1.3 * float(np.ptp(outline[..., 1], axis=1).max()))
    for i, xy in enumerate(outline):
        shift = -i * spacing
        ax.fill(xy[:, 0], xy[:, 1] + shift, alpha=0.25, color=style.get("color", f"C{i % 10}"))
        ax.plot(xy[:, 0], xy[:, 1] + shift, lw=style.get("lw", 1.0), color=style.get("color", f"C{i % 10}"))
        if labels is not None and i < len(labels):
            ax.text(1.03, shift, labels[i], fontsize=style.get("fontsize", 7), va="center")
    ax.set_aspect("equal")
    ax.set_xlim(-0.03, 1.03 + (0.6 if labels is not None else 0.0))
    ax.axis("off")
    return ax
