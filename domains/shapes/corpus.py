"""The 3-D shape corpus: watertight shapes from three parametric families, voxelized to occupancy grids.

    python -m domains.shapes.corpus --per-family 1000 --seed 0      # writes data/shapes32.npz and shapes32.csv.gz

Families (every shape is a closed triangle mesh in metres, the flow along +x, symmetric about y = 0):

- ``wing``: Part 2's wings (:mod:`.loft`: a planform and two Kulfan sections lofted into a closed mesh), root and
  tip sections drawn from the fitted UIUC airfoils. A 32^3 grid resolves about 1/30 of the span, so the family
  keeps to wings that are thick enough to be seen: aspect ratio 1.5-3.5, taper 0.4-1, airfoils 14-24 % thick
  (flying wings and blended planforms; a transport wing of aspect ratio 9 and 12 % would be under a voxel thick);
- ``fuselage``: bodies of revolution (slightly elliptic sections) with a varied nose (ellipse to ogive to cone),
  a cylindrical mid-body and a tail cone that closes to a point or to a flat base, with tail upsweep;
- ``car``: lofts of superellipse sections along the length: a side profile through nose, hood, windshield, roof,
  rear window and tail (PCHIP through drawn heights), a plan view rounded at both ends, tumblehome above the
  beltline.

Each shape is normalized into the unit box (:func:`.voxels.normalize`: centred, longest extent 30 of 32 voxels),
voxelized (:func:`.voxels.voxelize`), and kept only when its grid is one piece whose marching-cubes surface is
watertight (thin wing tips can fall between voxel centres; such draws are replaced by the next draw, and the
count is reported). Shape ``i`` of a family comes from ``numpy.random.default_rng([seed, family, i, attempt])``,
so the corpus regenerates bit for bit. The grids ship as bits (``numpy.packbits``) in ``data/shapes32.npz``; the
metadata (family, split, scale in metres per box side, physical volume and wetted area of the mesh, parameters
as JSON) in ``data/shapes32.csv.gz``. Splits: 85 % train, 5 % valid, 10 % test per family (seeded).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from . import voxels

DATA_DIR = Path(__file__).resolve().parent / "data"
FAMILIES = ("wing", "fuselage", "car")
SPLITS = ("train", "valid", "test")
SPLIT_SHARES = (0.85, 0.05, 0.10)
MAX_ATTEMPTS = 20
RING = 32  # points around a fuselage or car section


def corpus_paths(resolution: int = voxels.RESOLUTION) -> tuple[Path, Path]:
    """(grids ``.npz``, metadata ``.csv.gz``) of the shipped corpus at ``resolution``."""
    return DATA_DIR / f"shapes{resolution}.npz", DATA_DIR / f"shapes{resolution}.csv.gz"


# ---------------------------------------------------------------------------------------------------------------
# meshes of a ring loft (fuselage, car)

def ring_loft(rings: np.ndarray, front: np.ndarray, back: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed mesh of ``rings [S, m, 3]`` (each ring running from +y towards +z, rings ordered along +x)
    capped by a fan to the points ``front [3]`` and ``back [3]`` -> (vertices ``[S m + 2, 3]``, faces, outward)."""
    s, m, _ = rings.shape
    verts = np.concatenate([rings.reshape(-1, 3), front[None], back[None]])
    k = np.arange(m)
    faces = []
    for r in range(s - 1):
        a, b = r * m + k, r * m + (k + 1) % m
        c, d = (r + 1) * m + (k + 1) % m, (r + 1) * m + k
        faces += [np.stack([a, b, c], 1), np.stack([a, c, d], 1)]
    f_idx, b_idx = s * m, s * m + 1
    faces.append(np.stack([np.full(m, f_idx), (k + 1) % m, k], 1))
    last = (s - 1) * m
    faces.append(np.stack([np.full(m, b_idx), last + k, last + (k + 1) % m], 1))
    return verts, np.concatenate(faces).astype(np.int64)


def _angles(m: int = RING) -> np.ndarray:
    return 2 * np.pi * np.arange(m) / m


def fuselage(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """A body of revolution: (vertices ``[V, 3]`` m, faces ``[F, 3]``, parameters)."""
    p = {"length": rng.uniform(8.0, 40.0), "fineness": rng.uniform(3.5, 8.0), "nose": rng.uniform(0.12, 0.35),
         "tail": rng.uniform(0.2, 0.4), "nose_bluntness": rng.uniform(0.35, 0.75), "tail_power": rng.uniform(1.2, 2.5),
         "base": rng.choice([0.0, rng.uniform(0.08, 0.3)]), "upsweep": rng.uniform(0.0, 0.6),
         "ellipticity": rng.uniform(0.85, 1.15)}
    length, radius = p["length"], p["length"] / p["fineness"] / 2
    s = 0.5 * (1 - np.cos(np.linspace(0.0, np.pi, 48)))[1:]  # stations along the length, dense at the ends
    if p["base"] == 0.0:
        s = s[:-1]
    r, zc = np.empty_like(s), np.zeros_like(s)
    nose, tail = s < p["nose"], s > 1 - p["tail"]
    u = s[nose] / p["nose"]
    r[nose] = (1 - (1 - u) ** 2) ** p["nose_bluntness"]
    r[~nose & ~tail] = 1.0
    w = (s[tail] - (1 - p["tail"])) / p["tail"]
    r[tail] = p["base"] + (1 - p["base"]) * (1 - w ** p["tail_power"])
    zc[tail] = p["upsweep"] * w ** 2
    th = _angles()
    ry, rz = radius * r * np.sqrt(1 / p["ellipticity"]), radius * r * np.sqrt(p["ellipticity"])
    rings = np.stack([np.broadcast_to(s[:, None] * length, (len(s), len(th))), ry[:, None] * np.cos(th),
                      radius * zc[:, None] + rz[:, None] * np.sin(th)], axis=-1)
    verts, faces = ring_loft(rings, np.zeros(3), np.array([length, 0.0, radius * p["upsweep"]]))
    return verts, faces, {k: float(v) for k, v in p.items()}


def car(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """A car-like loft of superellipse sections: (vertices ``[V, 3]`` m, faces ``[F, 3]``, parameters)."""
    from scipy.interpolate import PchipInterpolator

    p = {"length": rng.uniform(3.6, 5.2), "width": rng.uniform(0.36, 0.46), "height": rng.uniform(0.26, 0.42),
         "clearance": rng.uniform(0.025, 0.05), "nose_height": rng.uniform(0.3, 0.5), "hood": rng.uniform(0.15, 0.32),
         "hood_height": rng.uniform(0.5, 0.7), "windshield": rng.uniform(0.1, 0.2), "roof": rng.uniform(0.18, 0.42),
         "rear_window": rng.uniform(0.08, 0.3), "tail_height": rng.uniform(0.45, 0.85),
         "plan_bluntness": rng.uniform(3.0, 8.0), "side_bluntness": rng.uniform(4.0, 10.0),
         "section_power": rng.uniform(2.5, 5.0), "tumblehome": rng.uniform(0.1, 0.3),
         "beltline": rng.uniform(0.5, 0.65)}
    length = p["length"]
    height, half_width, clear = p["height"] * length, p["width"] * length / 2, p["clearance"] * length
    marks = np.cumsum([0.0, p["hood"], p["windshield"], p["roof"], p["rear_window"]])
    if marks[-1] > 0.97:  # keep a short tail behind the rear window
        marks = marks * 0.97 / marks[-1]
    top_s = np.append(marks, 1.0)
    top_z = np.array([p["nose_height"], p["hood_height"], 1.0, 1.0, p["tail_height"], p["tail_height"] * 0.95])
    top = PchipInterpolator(top_s, clear + (height - clear) * top_z)
    s = 0.5 * (1 - np.cos(np.linspace(0.0, np.pi, 56)))[1:-1]
    e = np.abs(2 * s - 1)
    plan = (1 - e ** p["plan_bluntness"]) ** (1 / p["plan_bluntness"])
    side = (1 - e ** p["side_bluntness"]) ** (1 / p["side_bluntness"])
    zt, zb = top(s), np.full_like(s, clear)
    zc, b = (zt + zb) / 2, (zt - zb) / 2 * side
    a = half_width * plan
    th = _angles()
    power = p["section_power"]
    cy, sz = np.cos(th), np.sin(th)
    y = a[:, None] * np.sign(cy) * np.abs(cy) ** (2 / power)
    z = zc[:, None] + b[:, None] * np.sign(sz) * np.abs(sz) ** (2 / power)
    belt = clear + p["beltline"] * (height - clear)
    lift = np.clip((z - belt) / (height - belt), 0.0, 1.0)
    y = y * (1 - p["tumblehome"] * lift ** 2)
    rings = np.stack([np.broadcast_to(s[:, None] * length, y.shape), y, z], axis=-1)
    verts, faces = ring_loft(rings, np.array([0.0, 0.0, zc[0]]), np.array([length, 0.0, zc[-1]]))
    return verts, faces, {k: float(v) for k, v in p.items()}


@lru_cache(maxsize=1)
def _thick_sections() -> np.ndarray:
    """Fitted UIUC sections ``[m, 18]`` that are clean and 14-24 % thick (the wing family's airfoils)."""
    from . import airfoil_data, sections

    db = airfoil_data.load_database()
    t, _ = sections.thickness(db.vectors)
    keep = db.clean() & (t >= 0.14) & (t <= 0.24)
    return db.vectors[keep]


def wing(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """A wing of Part 2 (:mod:`.loft`), low aspect ratio and thick: (vertices ``[V, 3]`` m, faces, parameters)."""
    from .loft import WingShape, loft

    pool = _thick_sections()
    root_i, tip_i = rng.integers(len(pool), size=2)
    span, ar, taper = rng.uniform(4.0, 16.0), rng.uniform(1.5, 3.5), rng.uniform(0.4, 1.0)
    root_chord = 2 * span / (ar * (1 + taper))
    p = {"span": span, "aspect_ratio": ar, "taper": taper, "root_chord": root_chord, "tip_chord": taper * root_chord,
         "sweep": rng.uniform(0.0, 45.0), "twist": rng.uniform(-5.0, 0.0), "dihedral": rng.uniform(0.0, 8.0),
         "root_section": int(root_i), "tip_section": int(tip_i)}
    shape = WingShape.make(span, root_chord, taper * root_chord, p["sweep"], p["twist"], p["dihedral"],
                           pool[root_i], pool[tip_i])
    lofted = loft(shape, n_span=8, n_points=25)
    return lofted.vertices[0], lofted.faces.astype(np.int64), {k: float(v) for k, v in p.items()}


GENERATORS: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray, dict]]] = {
    "wing": wing, "fuselage": fuselage, "car": car}


# ---------------------------------------------------------------------------------------------------------------
# one shape, the whole corpus

def make_shape(family: str, index: int, seed: int = 0, resolution: int = voxels.RESOLUTION
               ) -> tuple[np.ndarray, dict[str, Any], Any]:
    """Shape ``index`` of ``family``: (occupancy ``[D, D, D]`` bool, metadata, its ``trimesh.Trimesh`` in metres).

    Draws until the grid is one watertight piece (at most ``MAX_ATTEMPTS``); ``attempts`` in the metadata."""
    from .loft import check_mesh

    if family not in GENERATORS:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    trimesh = voxels.require_trimesh()
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, FAMILIES.index(family), index, attempt])
        verts, faces, params = GENERATORS[family](rng)
        mesh = check_mesh(trimesh.Trimesh(verts, faces, process=False), name=f"{family} {index}")
        unit, frame = voxels.normalize(verts, resolution)
        grid = voxels.voxelize(unit, faces, resolution)
        if not grid.any():
            continue
        sv, sf = voxels.surface(grid)
        if voxels.edge_defects(sf) == (0, 0) and voxels.components(sf, len(sv)) == 1:
            meta = {"family": family, "index": index, "attempts": attempt + 1, "scale": frame["scale"],
                    "mesh_volume": float(mesh.volume), "mesh_area": float(mesh.area),
                    "voxels": int(grid.sum()), "params": json.dumps(params, sort_keys=True)}
            return grid, meta, mesh
    raise RuntimeError(f"{family} {index}: no draw in {MAX_ATTEMPTS} gave one watertight piece at {resolution}^3")


def build(per_family: int, seed: int = 0, resolution: int = voxels.RESOLUTION, log: Any = print
          ) -> tuple[np.ndarray, pd.DataFrame]:
    """``per_family`` shapes of each family: (grids ``[n, D, D, D]`` bool, metadata with a ``split`` column)."""
    grids, rows = [], []
    started = time.perf_counter()
    for family in FAMILIES:
        for i in range(per_family):
            grid, meta, _ = make_shape(family, i, seed, resolution)
            grids.append(grid)
            rows.append(meta)
        if log:
            log(f"{family}: {per_family} shapes ({time.perf_counter() - started:.0f} s)")
    meta = pd.DataFrame(rows)
    split = np.empty(len(meta), dtype=object)
    rng = np.random.default_rng([seed, 99])
    for family in FAMILIES:
        idx = np.flatnonzero(meta.family.to_numpy() == family)
        order = rng.permutation(idx)
        cuts = np.round(np.cumsum(SPLIT_SHARES)[:-1] * len(order)).astype(int)
        for name, part in zip(SPLITS, np.split(order, cuts)):
            split[part] = name
    meta.insert(1, "split", split)
    return np.stack(grids), meta


def save(grids: np.ndarray, meta: pd.DataFrame, resolution: int = voxels.RESOLUTION, seed: int = 0) -> None:
    grid_path, meta_path = corpus_paths(resolution)
    grid_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(grid_path, bits=voxels.pack(grids), resolution=np.int64(resolution), seed=np.int64(seed))
    meta.to_csv(meta_path, index=False)


@dataclass
class Corpus:
    """Occupancy ``grids [n, D, D, D]`` (bool) and their ``meta`` (one row each: family, split, scale, ...)."""

    grids: np.ndarray
    meta: pd.DataFrame
    seed: int = 0

    @property
    def resolution(self) -> int:
        return int(self.grids.shape[-1])

    def select(self, split: str | None = None, family: str | None = None) -> np.ndarray:
        """Row indices of ``split`` (train / valid / test) and ``family`` (None: all)."""
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if family is not None and family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
        keep = np.ones(len(self.meta), bool)
        if split is not None:
            keep &= self.meta.split.to_numpy() == split
        if family is not None:
            keep &= self.meta.family.to_numpy() == family
        return np.flatnonzero(keep)

    def tensor(self, split: str | None = None, family: str | None = None) -> torch.Tensor:
        """Grids of ``split`` / ``family`` as designs ``[n, 1, D, D, D]`` float32 in {0, 1}."""
        idx = self.select(split, family)
        return torch.from_numpy(self.grids[idx]).float().unsqueeze(1)


@lru_cache(maxsize=2)
def load_corpus(resolution: int = voxels.RESOLUTION) -> Corpus:
    """The shipped corpus (cached per process; treat as read-only)."""
    grid_path, meta_path = corpus_paths(resolution)
    if not grid_path.exists() or not meta_path.exists():
        raise FileNotFoundError(f"the shape corpus {grid_path} is missing; build it with "
                                f"`python -m domains.shapes.corpus --resolution {resolution}`")
    with np.load(grid_path) as blob:
        grids = voxels.unpack(blob["bits"], int(blob["resolution"]))
        seed = int(blob["seed"])
    return Corpus(grids, pd.read_csv(meta_path), seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=voxels.RESOLUTION)
    args = parser.parse_args(argv)
    grids, meta = build(args.per_family, args.seed, args.resolution)
    save(grids, meta, args.resolution, args.seed)
    redraws = meta.groupby("family").attempts.apply(lambda a: int((a - 1).sum())).to_dict()
    print(json.dumps({"shapes": len(meta), "redraws": redraws, "splits": meta.split.value_counts().to_dict(),
                      "files": [str(p) for p in corpus_paths(args.resolution)]}))


if __name__ == "__main__":
    main()
