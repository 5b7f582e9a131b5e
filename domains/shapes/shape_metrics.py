"""Generation quality of 3-D shapes against held-out shapes: 1-NNA, COV and MMD under the Chamfer distance.

Every shape, generated or held out, goes through the same path: its occupancy grid's marching-cubes surface
(:func:`.voxels.surface`) is sampled at ``points`` uniform surface points in unit-box coordinates, so the metrics
compare shapes at the resolution the prior works at. The Chamfer distance of two clouds ``P``, ``Q`` is
``mean_p min_q |p - q|^2 + mean_q min_p |p - q|^2`` (squared, as in PointFlow and LION); all pairs are computed by
batched ``torch.cdist`` in chunks (on any device).

With ``S`` the generated set and ``R`` the reference set (Yang et al. 2019, "PointFlow"; Achlioptas et al. 2018):

- **MMD** (lower is better): the mean over references of the distance to the closest generated shape (fidelity);
- **COV** (higher is better, at most 1): the share of references that are the nearest reference of at least one
  generated shape (diversity; mode collapse lowers it);
- **1-NNA** (0.5 is best): the leave-one-out accuracy of the 1-nearest-neighbour classifier that tells S from R
  in ``S + R``. Two sets drawn from one distribution give about 0.5; sets that differ give up to 1; a set that
  copies the references gives 0 (every shape's nearest neighbour is its twin in the other set), so memorization
  shows up below 0.5. Use sets of equal size, where 0.5 is the ideal.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from . import voxels


def point_clouds(x: Any, points: int = 512, seed: int = 0) -> torch.Tensor:
    """Surface point clouds ``[n, points, 3]`` (float32, unit box) of grids ``x [n, 1, D, D, D]``; shape ``i``
    uses ``numpy.random.default_rng([seed, i])``. A grid with no solid voxel is a ValueError naming it."""
    g = torch.as_tensor(x).detach().cpu()
    if g.dim() == 5 and g.shape[1] == 1:
        g = g[:, 0]
    if g.dim() != 4:
        raise ValueError(f"expected grids [n, 1, D, D, D], got shape {list(torch.as_tensor(x).shape)}")
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    out = np.empty((len(g), points, 3), dtype=np.float32)
    for i in range(len(g)):
        try:
            verts, faces = voxels.surface(g[i].numpy())
        except ValueError as err:
            raise ValueError(f"shape {i}: {err}") from err
        out[i] = voxels.sample_surface(verts, faces, points, np.random.default_rng([seed, i]))
    return torch.from_numpy(out)


def chamfer_matrix(a: torch.Tensor, b: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Chamfer distances ``[n, m]`` between every cloud of ``a [n, N, 3]`` and of ``b [m, M, 3]`` (float32 on
    their device), ``chunk`` pairs per ``torch.cdist`` call."""
    if a.dim() != 3 or b.dim() != 3 or a.shape[-1] != 3 or b.shape[-1] != 3:
        raise ValueError(f"expected point clouds [n, N, 3] and [m, M, 3], got {list(a.shape)} and {list(b.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError("point clouds hold NaN or infinite coordinates")
    n, m = a.shape[0], b.shape[0]
    ia, ib = torch.meshgrid(torch.arange(n, device=a.device), torch.arange(m, device=a.device), indexing="ij")
    ia, ib = ia.reshape(-1), ib.reshape(-1)
    out = torch.empty(n * m, device=a.device, dtype=torch.float32)
    for start in range(0, n * m, chunk):
        sl = slice(start, start + chunk)
        d = torch.cdist(a[ia[sl]].float(), b[ib[sl]].float()).pow(2)  # [P, N, M]
        out[sl] = d.amin(dim=2).mean(dim=1) + d.amin(dim=1).mean(dim=1)
    return out.reshape(n, m)


def one_nna(ss: torch.Tensor, rr: torch.Tensor, sr: torch.Tensor) -> float:
    """1-NN two-sample accuracy from the distance matrices sample-sample ``[n, n]``, reference-reference ``[m, m]``
    and sample-reference ``[n, m]`` (leave-one-out: a shape is not its own neighbour)."""
    n, m = sr.shape
    full = torch.cat([torch.cat([ss, sr], dim=1), torch.cat([sr.T, rr], dim=1)], dim=0).clone()
    full.fill_diagonal_(float("inf"))
    label = torch.cat([torch.zeros(n, dtype=torch.bool), torch.ones(m, dtype=torch.bool)]).to(full.device)
    nearest = full.argmin(dim=1)
    return float((label[nearest] == label).float().mean())


def coverage(sr: torch.Tensor) -> float:
    """Share of references ``[n, m]`` (columns) that are the nearest reference of some generated shape."""
    return float(torch.unique(sr.argmin(dim=1)).numel() / sr.shape[1])


def mmd(sr: torch.Tensor) -> float:
    """Mean over references of the Chamfer distance to the closest generated shape."""
    return float(sr.amin(dim=0).mean())


def shape_metrics(samples: Any, references: Any, points: int = 512, seed: int = 0, device: str = "cpu",
                  reference_clouds: torch.Tensor | None = None) -> dict[str, float]:
    """1-NNA, COV and MMD (Chamfer) of generated grids ``samples [n, 1, D, D, D]`` against ``references`` (grids
    ``[m, 1, D, D, D]``, or ``reference_clouds [m, points, 3]`` given instead to reuse them), plus the work done:
    ``points_per_second`` (surface points sampled from the generated grids, marching cubes included) and
    ``pairs_per_second`` (Chamfer distances)."""
    started = time.perf_counter()
    s = point_clouds(samples, points, seed)
    sampled = time.perf_counter() - started
    r = reference_clouds if reference_clouds is not None else point_clouds(references, points, seed + 1)
    s, r = s.to(device), r.to(device)
    started = time.perf_counter()
    ss, rr, sr = chamfer_matrix(s, s), chamfer_matrix(r, r), chamfer_matrix(s, r)
    if s.device.type == "cuda":
        torch.cuda.synchronize()
    pairs = time.perf_counter() - started
    n, m = len(s), len(r)
    return {"nna": one_nna(ss, rr, sr), "cov": coverage(sr), "mmd": mmd(sr), "samples": n, "references": m,
            "points_per_second": n * points / max(sampled, 1e-9),
            "pairs_per_second": (n * n + m * m + n * m) / max(pairs, 1e-9)}
