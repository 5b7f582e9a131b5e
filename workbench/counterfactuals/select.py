"""Choosing a few diverse, high-quality counterfactuals from every feasible design a search found.

Greedy selection (maximal marginal relevance): each pick maximizes

    -cost + diversity * min(1, distance to the closest pick / scale)

where ``cost`` is the weighted mean of the min-max normalized quality criteria (lower is better;
the weights are ``api.QUALITY_WEIGHTS``, Gower distance at half the weight of sparsity) and the
distance is Gower's. ``scale`` is the median Gower distance of the pool to the query, so a
candidate as far from the picks as a typical counterfactual is from the query counts as fully
new. The first pick is the best by cost alone; designs closer than ``min_distance`` to a pick are
near-duplicates, taken only when nothing else is left. Memory is ``O(pool)`` per pick: only the
running distance to the closest pick is kept, never a pool x pool matrix.

(Restricting the candidates to the best Pareto fronts first was tried: on the MCD 2-D toy those
fronts are a few tight clusters, and the picks repeated one design.)
"""

from __future__ import annotations

import torch

from .distances import GowerMetric


def normalized_cost(criteria: torch.Tensor, reference: torch.Tensor | None = None,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """``[m]`` weighted mean over columns of ``criteria: [m, c]`` (all minimized), each scaled to [0, 1]
    over ``reference: [r, c]`` (default: ``criteria`` itself, the pool); ``weights: [c]`` default equal."""
    reference = criteria if reference is None else reference
    if criteria.shape[0] == 0 or reference.shape[0] == 0:
        return torch.zeros(criteria.shape[0], dtype=torch.float64, device=criteria.device)
    low, high = reference.min(dim=0).values, reference.max(dim=0).values
    span = torch.where(high > low, high - low, torch.ones_like(high))
    scaled = (criteria - low) / span
    if weights is None:
        return scaled.mean(dim=1)
    weights = weights.to(scaled.device, scaled.dtype)
    return (scaled * weights).sum(dim=1) / weights.sum()


def select_diverse(x: torch.Tensor, cost: torch.Tensor, n: int, metric: GowerMetric, scale: float,
                   diversity: float = 0.5, min_distance: float = 0.01) -> torch.Tensor:
    """Indices (in pick order) of up to ``n`` rows of the pool ``x: [m, d]`` with costs ``cost: [m]``.

    Rows closer than ``min_distance`` (Gower) to an earlier pick are taken only when nothing else is left.
    """
    m = x.shape[0]
    if m == 0 or n <= 0:
        return torch.zeros(0, dtype=torch.long, device=x.device)
    x = x.to(metric.device, torch.float64)
    cost = cost.to(metric.device, torch.float64)
    scale = float(scale) if scale > 0 else 1.0
    closest = torch.full((m,), float("inf"), dtype=torch.float64, device=metric.device)
    taken = torch.zeros(m, dtype=torch.bool, device=metric.device)
    picks: list[int] = []
    for _ in range(min(n, m)):
        novelty = torch.clamp(closest / scale, max=1.0)
        score = -cost + diversity * novelty
        score = torch.where(taken, torch.full_like(score, -float("inf")), score)
        fresh = ~taken & (closest > min_distance)
        if bool(fresh.any()):
            score = torch.where(fresh, score, torch.full_like(score, -float("inf")))
        i = int(torch.argmax(score))  # first maximum: deterministic
        picks.append(i)
        taken[i] = True
        closest = torch.minimum(closest, metric.to_query(x, x[i]))
    return torch.tensor(picks, dtype=torch.long, device=x.device)


def mean_pairwise(x: torch.Tensor, metric: GowerMetric) -> float:
    """Mean Gower distance over the pairs of rows of ``x: [s, d]`` (NaN for fewer than two rows)."""
    s = x.shape[0]
    if s < 2:
        return float("nan")
    dist = metric.pairwise(x.to(metric.device, torch.float64), x.to(metric.device, torch.float64))
    return float(dist.sum() / (s * (s - 1)))
