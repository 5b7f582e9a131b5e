"""Shared helpers for the benchmark domains: input checks, lattices and front sampling."""

from __future__ import annotations

import itertools
import math

import torch


def as_batch(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Check ``x: [n, dim]`` and return it as float64 on its own device (no copy if already float64)."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.dim() != 2 or x.shape[1] != dim:
        raise ValueError(f"expected designs of shape [n, {dim}], got {list(x.shape)}")
    return x.to(torch.float64)


def das_dennis(n_obj: int, n: int) -> torch.Tensor:
    """Das-Dennis simplex lattice ``[m, n_obj]`` (rows sum to 1), with the most points ``m <= n``.

    The number of divisions H is the largest with C(H + M - 1, M - 1) <= n (at least 1),
    so the lattice is deterministic and spreads evenly over the whole simplex.
    """
    if n_obj < 2:
        raise ValueError(f"n_obj must be >= 2, got {n_obj}")
    h = 1
    while math.comb(h + n_obj, n_obj - 1) <= n:
        h += 1
    # stars and bars: choosing M-1 bar positions among H+M-1 slots gives one composition of H
    bars = torch.tensor(list(itertools.combinations(range(h + n_obj - 1), n_obj - 1)), dtype=torch.float64)
    bars = bars.reshape(-1, n_obj - 1)
    edges = torch.cat([torch.full((bars.shape[0], 1), -1.0, dtype=torch.float64), bars,
                       torch.full((bars.shape[0], 1), float(h + n_obj - 1), dtype=torch.float64)], dim=1)
    counts = edges[:, 1:] - edges[:, :-1] - 1.0
    return counts / h


def nondominated_2d(f: torch.Tensor) -> torch.Tensor:
    """Indices of the non-dominated rows of a 2-objective set ``f: [N, 2]``, sorted by f1 (O(N log N))."""
    # sort by f1, ties by f2; a row survives when its f2 is strictly below every earlier row's f2
    order = torch.argsort(f[:, 1], stable=True)
    order = order[torch.argsort(f[order, 0], stable=True)]
    f2 = f[order, 1]
    best_before = torch.cummin(f2, dim=0).values
    best_before = torch.cat([f2.new_tensor([math.inf]), best_before[:-1]])
    return order[f2 < best_before]


def spread_by_length(f: torch.Tensor, n: int, gap: torch.Tensor | None = None) -> torch.Tensor:
    """Pick about ``n`` rows of a dense curve ``f: [N, 2]`` (ordered along it), evenly by arc length.

    Arc length is measured in objectives normalized to [0, 1]; segments flagged in
    ``gap: [N - 1]`` (jumps between disconnected pieces) count as zero length. Returns
    sorted, unique row indices, so the picked points are exactly points of ``f``.
    """
    if n < 2 or f.shape[0] <= n:
        return torch.arange(min(max(n, 1), f.shape[0]))
    span = f.max(dim=0).values - f.min(dim=0).values
    span = torch.where(span > 0, span, torch.ones_like(span))
    seg = ((f[1:] - f[:-1]) / span).norm(dim=1)
    if gap is not None:
        seg = torch.where(gap, torch.zeros_like(seg), seg)
    s = torch.cat([seg.new_zeros(1), torch.cumsum(seg, dim=0)])
    targets = torch.linspace(0.0, float(s[-1]), n, dtype=s.dtype)
    hi = torch.searchsorted(s, targets).clamp(1, f.shape[0] - 1)
    lo = hi - 1
    pick = torch.where((targets - s[lo]) <= (s[hi] - targets), lo, hi)
    return torch.unique(pick)
