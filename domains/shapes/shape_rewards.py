"""Physics rewards of 3-D shapes: volume, frontal area, a drag estimate, watertightness.

The flow comes along +x at ``Flow.speed``. Drag is a classical estimate in two parts:

- **pressure** (Newtonian impact theory): a face whose outward normal ``n`` looks upstream (``c = -n . x > 0``)
  feels ``C_p = 2 c^2``; its drag is ``q C_p c A``, leeward faces feel nothing. Exact Newtonian values: a sphere
  ``C_D = 1``, a flat disc facing the flow ``2``, a cylinder across the flow ``4/3`` (on the frontal area);
- **skin friction** on the whole wetted area ``S``: ``q C_f S`` with the ITTC-1957 flat-plate line
  ``C_f = 0.075 / (log10 Re - 2)^2``, ``Re = speed * length / nu`` on the length along the flow.

``q = rho speed^2 / 2``. Newtonian theory ignores shadowing and base pressure, so it is a ranking of shapes, not
a wind tunnel: blunt, upstream-facing surfaces cost, slender noses and long tails do not, and wetted area costs
friction. **Drag at equal volume** (``drag_at_volume``) is the drag of the shape scaled uniformly to
``reference_volume`` m^3: pressure drag and wetted area scale with the square of the size and the Reynolds number
with the length, so shapes of any size compare as if they held the same volume.

Grids ``[n, 1, D, D, D]`` (unit box, ``box`` metres per side): volume and frontal area (silhouette along x) are
tensor reductions on the whole batch; the drag needs each shape's surface (marching cubes, see
:func:`.voxels.surface`), one shape at a time. :func:`grid_rewards` returns every quantity per row with the rows
that have no surface marked; :func:`mesh_rewards` scores one explicit mesh and refuses a non-watertight,
self-intersecting or NaN one with a clear error. :func:`soft_quantities` are differentiable proxies from the
occupancy's gradient, for gradient-based samplers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from . import voxels

NEWTONIAN_CP_MAX = 2.0  # classical Newtonian stagnation pressure coefficient


@dataclass(frozen=True)
class Flow:
    """Free stream: ``speed`` (m/s), air ``density`` (kg/m^3) and kinematic ``viscosity`` (m^2/s; sea level)."""

    speed: float = 30.0
    density: float = 1.225
    viscosity: float = 1.46e-5

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"flow {name} must be a positive finite number, got {value!r}")

    @property
    def dynamic_pressure(self) -> float:
        return 0.5 * self.density * self.speed ** 2


def skin_friction(reynolds: Any) -> np.ndarray:
    """ITTC-1957 flat-plate friction coefficient ``0.075 / (log10 Re - 2)^2`` of ``reynolds [...]`` (> 1000)."""
    re = np.asarray(reynolds, dtype=np.float64)
    if not (np.isfinite(re).all() and (re > 1e3).all()):
        raise ValueError(f"the friction line needs finite Reynolds numbers above 1e3, got {re.min():.3g}")
    return 0.075 / (np.log10(re) - 2.0) ** 2


# ---------------------------------------------------------------------------------------------------------------
# surfaces

def surface_terms(vertices: np.ndarray, faces: np.ndarray) -> dict[str, float]:
    """Size-free sums of a closed surface (any length unit L): ``newtonian`` = sum of ``2 c^3 A`` over windward
    faces (L^2; pressure drag / q), ``wetted_area`` (L^2), ``projected_area`` = sum of ``c A`` over windward faces
    (L^2; the frontal area of a convex body), ``length`` along x (L) and the enclosed ``volume`` (L^3)."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[np.asarray(faces, dtype=np.int64)]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(cross, axis=1)
    nx = cross[:, 0] / np.maximum(2.0 * area, 1e-300)
    c = np.clip(-nx, 0.0, None)
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    return {"newtonian": float((NEWTONIAN_CP_MAX * c ** 3 * area).sum()), "wetted_area": float(area.sum()),
            "projected_area": float((c * area).sum()), "length": float(np.ptp(v[:, 0])), "volume": float(volume)}


def drag_of(terms: dict[str, float], size: float, flow: Flow) -> dict[str, float]:
    """Drag (N) of a surface whose ``terms`` (:func:`surface_terms`) are in units of ``size`` metres: pressure,
    friction, total, Reynolds number and friction coefficient."""
    q = flow.dynamic_pressure
    length = terms["length"] * size
    reynolds = flow.speed * length / flow.viscosity
    cf = float(skin_friction(reynolds))
    pressure = q * terms["newtonian"] * size ** 2
    friction = q * cf * terms["wetted_area"] * size ** 2
    return {"pressure_drag": pressure, "friction_drag": friction, "drag": pressure + friction,
            "reynolds": reynolds, "cf": cf}


def scale_to_volume(volume: float, reference_volume: float) -> float:
    """Factor by which a shape of ``volume`` is scaled (uniformly) to hold ``reference_volume``."""
    if not volume > 0:
        raise ValueError(f"a shape needs a positive volume to be scaled to a reference volume, got {volume:.3g}")
    return (reference_volume / volume) ** (1.0 / 3.0)


def mesh_rewards(mesh: Any, flow: Flow = Flow(), reference_volume: float = 1.0,
                 self_intersection: bool = True) -> dict[str, float]:
    """Volume (m^3), wetted and frontal area (m^2), drag (N) and drag at equal volume (N) of one closed mesh in
    metres (a ``trimesh.Trimesh``). A mesh with NaN vertices, open edges, inconsistent winding or (with
    ``self_intersection``) crossing faces is refused with a ``GeometryError`` (a ValueError) saying which."""
    from .loft import check_mesh

    check_mesh(mesh, name="mesh", self_intersection=self_intersection)
    terms = surface_terms(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    out = {"volume": terms["volume"], "wetted_area": terms["wetted_area"], "frontal_area": terms["projected_area"],
           "length": terms["length"], **drag_of(terms, 1.0, flow)}
    out["drag_at_volume"] = drag_of(terms, scale_to_volume(terms["volume"], reference_volume), flow)["drag"]
    return out


# ---------------------------------------------------------------------------------------------------------------
# grids (batched)

def check_grids(x: Any) -> torch.Tensor:
    """``x`` as a float tensor ``[n, 1, D, D, D]`` of occupancies in [0, 1]; a ValueError naming the problem."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a tensor of occupancy grids [n, 1, D, D, D], got {type(x).__name__}")
    if x.dim() != 5 or x.shape[1] != 1 or not (x.shape[2] == x.shape[3] == x.shape[4]):
        raise ValueError(f"expected occupancy grids of shape [n, 1, D, D, D], got {list(x.shape)}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"expected float occupancies in [0, 1], got dtype {x.dtype}")
    return x


def voxel_volume(x: torch.Tensor, box: float = 1.0) -> torch.Tensor:
    """Occupied volume ``[n]`` (m^3, float64) of grids ``[n, 1, D, D, D]`` (occupancy > 0.5) in a box of ``box``
    metres per side."""
    x = check_grids(x)
    d = x.shape[-1]
    return (x > 0.5).flatten(1).sum(1).double() * (box / d) ** 3


def voxel_frontal_area(x: torch.Tensor, box: float = 1.0) -> torch.Tensor:
    """Silhouette area ``[n]`` (m^2, float64) seen by the flow: (y, z) columns holding any occupied voxel."""
    x = check_grids(x)
    d = x.shape[-1]
    return (x > 0.5).any(dim=2).flatten(1).sum(1).double() * (box / d) ** 2


GRID_KEYS = ("volume", "frontal_area", "wetted_area", "length", "pressure_drag", "friction_drag", "drag",
             "drag_at_volume", "cd_volume", "watertight", "pieces", "voxels")


def surface_of(grid: np.ndarray, smooth: float = voxels.SMOOTH) -> tuple[dict[str, float] | None, str | None]:
    """(surface terms of one bool grid ``[D, D, D]`` plus ``open_edges``, ``repeated_edges`` and ``pieces``, or
    None; an error message or None): the per-shape work of :func:`grid_rewards`, also run in worker processes."""
    if not grid.any():
        return None, "the occupancy grid is empty: no solid voxel, no surface"
    try:
        verts, faces = voxels.surface(grid, smooth)
    except ValueError as err:
        return None, str(err)
    terms = surface_terms(verts, faces)
    terms["open_edges"], terms["repeated_edges"] = voxels.edge_defects(faces)
    terms["pieces"] = voxels.components(faces, len(verts))
    return terms, None


def _surface_of_bits(job: tuple[bytes, int, float]) -> tuple[dict[str, float] | None, str | None]:
    bits, d, smooth = job
    grid = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=d ** 3).reshape(d, d, d).astype(bool)
    return surface_of(grid, smooth)


_POOLS: dict[int, Any] = {}


def _pool(workers: int) -> Any:
    """A process pool of ``workers`` (spawned: safe beside CUDA), started on first use and kept for the process."""
    if workers not in _POOLS:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return _POOLS[workers]


def grid_rewards(x: torch.Tensor, box: float = 1.0, flow: Flow = Flow(), reference_volume: float = 1.0,
                 smooth: float = voxels.SMOOTH, workers: int = 0) -> tuple[dict[str, torch.Tensor], list[str | None]]:
    """Every reward of grids ``x [n, 1, D, D, D]`` (occupancy > 0.5 is solid; ``box`` metres per box side).

    Returns ({name: ``[n]`` float64} for :data:`GRID_KEYS`, one error message or None per row). Volume and
    frontal area come from the voxels (whole batch at once); the rest from each grid's marching-cubes surface:
    ``watertight`` is 1 for a closed, consistently wound surface (0 otherwise), ``pieces`` the number of separate
    bodies, ``cd_volume = drag / (q V^(2/3))`` the volumetric drag coefficient (V the surface's volume),
    ``voxels`` the count of solid voxels. A grid with no solid voxel has no surface: its row is NaN with an error
    message. ``workers > 1`` spreads the surfaces of a large batch over that many processes (a few milliseconds
    each; SVDD scores thousands per run).
    """
    x = check_grids(x)
    n, d = x.shape[0], x.shape[-1]
    out = {k: torch.full((n,), math.nan, dtype=torch.float64) for k in GRID_KEYS}
    out["volume"], out["frontal_area"] = voxel_volume(x, box).cpu(), voxel_frontal_area(x, box).cpu()
    out["voxels"] = (x > 0.5).flatten(1).sum(1).double().cpu()
    grids = (x[:, 0] > 0.5).cpu().numpy()
    if workers > 1 and n >= 2 * workers:
        jobs = [(bytes(b), d, smooth) for b in voxels.pack(grids)]
        surfaces = list(_pool(workers).map(_surface_of_bits, jobs, chunksize=max(1, n // (4 * workers))))
    else:
        surfaces = [surface_of(g, smooth) for g in grids]
    errors: list[str | None] = [error for _, error in surfaces]
    q = flow.dynamic_pressure
    for i, (terms, _) in enumerate(surfaces):
        if terms is None:
            continue
        try:
            row = drag_of(terms, box, flow)
            at_volume = drag_of(terms, scale_to_volume(terms["volume"], reference_volume), flow)["drag"]
        except ValueError as err:  # no volume, a length too short for the friction line
            errors[i] = str(err)
            continue
        mesh_volume = terms["volume"] * box ** 3
        values = {"wetted_area": terms["wetted_area"] * box ** 2, "length": terms["length"] * box,
                  "pressure_drag": row["pressure_drag"], "friction_drag": row["friction_drag"], "drag": row["drag"],
                  "drag_at_volume": at_volume, "cd_volume": row["drag"] / (q * mesh_volume ** (2.0 / 3.0)),
                  "watertight": float(terms["open_edges"] == 0 and terms["repeated_edges"] == 0),
                  "pieces": float(terms["pieces"])}
        for k, v in values.items():
            out[k][i] = v
    return {k: v.to(x.device) for k, v in out.items()}, errors


# ---------------------------------------------------------------------------------------------------------------
# differentiable proxy

def soft_quantities(x: torch.Tensor, box: float = 1.0, flow: Flow = Flow(), reference_volume: float = 1.0,
                    eps: float = 1e-3) -> dict[str, torch.Tensor]:
    """Differentiable versions ``[n]`` (float64) of :data:`GRID_KEYS` for soft occupancy grids ``x [n, 1, D, D, D]``
    in [0, 1] (e.g. a diffusion sampler's relaxed designs), plus ``voxels`` (the summed occupancy).

    The surface is the occupancy's gradient field ``g`` (central differences, zero outside the box): the wetted
    area is ``sum |g|`` and the Newtonian sum ``sum 2 max(g_x / |g|, 0)^3 |g|`` (the outward normal is ``-g / |g|``),
    both in voxel faces; the volume is the summed occupancy, the frontal area ``1 - prod(1 - occupancy)`` summed
    over the (y, z) columns, the length the x extent of the voxels above 0.5 (held fixed). ``watertight`` and
    ``pieces`` are constants (1: a grid's surface is closed; pieces have no gradient). On hard corpus grids the
    proxy's drag at equal volume is biased high (1.35-1.7x the mesh value: central differences of a staircase
    see more steep surface than the smoothed mesh) but ranks shapes alike (rank correlation 0.98 over 120 test
    shapes of the three families, 0.80-0.92 within a family; tested > 0.8). It is the gradient DRAKES and DPS
    follow; every reported number comes from the mesh.
    """
    x = check_grids(x).double()
    d = x.shape[-1]
    h = box / d
    occ = torch.nn.functional.pad(x[:, 0], (1, 1, 1, 1, 1, 1))
    gx = (occ[:, 2:, 1:-1, 1:-1] - occ[:, :-2, 1:-1, 1:-1]) / 2
    gy = (occ[:, 1:-1, 2:, 1:-1] - occ[:, 1:-1, :-2, 1:-1]) / 2
    gz = (occ[:, 1:-1, 1:-1, 2:] - occ[:, 1:-1, 1:-1, :-2]) / 2
    norm = torch.sqrt(gx ** 2 + gy ** 2 + gz ** 2 + eps ** 2) - eps
    c = (gx / (norm + eps)).clamp_min(0.0)
    newtonian = (NEWTONIAN_CP_MAX * c ** 3 * norm).flatten(1).sum(1) / d ** 2  # box-side units
    wetted = norm.flatten(1).sum(1) / d ** 2
    occupancy = x[:, 0].flatten(1).sum(1)
    volume = occupancy.clamp_min(1.0) / d ** 3
    frontal = (1.0 - torch.prod(1.0 - x[:, 0], dim=1)).flatten(1).sum(1) * h ** 2
    with torch.no_grad():
        solid = (x[:, 0] > 0.5).any(dim=3).any(dim=2)  # [n, D] slices along x
        idx = torch.arange(d, device=x.device, dtype=torch.float64)
        first = torch.where(solid, idx, float(d)).amin(1)
        last = torch.where(solid, idx, -1.0).amax(1)
        length = (last - first + 1).clamp_min(1.0) / d
    q = flow.dynamic_pressure

    def drag(size: torch.Tensor | float) -> torch.Tensor:
        reynolds = flow.speed * length * size / flow.viscosity
        cf = 0.075 / (torch.log10(reynolds.clamp_min(1e3)) - 2.0) ** 2
        return q * size ** 2 * (newtonian + cf * wetted)

    at_box = drag(box)
    ones = torch.ones_like(volume)
    return {"volume": volume * box ** 3, "frontal_area": frontal, "wetted_area": wetted * box ** 2,
            "length": length * box, "pressure_drag": q * box ** 2 * newtonian, "friction_drag": at_box - q * box ** 2
            * newtonian, "drag": at_box, "drag_at_volume": drag((reference_volume / volume) ** (1.0 / 3.0)),
            "cd_volume": at_box / (q * (volume * box ** 3) ** (2.0 / 3.0)), "watertight": ones, "pieces": ones,
            "voxels": occupancy}


def soft_drag_at_volume(x: torch.Tensor, flow: Flow = Flow(), reference_volume: float = 1.0) -> torch.Tensor:
    """Differentiable drag at equal volume ``[n]`` (N) of soft grids ``x [n, 1, D, D, D]``; see
    :func:`soft_quantities`."""
    return soft_quantities(x, 1.0, flow, reference_volume)["drag_at_volume"]
