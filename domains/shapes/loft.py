"""Wing geometry: a planform and two Kulfan sections lofted into a closed, consistently wound triangle mesh.

A wing is symmetric about y = 0. ``span`` is the tip-to-tip distance projected on the y axis; the quarter-chord
line is swept back by ``sweep`` and raised by ``dihedral`` (degrees); the chord falls linearly from
``root_chord`` to ``tip_chord``; each section is turned nose-up by a twist that grows linearly from 0 at the root
to ``twist`` at the tips, about its leading edge. This is aerosandbox's convention (``asb.WingXSec``: ``xyz_le``,
``chord``, ``twist`` about the leading edge around the local span axis), so the vortex lattice of
:mod:`.wing_aero` sees the same surface as the mesh.

Sections between root and tip blend the two Kulfan vectors linearly in the span fraction ``eta``; the surfaces
are linear in the Kulfan parameters, so this is the ruled loft of the normalized outlines. Every section uses
the same cosine-spaced chordwise stations, so the upper and lower surfaces pair up point by point: the tip caps
are strips of quads between them, valid for any section whose surfaces do not cross (checked). The mesh has the
same topology for every wing of a given resolution (vertex and face arrays of fixed shape), so a batch of wings
is lofted and measured in one numpy pass. The trailing edge is always blunt in the mesh: a section thinner there
than ``MIN_TE`` chord is opened to ``MIN_TE`` (0.2 mm on a 1 m chord), which keeps every face non-degenerate.

Everything here is numpy; ``trimesh`` (extra ``shapes``) is needed only to build ``trimesh.Trimesh`` objects,
check them and export STL / GLB.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import sections

MIN_TE = 2e-4  # chord; minimum trailing-edge opening of the mesh
PLANFORM = ("span", "root_chord", "tip_chord", "sweep", "twist", "dihedral")
LIMITS = {"sweep": 60.0, "twist": 20.0, "dihedral": 30.0}  # |degrees| a loft accepts


class GeometryError(ValueError):
    """A wing or mesh that cannot be a solid: non-finite or impossible values, crossing surfaces, open mesh."""


def require_trimesh() -> Any:
    """Import trimesh or raise an ImportError naming the ``shapes`` extra."""
    try:
        import trimesh
    except ImportError as err:
        raise ImportError(f"meshes need trimesh: {sections.INSTALL_HINT}") from err
    return trimesh


@dataclass(frozen=True)
class WingShape:
    """A batch of ``n`` wings: planform arrays ``[n]`` (metres, degrees) and Kulfan sections ``root``, ``tip``
    ``[n, 18]``. Built through :meth:`make`, which broadcasts scalars and checks every value."""

    span: np.ndarray
    root_chord: np.ndarray
    tip_chord: np.ndarray
    sweep: np.ndarray
    twist: np.ndarray
    dihedral: np.ndarray
    root: np.ndarray
    tip: np.ndarray

    @classmethod
    def make(cls, span: Any, root_chord: Any, tip_chord: Any, sweep: Any = 0.0, twist: Any = 0.0,
             dihedral: Any = 0.0, root: Any = None, tip: Any = None) -> WingShape:
        """Broadcast to a batch and check: finite values, positive span and chords, |sweep| < 60, |twist| < 20,
        |dihedral| < 30 degrees, sections whose surfaces do not cross. ``tip`` defaults to ``root``."""
        if root is None:
            raise GeometryError("a wing needs a root section (18 Kulfan values)")
        root = sections.check(root, "root section")
        tip = root if tip is None else sections.check(tip, "tip section")
        plan = {k: np.asarray(v, dtype=np.float64) for k, v in zip(PLANFORM, (span, root_chord, tip_chord, sweep,
                                                                                twist, dihedral))}
        try:
            n = int(np.broadcast_shapes(*(np.shape(v) for v in plan.values()), root.shape[:-1], tip.shape[:-1],
                                        (1,))[0])
        except ValueError as err:
            raise GeometryError(f"planform values and sections do not broadcast to one batch: {err}") from None
        out = {k: np.broadcast_to(np.atleast_1d(v), (n,)).copy() for k, v in plan.items()}
        out["root"] = np.broadcast_to(np.atleast_2d(root), (n, sections.SECTION_SIZE)).copy()
        out["tip"] = np.broadcast_to(np.atleast_2d(tip), (n, sections.SECTION_SIZE)).copy()
        shape = cls(**out)
        bad = shape.problems()
        if bad:
            row, reason = next(iter(bad.items()))
            more = f" (and {len(bad) - 1} more wings)" if len(bad) > 1 else ""
            raise GeometryError(f"wing {row}: {reason}{more}")
        return shape

    def __len__(self) -> int:
        return int(self.span.shape[0])

    def problems(self) -> dict[int, str]:
        """Row -> the first reason that wing cannot be lofted (empty when all can)."""
        bad: dict[int, str] = {}
        for name in PLANFORM:
            v = getattr(self, name)
            for i in np.flatnonzero(~np.isfinite(v)):
                bad.setdefault(int(i), f"{name} is {v[i]}")
        for name in ("span", "root_chord", "tip_chord"):
            v = getattr(self, name)
            for i in np.flatnonzero(np.isfinite(v) & (v <= 0)):
                bad.setdefault(int(i), f"{name} must be > 0, got {v[i]:g}")
        for name, lim in LIMITS.items():
            v = getattr(self, name)
            for i in np.flatnonzero(np.abs(v) >= lim):
                bad.setdefault(int(i), f"|{name}| must be < {lim:g} degrees, got {v[i]:g}")
        for side in ("root", "tip"):
            v = getattr(self, side)
            for i in np.flatnonzero(~np.isfinite(v).all(axis=1)):
                bad.setdefault(int(i), f"{side} section has non-finite Kulfan values")
            ok = np.isfinite(v).all(axis=1)
            cross = np.full(len(v), -np.inf)
            cross[ok] = sections.crossing(v[ok])
            for i in np.flatnonzero(cross > 0):
                bad.setdefault(int(i), f"self-intersecting: the {side} section's upper and lower surfaces cross "
                                       f"(overlap {cross[i]:.2g} chord)")
        return dict(sorted(bad.items()))

    def row(self, i: int) -> WingShape:
        """Wing ``i`` as a batch of one."""
        return WingShape(**{f.name: getattr(self, f.name)[i:i + 1].copy() for f in fields(self)})

    @property
    def area(self) -> np.ndarray:
        """Projected planform (reference) area ``[n]``, m^2."""
        return 0.5 * self.span * (self.root_chord + self.tip_chord)

    @property
    def aspect_ratio(self) -> np.ndarray:
        """``span^2 / area`` ``[n]``."""
        return self.span ** 2 / self.area


def span_stations(n_span: int) -> np.ndarray:
    """``[n_span + 1]`` span fractions 0..1 of one half wing, denser towards the tip (eta = sin(pi/2 k/n))."""
    if int(n_span) < 1:
        raise ValueError(f"n_span must be >= 1, got {n_span}")
    return np.sin(0.5 * np.pi * np.arange(int(n_span) + 1) / int(n_span))


def stations(shape: WingShape, eta: np.ndarray) -> dict[str, np.ndarray]:
    """Leading edge ``[n, m, 3]``, chord, twist (degrees) and blended section ``[n, m, 18]`` of the right half
    wing at span fractions ``eta [m]``."""
    eta = np.asarray(eta, dtype=np.float64)
    half = 0.5 * shape.span[:, None] * eta[None, :]  # [n, m]
    chord = shape.root_chord[:, None] + (shape.tip_chord - shape.root_chord)[:, None] * eta[None, :]
    x_le = half * np.tan(np.radians(shape.sweep))[:, None] + 0.25 * (shape.root_chord[:, None] - chord)
    z_le = half * np.tan(np.radians(shape.dihedral))[:, None]
    le = np.stack([x_le, half, z_le], axis=-1)
    section = (1.0 - eta)[None, :, None] * shape.root[:, None, :] + eta[None, :, None] * shape.tip[:, None, :]
    return {"le": le, "chord": chord, "twist": shape.twist[:, None] * eta[None, :], "section": section}


def _frames(dihedral: np.ndarray, twist: np.ndarray, miter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chord (x') and thickness (z') axes ``[n, m, 3]`` of stations: the local span axis is (0, cos G, sin G)
    (G the dihedral, mirrored for negative y); the twist turns x' and z' about it; ``miter [m]`` scales z' by
    1 / cos G where the two halves meet (as aerosandbox does at a dihedral break)."""
    g = np.radians(dihedral)[:, None] * np.sign(miter)[None, :]  # signed: the left half mirrors
    t = np.radians(twist)
    ex = np.zeros(g.shape + (3,))
    ex[..., 0] = 1.0
    ez = np.stack([np.zeros_like(g), -np.sin(g), np.cos(g)], axis=-1)
    ez = np.where((miter == 0)[None, :, None], np.array([0.0, 0.0, 1.0]) / np.cos(np.radians(dihedral))[:, None, None],
                  ez)
    x_axis = ex * np.cos(t)[..., None] - ez * np.sin(t)[..., None]
    z_axis = ez * np.cos(t)[..., None] + ex * np.sin(t)[..., None]
    return x_axis, z_axis


@lru_cache(maxsize=8)
def _topology(n_stations: int, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces ``[F, 3]`` (outward winding) and the span interval of each face ``[F]`` (-1 for the tip caps) of a
    loft with ``n_stations`` sections of ``2 n_points - 1`` outline vertices each."""
    m = 2 * n_points - 1  # outline: LE, upper 1..n-1, lower n-1..1
    ring = np.arange(m)
    faces, interval = [], []
    for s in range(n_stations - 1):  # side walls between consecutive stations (y increasing)
        a, b = s * m + ring, s * m + (ring + 1) % m
        c, d = (s + 1) * m + (ring + 1) % m, (s + 1) * m + ring
        faces += [np.stack([a, b, c], 1), np.stack([a, c, d], 1)]
        interval += [np.full(2 * m, s)]
    up = np.arange(n_points)  # outline index of upper point i (0 = LE)
    lo = np.where(up == 0, 0, m - up)  # outline index of lower point i (the lower TE point follows the upper one)
    # tip caps: quads between upper i, i + 1 and lower i, i + 1; as built a cap faces -y, so the right one flips
    for s, flip in ((0, False), (n_stations - 1, True)):
        u0, u1, l0, l1 = s * m + up[:-1], s * m + up[1:], s * m + lo[:-1], s * m + lo[1:]
        tri1, tri2 = np.stack([u0, l1, u1], 1), np.stack([u0, l0, l1], 1)
        keep = np.ones(len(u0), bool)
        keep[0] = False  # at the LE, u0 == l0: one triangle only
        cap = np.concatenate([tri1, tri2[keep]])
        faces.append(cap[:, ::-1] if flip else cap)
        interval.append(np.full(len(cap), -1))
    return np.concatenate(faces), np.concatenate(interval)


@dataclass
class Loft:
    """Lofted meshes of a batch of wings: ``vertices [n, V, 3]`` (m), shared ``faces [F, 3]``, the span interval
    of each face ``face_interval [F]`` (0..2 n_span - 1 from the left tip; -1 for the tip caps), the span
    fractions of the stations ``eta [2 n_span + 1]`` (-1 left tip .. 1 right tip)."""

    vertices: np.ndarray
    faces: np.ndarray
    face_interval: np.ndarray
    eta: np.ndarray

    def __len__(self) -> int:
        return int(self.vertices.shape[0])

    def mesh(self, i: int = 0, check: bool = True) -> Any:
        """Wing ``i`` as a ``trimesh.Trimesh``; ``check`` raises a GeometryError unless it is a closed, consistently
        wound solid of positive volume."""
        trimesh = require_trimesh()
        mesh = trimesh.Trimesh(self.vertices[i], self.faces, process=False)
        if check:
            check_mesh(mesh, name=f"wing {i}")
        return mesh


def loft(shape: WingShape, n_span: int = 12, n_points: int = 41) -> Loft:
    """Loft every wing of ``shape``: ``2 n_span + 1`` sections from tip to tip, ``n_points`` cosine-spaced points
    per surface. Raises a GeometryError for crossing surfaces anywhere along the span or a non-finite vertex."""
    if int(n_points) < 3:
        raise ValueError(f"n_points must be >= 3, got {n_points}")
    half = span_stations(n_span)
    eta = np.concatenate([-half[::-1], half[1:]])  # [S]
    st = stations(shape, np.abs(eta))
    sec = st["section"].copy()
    sec[..., sections.TE_THICKNESS] = np.maximum(sec[..., sections.TE_THICKNESS], MIN_TE)
    x, up, lo = sections.coordinates(sec, n_points)  # [P], [n, S, P]
    cross = np.max((lo - up)[..., 1:-1], axis=-1)
    if (cross > 0).any():
        i, s = np.argwhere(cross > 0)[0]
        raise GeometryError(f"self-intersecting: wing {i}'s upper and lower surfaces cross at span fraction "
                            f"{eta[s]:+.2f} (overlap {cross[i, s]:.2g} chord)")
    outline_x = np.concatenate([x, x[1:][::-1]])  # LE, upper 1..P-1, lower P-1..1  -> [2P - 1]
    outline_y = np.concatenate([up, lo[..., 1:][..., ::-1]], axis=-1)
    x_axis, z_axis = _frames(shape.dihedral, st["twist"], eta)
    le = st["le"].copy()
    le[..., 1] *= np.sign(eta)[None, :]
    c = st["chord"][..., None, None]
    verts = (le[:, :, None, :] + c * outline_x[None, None, :, None] * x_axis[:, :, None, :]
             + c * outline_y[..., None] * z_axis[:, :, None, :])  # [n, S, 2P - 2, 3]
    verts = verts.reshape(len(shape), -1, 3)
    if not np.isfinite(verts).all():
        raise GeometryError(f"wing {int(np.argwhere(~np.isfinite(verts))[0, 0])} has non-finite vertices")
    faces, interval = _topology(len(eta), int(n_points))
    return Loft(verts, faces, interval, eta)


def measures(lofted: Loft) -> dict[str, np.ndarray]:
    """Enclosed ``volume [n]`` (m^3, divergence theorem), ``wetted_area [n]`` (m^2, every face including the tip
    caps) and ``interval_area [n, 2 n_span]`` (skin area between consecutive stations) of lofted wings."""
    tri = lofted.vertices[:, lofted.faces]  # [n, F, 3, 3]
    cross = np.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    area = 0.5 * np.linalg.norm(cross, axis=-1)  # [n, F]
    volume = np.einsum("nfk,nfk->n", tri[:, :, 0], np.cross(tri[:, :, 1], tri[:, :, 2])) / 6.0
    n_int = len(lofted.eta) - 1
    per = np.zeros((len(lofted), n_int))
    side = lofted.face_interval >= 0
    np.add.at(per.T, lofted.face_interval[side], area[:, side].T)
    return {"volume": volume, "wetted_area": area.sum(axis=1), "interval_area": per}


# ---------------------------------------------------------------------------------------------------------------
# checks of any triangle mesh

def check_mesh(mesh: Any, name: str = "mesh", self_intersection: bool = False) -> Any:
    """Raise a GeometryError unless ``mesh`` (a ``trimesh.Trimesh``) has finite vertices, is watertight, is
    consistently wound, encloses a positive volume and (``self_intersection=True``) has no two faces that cross.
    Returns the mesh."""
    verts = np.asarray(mesh.vertices)
    if len(mesh.faces) == 0:
        raise GeometryError(f"{name}: the mesh has no faces")
    if not np.isfinite(verts).all():
        raise GeometryError(f"{name}: {int((~np.isfinite(verts).all(axis=1)).sum())} vertices are NaN or inf")
    if not mesh.is_watertight:
        raise GeometryError(f"{name}: the mesh is not watertight (some edges do not join exactly two faces)")
    if not mesh.is_winding_consistent:
        raise GeometryError(f"{name}: the faces are not wound consistently (normals flip between neighbours)")
    if not mesh.volume > 0:
        raise GeometryError(f"{name}: the enclosed volume is {mesh.volume:.3g} (inside out or flat)")
    if self_intersection:
        pairs = self_intersections(verts, np.asarray(mesh.faces))
        if len(pairs):
            raise GeometryError(f"{name}: self-intersecting: {len(pairs)} pairs of faces cross, e.g. faces "
                                f"{int(pairs[0, 0])} and {int(pairs[0, 1])}")
    return mesh


def _segment_hits(p0: np.ndarray, p1: np.ndarray, tri: np.ndarray, eps: float) -> np.ndarray:
    """``[k]`` bool: segment p0->p1 ``[k, 3]`` passes through the interior of triangle ``tri [k, 3, 3]``
    (Moller-Trumbore, touching within ``eps`` of an edge or end does not count)."""
    d = p1 - p0
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    h = np.cross(d, e2)
    a = np.einsum("ij,ij->i", e1, h)
    ok = np.abs(a) > 1e-300
    f = np.where(ok, 1.0 / np.where(ok, a, 1.0), 0.0)
    s = p0 - tri[:, 0]
    u = f * np.einsum("ij,ij->i", s, h)
    q = np.cross(s, e1)
    v = f * np.einsum("ij,ij->i", d, q)
    t = f * np.einsum("ij,ij->i", e2, q)
    return ok & (u > eps) & (v > eps) & (u + v < 1 - eps) & (t > eps) & (t < 1 - eps)


def self_intersections(vertices: np.ndarray, faces: np.ndarray, eps: float = 1e-9,
                       chunk: int = 200_000) -> np.ndarray:
    """Pairs of faces ``[k, 2]`` that cross each other (an edge of one passes through the other), among faces
    that share no vertex. Bounding boxes prune the pairs (a sweep along the longest axis); cost grows with
    the number of overlapping boxes, fine for meshes of a few ten thousand faces."""
    vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces)
    tri = vertices[faces]  # [F, 3, 3]
    lo, hi = tri.min(axis=1), tri.max(axis=1)
    axis = int(np.argmax(vertices.max(axis=0) - vertices.min(axis=0)))
    order = np.argsort(lo[:, axis])
    lo_s, hi_s = lo[order, axis], hi[order, axis]
    ends = np.searchsorted(lo_s, hi_s, side="right")  # faces j > i with lo_j <= hi_i overlap on the sweep axis
    counts = ends - np.arange(len(order)) - 1
    first = np.repeat(np.arange(len(order)), np.maximum(counts, 0))
    offsets = np.arange(len(first)) - np.repeat(np.cumsum(np.maximum(counts, 0)) - np.maximum(counts, 0),
                                                np.maximum(counts, 0))
    second = first + 1 + offsets
    a, b = order[first], order[second]
    found = []
    for start in range(0, len(a), chunk):
        ia, ib = a[start:start + chunk], b[start:start + chunk]
        box = np.all((lo[ia] <= hi[ib]) & (lo[ib] <= hi[ia]), axis=1)
        shared = (faces[ia][:, :, None] == faces[ib][:, None, :]).any(axis=(1, 2))
        ia, ib = ia[box & ~shared], ib[box & ~shared]
        if not len(ia):
            continue
        hit = np.zeros(len(ia), bool)
        for (ta, tb) in ((ia, ib), (ib, ia)):
            for k in range(3):
                p0, p1 = vertices[faces[ta, k]], vertices[faces[ta, (k + 1) % 3]]
                hit |= _segment_hits(p0, p1, tri[tb], eps)
        found.append(np.stack([ia[hit], ib[hit]], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------
# export

def export_mesh(mesh: Any, path: str | Path) -> Path:
    """Write ``mesh`` to ``path`` (the suffix picks the format: .stl, .glb, .obj, .ply) and check that it loads
    back as a closed mesh with the same volume (to 1e-6 relative; STL stores float32). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh.export(path)
    back = load_mesh(path)
    if not np.isclose(back.volume, mesh.volume, rtol=1e-5):
        raise GeometryError(f"{path}: the exported mesh has volume {back.volume:.6g}, the original {mesh.volume:.6g}")
    return path


def load_mesh(path: str | Path) -> Any:
    """Load one mesh file (a GLB scene is merged into one mesh) and check it is a closed solid."""
    trimesh = require_trimesh()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    loaded = trimesh.load(path, force="mesh", process=True)
    return check_mesh(loaded, name=str(path))
