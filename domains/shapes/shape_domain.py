"""3-D shapes as 32^3 occupancy grids under physics rewards, with a diffusion prior over the corpus.

``Shapes3D``: designs ``TensorSpace((1, 32, 32, 32), 0, 1, levels=2)`` (solid or empty voxels; one byte per voxel
in storage), the flow along +x, ``box`` metres per side of the grid. Quantities (any may be an objective or a
constraint; default directions in brackets; see :mod:`.shape_rewards` for the physics):

- ``drag_at_volume`` [minimize]: drag (N) of the shape scaled to hold ``reference_volume`` m^3 at ``flow``:
  Newtonian pressure on the marching-cubes faces plus ITTC flat-plate friction on the wetted area;
- ``drag`` [minimize] (N, at the box size), ``cd_volume`` [minimize] (drag / (q V^(2/3))), ``pressure_drag``,
  ``friction_drag`` [minimize];
- ``volume`` [maximize] (m^3, from the voxels), ``frontal_area`` [minimize] (m^2, the voxel silhouette along x),
  ``wetted_area`` [minimize] (m^2), ``length`` [minimize] (m, along x);
- ``watertight`` (1 when the surface is closed and consistently wound), ``pieces`` (separate bodies), ``voxels``
  (solid voxels). Bare constraint names take the bounds of :data:`CONSTRAINTS` (watertight >= 1, pieces <= 1,
  voxels >= 150: a body the grid resolves); pass ``(name, bound, sense)`` for others.

A grid with no solid voxel is a failed row ("the occupancy grid is empty ..."); the study goes on. Volume and
frontal area are batched tensor reductions; the surface quantities come from one marching cubes per shape (a few
milliseconds), cached per design so that the evaluation engine's bisection of a failing batch costs nothing
more; ``workers > 1`` spreads the surfaces of large batches over that many processes. ``evaluate_soft`` gives
differentiable proxies (:func:`.shape_rewards.soft_quantities`) for DRAKES and DPS.
``prior()`` is the Gaussian diffusion of :mod:`.shape_prior` ("full" or "tiny"), ``dataset()`` the corpus'
metadata, ``designs(split, family)`` its grids; ``render`` draws marching-cubes surfaces in 3-D.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.domain import Domain
from workbench.objectives import Constraint, Objective, as_objectives
from workbench.plotting import grid_size
from workbench.spaces import TensorSpace

from . import shape_rewards, voxels
from .corpus import FAMILIES, load_corpus
from .shape_rewards import Flow

#: quantity -> its default direction as an objective
OBJECTIVES = {"drag_at_volume": "minimize", "drag": "minimize", "cd_volume": "minimize", "pressure_drag": "minimize",
              "friction_drag": "minimize", "volume": "maximize", "frontal_area": "minimize",
              "wetted_area": "minimize", "length": "minimize", "watertight": "maximize", "pieces": "minimize",
              "voxels": "maximize"}
#: bare constraint name -> its constraint
CONSTRAINTS = {"watertight": Constraint("watertight", 1.0, ">="), "pieces": Constraint("pieces", 1.0, "<="),
               "voxels": Constraint("voxels", 150.0, ">=")}
PRIOR_CONFIGS = ("full", "tiny")
CACHE_SIZE = 20_000


def shape_space(resolution: int = voxels.RESOLUTION) -> TensorSpace:
    """Occupancy grids ``[1, D, D, D]`` with values 0 (empty) or 1 (solid)."""
    d = voxels.check_resolution(resolution)
    return TensorSpace((1, d, d, d), 0.0, 1.0, levels=2)


def _as_constraints(items: Sequence[Constraint | str | tuple] | str) -> list[Constraint]:
    items = (items,) if isinstance(items, str) else items
    out = []
    for item in items:
        if isinstance(item, str):
            if item not in CONSTRAINTS:
                raise ValueError(f"constraint {item!r} has no default bound; give (name, bound, sense), e.g. "
                                 f"('{item}', 1.0, '<='); defaults exist for {sorted(CONSTRAINTS)}")
            out.append(CONSTRAINTS[item])
        else:
            out.append(item if isinstance(item, Constraint) else Constraint(*item))
    return out


class Shapes3D(Domain):
    """3-D shapes on a 32^3 grid; see the module docstring.

    >>> dom = Shapes3D(objectives=("drag_at_volume",), constraints=("watertight", "pieces"))
    >>> x = dom.designs("test", "car")[:8]        # [8, 1, 32, 32, 32]
    >>> dom.evaluate(x)                           # {"drag_at_volume": [8], "watertight": [8], "pieces": [8]}
    """

    name = "shapes3d"

    def __init__(self, objectives: Sequence[str | tuple | Objective] | str = ("drag_at_volume",),
                 constraints: Sequence[str | tuple | Constraint] | str = ("watertight", "pieces", "voxels"),
                 box: float = 4.0, flow: Flow | None = None, reference_volume: float = 1.0, prior: str = "full",
                 device: str | torch.device | None = None, workers: int = 0) -> None:
        objs = as_objectives(objectives, default="minimize", directions=OBJECTIVES)
        cons = _as_constraints(constraints)
        bad = [q.name for q in [*objs, *cons] if q.name not in OBJECTIVES]
        if bad:
            raise ValueError(f"unknown quantities {bad}; choose from {list(OBJECTIVES)}")
        for name, value in (("box", box), ("reference_volume", reference_volume)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number (metres per box side / m^3), got {value!r}")
        if prior not in PRIOR_CONFIGS:
            raise ValueError(f"prior must be one of {PRIOR_CONFIGS}, got {prior!r}")
        super().__init__(shape_space(), objs, cons)
        self.box = float(box)
        self.flow = flow or Flow()
        self.reference_volume = float(reference_volume)
        self.prior_config = prior
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.workers = int(workers)
        self._names = [q.name for q in [*objs, *cons]]
        self._cache: OrderedDict[bytes, tuple[dict[str, float], str | None]] = OrderedDict()

    # ------------------------------------------------------------------ scoring
    def _check(self, x: Any) -> torch.Tensor:
        x = shape_rewards.check_grids(x)
        if tuple(x.shape[1:]) != self.space.shape:
            raise ValueError(f"expected grids [n, 1, 32, 32, 32], got {list(x.shape)}")
        return x

    def quantities(self, x: torch.Tensor) -> tuple[pd.DataFrame, list[str | None]]:
        """Every quantity of :data:`OBJECTIVES` for grids ``x [n, 1, 32, 32, 32]`` (one row each; NaN where a
        row failed) and one error message or None per row."""
        x = self._check(x)
        keys = [bytes(k) for k in voxels.pack((x[:, 0] > 0.5).cpu().numpy())]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            values, errors = shape_rewards.grid_rewards(x[todo], self.box, self.flow, self.reference_volume,
                                                        workers=self.workers)
            columns = {k: v.cpu().tolist() for k, v in values.items()}
            for j, i in enumerate(todo):
                self._cache[keys[i]] = ({k: columns[k][j] for k in columns}, errors[j])
                if len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        rows = [self._cache[k] for k in keys]
        return pd.DataFrame([r[0] for r in rows]), [r[1] for r in rows]

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives and constraints by name, each ``[n]`` float64 on ``x``'s device, of grids ``x [n, 1, 32, 32,
        32]`` (float, 0 or 1). A batch holding a row with no surface raises a ValueError naming the row: the
        evaluation engine bisects the batch (served from this domain's cache) and marks just that row failed."""
        frame, errors = self.quantities(x)
        bad = [(i, e) for i, e in enumerate(errors) if e is not None]
        if bad:
            raise ValueError(f"design {bad[0][0]}: {bad[0][1]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1
                                                                   else ""))
        return {name: torch.tensor(frame[name].to_numpy(), dtype=torch.float64, device=x.device)
                for name in self._names}

    def evaluate_soft(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable quantities ``[n]`` float64 of soft grids ``x [n, 1, 32, 32, 32]`` in [0, 1]
        (:func:`.shape_rewards.soft_quantities`); gradients flow to ``x``."""
        values = shape_rewards.soft_quantities(self._check(x), self.box, self.flow, self.reference_volume)
        return {name: values[name] for name in self._names}

    # ------------------------------------------------------------------ data and prior
    def dataset(self) -> pd.DataFrame:
        """The corpus' metadata: one row per shape (family, split, scale in metres per box side, mesh volume and
        area in m^3 / m^2, voxels, parameters as JSON); the grids come from :meth:`designs`."""
        return load_corpus().meta.copy()

    def designs(self, split: str | None = None, family: str | None = None) -> torch.Tensor:
        """Corpus grids of ``split`` (train / valid / test) and ``family`` (wing / fuselage / car; None: all) as
        designs ``[n, 1, 32, 32, 32]``."""
        return load_corpus().tensor(split, family)

    def prior(self) -> Any:
        """The shape diffusion prior of ``prior_config`` on the constructor's device (samplers move it)."""
        from .shape_prior import load_prior

        return load_prior(self.prior_config, self.device)

    def render(self, x: torch.Tensor, ax: Any = None, ncols: int | None = None,
               titles: Sequence[str] | None = None) -> Any:
        """Draw grids ``[n, 1, D, D, D]`` (or ``[n, D, D, D]``) as shaded marching-cubes surfaces, each in the same
        orthographic 3/4 view of its unit box (the flow comes from the front left), tiled in ``ncols`` columns on
        one Axes with optional ``titles``; an empty grid is a blank cell marked "(empty)". Returns the Axes."""
        return draw_grids(x, ax=ax, ncols=ncols, titles=titles)

    def describe(self) -> dict[str, Any]:
        spec = super().describe()
        spec["settings"] = {"box": self.box, "flow": {"speed": self.flow.speed, "density": self.flow.density,
                                                      "viscosity": self.flow.viscosity},
                            "reference_volume": self.reference_volume, "prior": self.prior_config,
                            "families": list(FAMILIES)}
        return spec


# ---------------------------------------------------------------------------------------------------------------
# pictures

LIGHT = np.array([-0.45, -0.55, 0.7]) / np.linalg.norm([-0.45, -0.55, 0.7])


def shape_image(grid: Any, pixels: int = 220, elev: float = 22.0, azim: float = -128.0) -> np.ndarray:
    """A shaded 3/4 view (orthographic, flow from the front left) of one grid's marching-cubes surface as an RGB
    image ``[pixels, pixels, 3]`` in [0, 1]; an empty grid gives a blank image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    fig = Figure(figsize=(pixels / 100, pixels / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1), projection="3d")
    try:
        verts, faces = voxels.surface(grid)
    except ValueError:
        pass
    else:
        tri = verts[faces]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
        shade = 0.3 + 0.7 * np.clip(normal @ LIGHT, 0.0, 1.0)
        color = np.stack([0.25 + 0.6 * shade, 0.4 + 0.5 * shade, 0.55 + 0.45 * shade, np.ones_like(shade)], axis=1)
        ax.add_collection3d(Poly3DCollection(tri, facecolors=color.clip(0, 1), edgecolor="none"))
    ax.set_proj_type("ortho")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_zlim(0, 1)
    ax.set_box_aspect((1, 1, 1), zoom=1.45)
    ax.view_init(elev, azim)
    ax.set_axis_off()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3] / 255.0


def draw_grids(x: Any, ax: Any = None, ncols: int | None = None, titles: Sequence[str] | None = None,
               pixels: int = 220) -> Any:
    """Shaded surfaces of occupancy grids tiled on one (2-D) Axes; see :meth:`Shapes3D.render`."""
    import matplotlib.pyplot as plt

    g = torch.as_tensor(x).detach().cpu().float()
    if g.dim() == 5 and g.shape[1] == 1:
        g = g[:, 0]
    if g.dim() != 4 or g.shape[0] == 0 or not (g.shape[1] == g.shape[2] == g.shape[3]):
        raise ValueError(f"render expects grids [n, 1, D, D, D] or [n, D, D, D] with n >= 1, got {list(g.shape)}")
    n = g.shape[0]
    ncols, nrows = grid_size(n, ncols, titles, "shapes")
    crop = (int(0.18 * pixels), int(0.82 * pixels))  # the box's 3/4 view leaves the top and bottom empty
    cell_h = crop[1] - crop[0]
    canvas = np.ones((nrows * cell_h, ncols * pixels, 3))
    for k in range(n):
        r, c = divmod(k, ncols)
        canvas[r * cell_h:(r + 1) * cell_h, c * pixels:(c + 1) * pixels] = shape_image(g[k].numpy(), pixels)[
            crop[0]:crop[1]]
    if ax is None:
        _, ax = plt.subplots(figsize=(ncols * pixels / 100, nrows * cell_h / 100 + 0.1))
        ax.figure.subplots_adjust(0, 0, 1, 1)
    ax.imshow(canvas, interpolation="antialiased")
    for k in range(n):
        r, c = divmod(k, ncols)
        label = "" if titles is None else str(titles[k])
        if not bool((g[k] > 0.5).any()):
            label = (label + " (empty)").strip()
        if label:
            ax.text(c * pixels + pixels / 2, r * cell_h + 4, label, fontsize=7, ha="center", va="top")
    for r in range(1, nrows):
        ax.axhline(r * cell_h - 0.5, color="0.85", lw=0.5)
    for c in range(1, ncols):
        ax.axvline(c * pixels - 0.5, color="0.85", lw=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def render_grids(x: Any, path: str | Path, ncols: int | None = None, titles: Sequence[str] | None = None) -> Path:
    """:func:`draw_grids` into a PNG at ``path``."""
    import matplotlib.pyplot as plt

    ax = draw_grids(x, ncols=ncols, titles=titles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(path, dpi=100)
    plt.close(ax.figure)
    return path
