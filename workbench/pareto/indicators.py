"""Quality indicators: hypervolume (moocore), IGD and IGD+ against a known front."""

from __future__ import annotations

import numpy as np
import torch


def _np(f: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(f, torch.Tensor):
        f = f.detach().cpu().numpy()
    return np.asarray(f, dtype=np.float64)


def hypervolume(f: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray | list[float]) -> float:
    """Hypervolume dominated by the rows of ``f: [n, k]`` (minimization) up to ``ref: [k]``.

    Points that do not strictly dominate the reference point add nothing.
    """
    import moocore

    arr, r = _np(f), _np(ref).reshape(-1)
    if arr.ndim != 2:
        raise ValueError(f"expected points of shape [n, k], got {list(arr.shape)}")
    if r.shape[0] != arr.shape[1]:
        raise ValueError(f"reference point has {r.shape[0]} values but the points have {arr.shape[1]} objectives")
    if not np.isfinite(r).all():
        raise ValueError(f"reference point must be finite, got {r.tolist()}")
    arr = arr[np.isfinite(arr).all(axis=1)]
    arr = arr[(arr < r).all(axis=1)]
    if len(arr) == 0:
        return 0.0
    return float(moocore.hypervolume(arr, ref=r))


def igd(f: torch.Tensor | np.ndarray, front: torch.Tensor | np.ndarray) -> float:
    """Inverted generational distance: mean distance from each true-front point to its nearest row of ``f``."""
    a, ref = _np(f), _np(front)
    if len(a) == 0:
        return float("inf")
    d = torch.cdist(torch.from_numpy(ref), torch.from_numpy(a))
    return float(d.min(dim=1).values.mean())


def igd_plus(f: torch.Tensor | np.ndarray, front: torch.Tensor | np.ndarray) -> float:
    """IGD+ (Ishibuchi et al.): like IGD but counts only the dominated part of each distance."""
    a, ref = torch.from_numpy(_np(f)), torch.from_numpy(_np(front))
    if len(a) == 0:
        return float("inf")
    diff = torch.clamp(a.unsqueeze(0) - ref.unsqueeze(1), min=0)  # [m, n, k]
    return float(diff.norm(dim=2).min(dim=1).values.mean())
