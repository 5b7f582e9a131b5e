"""Which stored points a report plots: every non-dominated point, and a thinned sample of the rest.

A study of 100,000 designs would make a page of tens of megabytes that no browser draws smoothly, yet the front
is what a reader looks at. So the front is never thinned; the dominated and the infeasible points are, by a
grid over their (normalized) coordinates that keeps one point per occupied cell, drawn at random (a seeded
generator: the same page every time), and then more at random up to the cap. That keeps the outline of the
cloud and its sparse outliers, where a plain random sample would keep only the dense regions; a random pick
inside each cell, rather than a fixed corner, leaves no grid pattern on the picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _cells(unit: np.ndarray, bins: int) -> np.ndarray:
    """Cell id ``[n]`` of points ``unit: [n, d]`` in [0, 1] on a grid of ``bins`` per axis."""
    idx = np.minimum((unit * bins).astype(np.int64), bins - 1)
    return np.ravel_multi_index(idx.T, (bins,) * unit.shape[1], mode="clip") if bins ** unit.shape[1] < 2 ** 62 \
        else np.unique(idx, axis=0, return_inverse=True)[1].reshape(-1)


def thin(points: np.ndarray, cap: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``cap`` rows of ``points: [n, d]`` (finite) that cover the region the points
    fill: one per cell of the finest grid with at most ``cap`` occupied cells, picked at random (``seed``),
    then as many more at random as fit in ``cap`` (so dense regions still look dense)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    if cap <= 0 or n == 0:
        return np.empty(0, dtype=np.int64)
    if n <= cap:
        return np.arange(n)
    low, high = points.min(axis=0), points.max(axis=0)
    unit = (points - low) / np.where(high > low, high - low, 1.0)
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    lo, hi = 1, max(2, int(np.ceil(cap ** (1.0 / points.shape[1]))) * 4)
    best = None
    while lo <= hi:  # the finest grid whose occupied cells fit in cap (the count grows with the bins)
        mid = (lo + hi) // 2
        cells = _cells(unit, mid)
        occupied = len(np.unique(cells))
        if occupied <= cap:
            best, lo = cells, mid + 1
        else:
            hi = mid - 1
    if best is None:  # even one cell per axis is too many: cannot happen for cap >= 1, kept for safety
        best = np.zeros(n, dtype=np.int64)
    order = np.lexsort((score, best))  # by cell, then at random
    first = np.ones(n, dtype=bool)
    first[1:] = best[order[1:]] != best[order[:-1]]
    kept = order[first]
    rest = order[~first]
    extra = rng.choice(rest, size=min(cap - len(kept), len(rest)), replace=False) if cap > len(kept) else rest[:0]
    return np.sort(np.concatenate([kept, extra]))


@dataclass
class PlotRows:
    """Row indices of one study to plot: ``front`` (all feasible non-dominated rows), ``dominated`` and
    ``infeasible`` (thinned), with the totals they were drawn from; ``failed`` rows have no values to plot."""

    front: np.ndarray
    dominated: np.ndarray
    infeasible: np.ndarray
    n_dominated: int
    n_infeasible: int
    n_failed: int


def plot_rows(minimized: np.ndarray, feasible: np.ndarray, front: np.ndarray, cap: int,
              coordinates: np.ndarray | None = None) -> PlotRows:
    """Split a study's rows (``minimized: [n, k]`` objectives, ``feasible`` and ``front`` masks ``[n]``) into what
    a plot shows: every front row, and at most ``cap`` dominated plus ``cap // 4`` infeasible rows, thinned on
    ``coordinates: [n, d]`` (default: the minimized objectives)."""
    coords = minimized if coordinates is None else coordinates
    finite = np.isfinite(coords).all(axis=1)
    dominated = np.flatnonzero(feasible & ~front & finite)
    infeasible = np.flatnonzero(~feasible & finite)
    return PlotRows(front=np.flatnonzero(front), dominated=dominated[thin(coords[dominated], cap)],
                    infeasible=infeasible[thin(coords[infeasible], max(1, cap // 4))],
                    n_dominated=len(dominated), n_infeasible=len(infeasible), n_failed=int((~finite).sum()))
