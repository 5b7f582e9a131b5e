"""Sparsifying counterfactuals: revert changed features to the query while every target stays met.

The evolutionary search leaves many features slightly moved: the moves that did not matter for
the targets were never selected against strongly enough. A greedy pass fixes that directly. Each
round evaluates, in one batch, every design with one of its changed features put back to the
query's value; each design takes the feasible revert that removes the most Gower distance. It
stops when no design can revert anything, so a design ends with no feature that could go back
alone. A leftover change smaller than ``tolerance`` of the feature's range that cannot go back
alone (the design sits just inside the target region) may still go back when the Gower distance
it removes is added to the design's other changed real features, each moved further from the
query in proportion to its change: the design then changes exactly one feature fewer at the same
Gower distance. Each round tries that move too; a plain revert wins where both keep the targets
met, as it removes distance. Cost: at most ``d`` rounds of at most ``2 x rows x changed features``
evaluations.

:func:`pull_towards_query` then shortens the changes that must stay: each round tries moving every
changed real feature 1/2, 1/4 or 1/8 of the way back to the query and keeps, per design, the
feasible move that removes the most Gower distance (the post-hoc step of DiCE, which binary-searches
each feature towards the query, done in batches). Designs end closer to the query, near the edge of
the target region.
"""

from __future__ import annotations

import torch

from ..domain import Evaluation
from ..evaluation import Evaluator
from ..objectives import violations
from .problem import CounterfactualDomain


def sparsify(cf: CounterfactualDomain, x: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, int]:
    """Designs ``x: [s, d]`` with as many features reverted to the query as the targets allow.

    Returns (the refined designs ``[s, d]``, evaluations spent).
    """
    x = x.detach().to("cpu", torch.float64).clone()
    q = cf.query.to("cpu", torch.float64)
    metric = cf.metric.to("cpu")
    evaluator = Evaluator(cf, device=device, cache_size=0)
    active = torch.ones(x.shape[0], dtype=torch.bool)
    spent = 0
    for _ in range(cf.space.dim):
        changed = (x != q) & active.unsqueeze(1)
        pairs = torch.nonzero(changed)  # [p, 2]: (row, feature)
        if pairs.shape[0] == 0:
            break
        rows, feats = pairs[:, 0], pairs[:, 1]
        candidates = x[rows].clone()
        candidates[torch.arange(len(rows)), feats] = q[feats]
        gain = (x[rows, feats] - q[feats]).abs() / metric.ranges[feats]
        gain = torch.where(metric.categorical[feats], torch.ones_like(gain), gain)
        shifted, shifted_rows, shifted_gain = _revert_and_shift(cf, x, q, metric, rows, feats, candidates, gain)
        candidates = torch.cat([candidates, shifted])
        rows, gain = torch.cat([rows, shifted_rows]), torch.cat([gain, shifted_gain])
        spent += len(rows)
        improved = _take_best_moves(cf, x, rows, candidates, gain, evaluator(candidates), min_gain=0.0)
        if not bool(improved.any()):
            break
        active &= improved
    return x, spent


def _revert_and_shift(cf: CounterfactualDomain, x: torch.Tensor, q: torch.Tensor, metric, rows: torch.Tensor,
                      feats: torch.Tensor, reverted: torch.Tensor, removed: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each revert ``(rows[i], feats[i])`` (the reverted designs ``reverted``, the Gower distance in
    range units each removes ``removed``) of a change within ``metric.tolerance``: the reverted design
    with that distance added back to the design's other changed real features, in proportion to their
    changes and within bounds. Returns (candidates ``[p', d]``, their rows ``[p']``, the distance each
    removes ``[p']``: 0 up to rounding, more where a bound clipped), only for reverts whose design has
    another changed real feature."""
    real = ~cf.space.discrete_mask.cpu()
    offset = reverted - q  # [p, d]
    others = (offset != 0) & real  # the changed real features left after the revert
    weight = (offset.abs() / metric.ranges) * others  # their changes, in range units
    total = weight.sum(dim=1)
    keep = (total > 0) & (removed <= metric.tolerance)
    factor = 1.0 + removed[keep] / total[keep]
    low, high = cf.space.bounds[0].to(x.dtype), cf.space.bounds[1].to(x.dtype)
    grown = (q + offset[keep] * factor.unsqueeze(1)).clamp(low, high)
    shifted = torch.where(others[keep], grown, reverted[keep])
    before = metric.to_query(x[rows[keep]], q)
    after = metric.to_query(shifted, q)
    return shifted, rows[keep], ((before - after) * cf.space.dim).clamp(min=0.0)  # >= 0 up to rounding


def pull_towards_query(cf: CounterfactualDomain, x: torch.Tensor, device: torch.device,
                       fractions: tuple[float, ...] = (0.5, 0.25, 0.125), rounds: int = 12,
                       min_gain: float = 1e-4) -> tuple[torch.Tensor, int]:
    """Designs ``x: [s, d]`` with their changed real features moved part of the way back to the query
    while every target stays met (integers, binaries and categoricals are left to :func:`sparsify`).

    Each round evaluates, in one batch, every (design, changed real feature, fraction) move; a design
    stops when its best feasible move removes less than ``min_gain`` Gower distance. Returns (the
    designs ``[s, d]``, evaluations spent).
    """
    x = x.detach().to("cpu", torch.float64).clone()
    q = cf.query.to("cpu", torch.float64)
    metric = cf.metric.to("cpu")
    real = ~cf.space.discrete_mask.cpu()
    steps = torch.tensor(fractions, dtype=torch.float64)
    evaluator = Evaluator(cf, device=device, cache_size=0)
    active = torch.ones(x.shape[0], dtype=torch.bool)
    spent = 0
    for _ in range(rounds):
        pairs = torch.nonzero((x != q) & real & active.unsqueeze(1))  # [p, 2]: (row, feature)
        if pairs.shape[0] == 0:
            break
        rows, feats = pairs[:, 0].repeat(len(fractions)), pairs[:, 1].repeat(len(fractions))
        step = steps.repeat_interleave(pairs.shape[0])
        candidates = x[rows].clone()
        moved = x[rows, feats] + step * (q[feats] - x[rows, feats])
        candidates[torch.arange(len(rows)), feats] = moved
        spent += len(rows)
        gain = (x[rows, feats] - moved).abs() / metric.ranges[feats]
        improved = _take_best_moves(cf, x, rows, candidates, gain, evaluator(candidates), min_gain)
        if not bool(improved.any()):
            break
        active &= improved
    return x, spent


def _take_best_moves(cf: CounterfactualDomain, x: torch.Tensor, rows: torch.Tensor, candidates: torch.Tensor,
                     gain: torch.Tensor, evaluation: Evaluation, min_gain: float) -> torch.Tensor:
    """Replace each design ``x[r]`` by its candidate of largest ``gain`` among those that keep every target
    met, where that gain is at least ``min_gain`` (ties: the first). ``rows [p]`` names each candidate's
    design. Returns which designs ``[s]`` moved."""
    met = evaluation.ok & (violations(cf.constraints, evaluation.constraints) <= 0).all(dim=1)
    score = torch.where(met, gain, torch.full_like(gain, -1.0))
    best = torch.full((x.shape[0],), -1.0, dtype=torch.float64).scatter_reduce(0, rows, score, "amax")
    improved = best >= min_gain
    is_best = (score == best[rows]) & improved[rows]
    order = torch.nonzero(is_best).flatten()
    first = torch.full((x.shape[0],), -1, dtype=torch.long).scatter_reduce(0, rows[order], order, "amin",
                                                                           include_self=False)
    for r in torch.nonzero(improved).flatten().tolist():
        x[r] = candidates[int(first[r])]
    return improved
