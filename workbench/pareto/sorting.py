"""Non-dominated sorting, crowding distance and feasibility-first ranking (minimization).

The torch path runs on any device with memory O(chunk x n): it never builds the
n x n domination matrix. On the CPU, sorting of large sets is delegated to moocore's
C implementation, which is much faster there; both give identical ranks.
"""

from __future__ import annotations

import numpy as np
import torch

_CHUNK_ELEMENTS = {"cpu": 2 ** 24, "cuda": 2 ** 29}  # elements per chunk of the domination test


def _dominators_of(f_rows: torch.Tensor, f_all: torch.Tensor) -> torch.Tensor:
    """``[r, n]`` bool: row i dominates point j (<= in all objectives, < in one)."""
    le = (f_rows.unsqueeze(1) <= f_all.unsqueeze(0)).all(dim=2)
    lt = (f_rows.unsqueeze(1) < f_all.unsqueeze(0)).any(dim=2)
    return le & lt


def _chunk_rows(n: int, k: int, device: torch.device) -> int:
    return max(1, _CHUNK_ELEMENTS.get(device.type, 2 ** 24) // max(1, n * k))


def nondominated_rank_torch(f: torch.Tensor, max_rank_fill: int | None = None) -> torch.Tensor:
    """Pareto rank (0 = non-dominated) of each row of ``f: [n, k]``, on ``f``'s device.

    With ``max_rank_fill`` the peeling stops once that many points have a rank; the
    remaining points get rank ``n`` (NSGA-II needs only the first fronts).
    """
    n, k = f.shape
    rank = torch.full((n,), n, dtype=torch.long, device=f.device)
    if n == 0:
        return rank
    step = _chunk_rows(n, k, f.device)
    dominated_count = torch.zeros(n, dtype=torch.long, device=f.device)
    for s in range(0, n, step):
        dominated_count += _dominators_of(f[s:s + step], f).sum(dim=0)
    remaining = torch.ones(n, dtype=torch.bool, device=f.device)
    current = 0
    assigned = 0
    limit = n if max_rank_fill is None else min(n, max_rank_fill)
    while assigned < limit:
        front = torch.nonzero(remaining & (dominated_count == 0)).flatten()
        if front.numel() == 0:  # only possible with NaN rows: rank them last
            break
        rank[front] = current
        remaining[front] = False
        assigned += front.numel()
        current += 1
        if assigned >= limit:
            break
        for s in range(0, front.numel(), step):
            dominated_count -= _dominators_of(f[front[s:s + step]], f).sum(dim=0)
    return rank


def nondominated_rank(f: torch.Tensor, max_rank_fill: int | None = None) -> torch.Tensor:
    """Pareto rank of each row of ``f: [n, k]`` (minimization).

    CPU: moocore's C sort. CUDA: a fused Triton kernel where Triton is installed, else
    the chunked torch path. All three give identical ranks.
    """
    if f.device.type == "cpu" and f.shape[0] > 0 and bool(torch.isfinite(f).all()):
        import moocore

        ranks = moocore.pareto_rank(f.detach().numpy().astype(np.float64, copy=False))
        return torch.from_numpy(np.asarray(ranks, dtype=np.int64))
    if f.device.type == "cuda":
        from . import triton_sort

        if triton_sort.AVAILABLE:
            return triton_sort.nondominated_rank_triton(f, max_rank_fill)
    return nondominated_rank_torch(f, max_rank_fill)


def is_nondominated(f: torch.Tensor) -> torch.Tensor:
    """``[n]`` bool mask of the non-dominated rows of ``f: [n, k]`` (equal rows do not dominate each other). On the
    CPU with finite values moocore's C routine (0.03 s at 100,000 rows; the chunked comparison below is O(n^2))."""
    if f.shape[0] == 0:
        return torch.zeros(0, dtype=torch.bool, device=f.device)
    if f.device.type == "cpu" and f.shape[0] > 64 and bool(torch.isfinite(f).all()):
        import moocore

        values = f.detach().numpy().astype(np.float64, copy=False)
        return torch.from_numpy(np.asarray(moocore.is_nondominated(values, keep_weakly=True), dtype=bool))
    n, k = f.shape
    step = _chunk_rows(n, k, f.device)
    dominated = torch.zeros(n, dtype=torch.bool, device=f.device)
    for s in range(0, n, step):
        dominated |= _dominators_of(f[s:s + step], f).any(dim=0)
    return ~dominated


def crowding_distance(f: torch.Tensor) -> torch.Tensor:
    """Crowding distance of each row of one front ``f: [n, k]`` (boundary points get inf)."""
    n, k = f.shape
    if n <= 2:
        return torch.full((n,), float("inf"), dtype=f.dtype, device=f.device)
    order = torch.argsort(f, dim=0)  # [n, k]
    sorted_f = torch.gather(f, 0, order)
    span = sorted_f[-1] - sorted_f[0]
    span = torch.where(span > 0, span, torch.ones_like(span))
    gaps = (sorted_f[2:] - sorted_f[:-2]) / span  # [n-2, k]
    contrib = torch.zeros_like(f)
    inf_row = torch.full((1, k), float("inf"), dtype=f.dtype, device=f.device)
    contrib.scatter_(0, order, torch.cat([inf_row, gaps, inf_row], dim=0))
    return contrib.sum(dim=1)


def crowding_by_front(f: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """Crowding distance of every row of ``f: [n, k]`` within its own front, with no loop over fronts.

    Rows are sorted by (rank, objective); a row's neighbours are its predecessor and
    successor in that order when they share its rank, else it is a boundary point (inf).
    """
    n, k = f.shape
    out = torch.zeros(n, dtype=f.dtype, device=f.device)
    if n == 0:
        return out
    n_ranks = int(rank.max()) + 1
    for j in range(k):
        by_value = torch.argsort(f[:, j], stable=True)
        order = by_value[torch.argsort(rank[by_value], stable=True)]  # [n], grouped by rank, sorted by f_j
        r, v = rank[order], f[order, j]
        low = torch.full((n_ranks,), float("inf"), dtype=f.dtype, device=f.device).scatter_reduce(0, r, v, "amin")
        high = torch.full((n_ranks,), -float("inf"), dtype=f.dtype, device=f.device).scatter_reduce(0, r, v, "amax")
        span = (high - low)[r]
        span = torch.where(span > 0, span, torch.ones_like(span))
        inner = torch.zeros(n, dtype=torch.bool, device=f.device)
        gap = torch.full((n,), float("inf"), dtype=f.dtype, device=f.device)
        if n > 2:
            inner[1:-1] = (r[:-2] == r[1:-1]) & (r[2:] == r[1:-1])
            gap[1:-1] = (v[2:] - v[:-2]) / span[1:-1]
        out[order] += torch.where(inner, gap, torch.full_like(gap, float("inf")))
    return out


def total_violation(g: torch.Tensor) -> torch.Tensor:
    """Sum of positive constraint violations ``[n]`` from ``g: [n, c]`` (0 = feasible)."""
    if g.shape[1] == 0:
        return torch.zeros(g.shape[0], dtype=g.dtype if g.dtype.is_floating_point else torch.float64, device=g.device)
    return torch.clamp(g, min=0).sum(dim=1)


def constrained_rank(f: torch.Tensor, g: torch.Tensor, max_rank_fill: int | None = None) -> torch.Tensor:
    """Feasibility-first rank: feasible rows by Pareto rank, then infeasible by violation.

    ``f: [n, k]`` minimized objectives, ``g: [n, c]`` violations (<= 0 feasible).
    Infeasible rows are ranked after every feasible front, in order of total violation
    (equal violations share a rank), as in Deb's constrained domination.
    """
    cv = total_violation(g)
    feasible = cv <= 0
    rank = torch.empty(f.shape[0], dtype=torch.long, device=f.device)
    feas_idx = torch.nonzero(feasible).flatten()
    n_fronts = 0
    if feas_idx.numel():
        r = nondominated_rank(f[feas_idx], max_rank_fill)
        rank[feas_idx] = r
        n_fronts = int(r.max()) + 1
    inf_idx = torch.nonzero(~feasible).flatten()
    if inf_idx.numel():
        _, inverse = torch.unique(cv[inf_idx], sorted=True, return_inverse=True)
        rank[inf_idx] = n_fronts + inverse
    return rank
