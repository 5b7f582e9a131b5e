"""``workbench.counterfactuals``: a few designs close to a query that reach given targets."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..device import resolve_device
from ..domain import Domain
from ..evaluation import Evaluator
from ..optimizer import Optimizer
from ..registry import optimizer_class
from ..results import StudyResults
from ..spaces import MixedSpace
from ..storage import SQLiteStorage
from ..study import Study
from .problem import QUALITY, CounterfactualDomain, target_column
from .refine import pull_towards_query, sparsify
from .select import mean_pairwise, normalized_cost, select_diverse
from .targets import Target, parse_targets

DEFAULT_OPTIMIZER = "mcd"
# weights of the quality criteria (gower, changed, manifold) in the selection cost (each min-max normalized over
# the pool); a target to minimize or maximize weighs 1. Gower distance weighs half: the picks are pulled towards
# the query afterwards anyway, and at full weight a two-feature design a little closer outranked one-feature
# designs too often (on the MCD 2-D toy, more two-feature designs than decode-mcd: benchmarks/mcd_vs_decode.py)
QUALITY_WEIGHTS = (0.5, 1.0, 1.0)


def counterfactuals(domain: Domain, query: pd.Series | pd.DataFrame | Mapping[str, Any], targets: Mapping[str, Any],
                    n: int = 10, freeze: Iterable[str] = (), pop_size: int = 100, generations: int = 100,
                    seed: int = 0, device: str | torch.device | None = "auto", dataset: pd.DataFrame | None = None,
                    k_neighbors: int = 3, tolerance: float = 0.01, optimizer: Optimizer | str | None = None,
                    diversity: float = 0.6, progress: bool = False) -> pd.DataFrame:
    """Up to ``n`` diverse designs close to ``query`` whose predicted properties reach ``targets``.

    query: one design (Series, dict or 1-row DataFrame) with the space's variable names; other
        columns are ignored.
    targets: property name (an objective or constraint of ``domain``) -> ``(lower, upper)`` with
        None for an open side, a set of allowed values (classes), or "minimize" / "maximize".
    freeze: variables that must keep the query's value.
    dataset: real designs (readable columns) for the manifold distance and the first population;
        defaults to ``domain.dataset()``.
    k_neighbors: neighbours of the manifold distance. tolerance: a numeric feature that moves by
        less than this fraction of its range does not count as changed.
    optimizer: an Optimizer, a registered name, or None for MCD; runs ``generations`` batches of
        ``pop_size`` designs (an Optimizer instance uses its own batch size).
    diversity: weight of diversity against quality when the ``n`` designs are picked (0: the best
        by quality alone; designs closer than ``tolerance`` in Gower distance count as duplicates).

    Returns a DataFrame, one row per counterfactual, sorted by changed features then Gower
    distance: the readable parameters, every property the domain predicts, ``gower`` (distance to
    the query), ``changed`` (number of changed features), ``changed_fraction``, ``manifold`` (mean
    Gower distance to the ``k_neighbors`` nearest real designs) and ``<target>_satisfied`` for each
    range or class target. ``attrs``: ``message``, ``diversity`` (mean pairwise Gower distance of
    the rows), ``evaluations``, ``feasible`` (distinct feasible designs found). When no design
    meets the targets, the frame is empty and ``message`` (also warned) names the targets never met.
    Deterministic for a given ``seed``.
    """
    if not isinstance(domain, Domain):
        raise TypeError(f"domain must be a workbench Domain, got {type(domain).__name__}")
    space = domain.space
    if not isinstance(space, MixedSpace):
        raise TypeError(f"counterfactuals need a MixedSpace domain, not {type(space).__name__}")
    for pname, value, low in (("n", n, 1), ("pop_size", pop_size, 2), ("generations", generations, 1),
                              ("k_neighbors", k_neighbors, 1), ("seed", seed, 0)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{pname} must be an integer >= {low}, got {value!r}")
    if not isinstance(diversity, (int, float)) or diversity < 0:
        raise ValueError(f"diversity must be a number >= 0, got {diversity!r}")
    dev = resolve_device(device)

    q = encode_query(space, query)
    frozen = frozen_mask(space, freeze)
    parsed = parse_targets(targets, [o.name for o in domain.objectives], [c.name for c in domain.constraints])
    frame, data = encode_dataset(space, dataset if dataset is not None else domain.dataset())
    cf = CounterfactualDomain(domain, q, parsed, data, frozen=frozen, k_neighbors=int(k_neighbors),
                              tolerance=tolerance, device=dev, seed=int(seed), dataset_frame=frame)
    del data
    opt = _optimizer(optimizer, int(pop_size))
    batch = int(pop_size) if optimizer is None or isinstance(optimizer, str) else opt.default_batch_size

    storage = SQLiteStorage("sqlite:///:memory:")
    try:
        study = Study(cf, opt, storage=storage, name="counterfactuals", seed=int(seed), device=dev)
        study.run(budget=batch * int(generations), batch_size=batch, progress=progress)
        results = StudyResults(storage, storage.get_study("counterfactuals"))
        return _report(cf, results, int(n), float(diversity), dev)
    finally:
        storage.close()


# --------------------------------------------------------------------- inputs
def encode_query(space: MixedSpace, query: Any) -> torch.Tensor:
    """One design ``[d]`` from a Series, dict or 1-row DataFrame, with clear errors."""
    if isinstance(query, pd.DataFrame):
        if len(query) != 1:
            raise ValueError(f"query must be one design; the DataFrame has {len(query)} rows")
    elif not isinstance(query, (pd.Series, Mapping)):
        raise TypeError(f"query must be a pandas Series, a dict or a 1-row DataFrame, got {type(query).__name__}")
    if isinstance(query, Mapping) and not isinstance(query, pd.Series):
        query = dict(query)
    try:
        q = space.from_frame(query)
    except ValueError as err:
        raise ValueError(f"query: {err}; the space's variables are {space.names}") from None
    try:
        space.validate(q)
    except ValueError as err:
        raise ValueError(f"query is not a valid design of the space: {str(err).replace('invalid design in row 0: ', '')}") from None
    return q[0]


def frozen_mask(space: MixedSpace, freeze: Iterable[str]) -> torch.Tensor:
    """``[d]`` bool mask of the variables named in ``freeze``."""
    if isinstance(freeze, str):
        freeze = [freeze]
    mask = torch.zeros(space.dim, dtype=torch.bool)
    for name in freeze:
        if name not in space.names:
            raise ValueError(f"cannot freeze {name!r}: no such variable; the space's variables are {space.names}")
        mask[space.names.index(name)] = True
    if bool(mask.all()):
        raise ValueError("every variable is frozen, so no counterfactual can differ from the query")
    return mask


def encode_dataset(space: MixedSpace, frame: Any) -> tuple[pd.DataFrame, torch.Tensor]:
    """(the frame, its encoded rows ``[m, d]`` without non-finite rows), with clear errors."""
    if frame is None:
        raise ValueError("counterfactuals need real designs for the manifold distance: the domain has no "
                         "dataset(); pass dataset=DataFrame with the space's variables as columns")
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"dataset must be a pandas DataFrame, got {type(frame).__name__}")
    try:
        data = space.from_frame(frame)
    except ValueError as err:
        raise ValueError(f"dataset: {err}") from None
    finite = torch.isfinite(data).all(dim=1)
    if not bool(finite.all()):
        data = data[finite]
    if data.shape[0] == 0:
        raise ValueError("dataset has no row with finite values for every variable")
    return frame, data


def _optimizer(optimizer: Optimizer | str | None, pop_size: int) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        return optimizer
    if optimizer is None or isinstance(optimizer, str):
        cls = optimizer_class(optimizer or DEFAULT_OPTIMIZER)
        import inspect

        accepts = inspect.signature(cls.__init__).parameters
        return cls(pop_size=pop_size) if "pop_size" in accepts else cls()
    raise TypeError(f"optimizer must be a workbench Optimizer, a registered name or None, got {type(optimizer).__name__}")


# -------------------------------------------------------------------- results
def _report(cf: CounterfactualDomain, results: StudyResults, n: int, diversity: float,
            device: torch.device) -> pd.DataFrame:
    raw = results.raw
    x_all = results.designs()
    ok = torch.from_numpy(raw["ok"].copy())
    g = torch.from_numpy(raw["g"].copy())  # [N, c] violations (<= 0 met), NaN where failed
    f = torch.from_numpy(raw["f"].copy())  # [N, k] user directions
    feasible = torch.from_numpy(results.feasible_mask().copy())
    evaluations = int(x_all.shape[0])

    pool = torch.nonzero(feasible).flatten()
    if pool.numel():  # distinct designs, in order of first evaluation
        _, first = np.unique(x_all[pool].numpy(), axis=0, return_index=True)
        pool = pool[torch.from_numpy(np.sort(first))]

    constraint_targets = [t for t in cf.targets if t.is_constraint]
    objective_targets = [t for t in cf.targets if not t.is_constraint]
    if pool.numel() == 0:
        message = _never_met(cf, constraint_targets, g, ok, evaluations)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        out = _frame(cf, torch.empty((0, cf.space.dim), dtype=torch.float64), device)
        out.attrs.update({"message": message, "diversity": float("nan"), "evaluations": evaluations, "feasible": 0})
        return out

    metric = cf.metric
    xp = x_all[pool].to(metric.device)
    criteria = _criteria(cf, f[pool], objective_targets).to(metric.device)
    weights = _weights(criteria.shape[1])
    cost = normalized_cost(criteria, weights=weights)
    scale = float(torch.median(criteria[:, 0]))
    # pick twice as many as asked, sparsify them and pull them towards the query, then pick the final n
    picks = select_diverse(xp, cost, 2 * n, metric, scale=scale, diversity=diversity, min_distance=metric.tolerance)
    refined, spent = sparsify(cf, xp[picks], device)
    refined, pulled = pull_towards_query(cf, refined, device)
    spent += pulled
    refined = torch.from_numpy(np.unique(refined.numpy(), axis=0))
    evaluations += spent
    refined_f = Evaluator(cf, device=device, cache_size=0)(refined).objectives
    refined_criteria = _criteria(cf, refined_f, objective_targets).to(metric.device)
    refined_cost = normalized_cost(refined_criteria, reference=criteria, weights=weights)  # scaled as the pool was
    final = select_diverse(refined.to(metric.device), refined_cost, n, metric, scale=scale, diversity=diversity,
                           min_distance=metric.tolerance)
    chosen = refined[final.cpu()]
    out = _frame(cf, chosen, device)
    out = out.sort_values(["changed", "gower"], kind="stable").reset_index(drop=True)

    found = int(pool.numel())
    message = f"{len(out)} counterfactuals chosen from {found} distinct feasible designs in {evaluations} evaluations"
    if found < n:
        message = (f"only {found} distinct feasible designs found in {evaluations} evaluations (asked for {n}); "
                   f"returning all of them")
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    out.attrs.update({"message": message, "diversity": mean_pairwise(chosen, metric), "evaluations": evaluations,
                      "feasible": found})
    return out


def _weights(columns: int) -> torch.Tensor:
    """``[columns]`` weights of the selection criteria of :func:`_criteria`."""
    return torch.tensor(QUALITY_WEIGHTS + (1.0,) * (columns - len(QUALITY_WEIGHTS)), dtype=torch.float64)


def _criteria(cf: CounterfactualDomain, f: torch.Tensor, objective_targets: list[Target]) -> torch.Tensor:
    """``[m, c]`` minimized selection criteria (quality scores, then min/max targets) from ``f: [m, k]``."""
    names = [o.name for o in cf.objectives]
    columns = [f[:, names.index(name)] for name in QUALITY]
    columns += [f[:, names.index(target_column(t))] * (1.0 if t.kind == "minimize" else -1.0)
                for t in objective_targets]
    return torch.stack(columns, dim=1)


def _frame(cf: CounterfactualDomain, x: torch.Tensor, device: torch.device) -> pd.DataFrame:
    """Parameters, re-evaluated properties, quality scores and target satisfaction of designs ``x: [s, d]``."""
    inner = cf.inner
    space = cf.space
    s = x.shape[0]
    prop_names = [o.name for o in inner.objectives] + [c.name for c in inner.constraints]
    params = space.to_frame(x)
    clash = set(params.columns) & set(prop_names + list(QUALITY) + ["changed_fraction"])
    if clash:
        params = params.rename(columns={c: f"param_{c}" for c in clash})
    if s:
        evaluation = Evaluator(inner, device=device, cache_size=0)(x)
        f_in, g_in = evaluation.objectives, evaluation.constraints
        quality = {k: v.cpu() for k, v in cf.quality(x.to(device)).items()}
    else:
        f_in = torch.empty((0, inner.n_obj), dtype=torch.float64)
        g_in = torch.empty((0, inner.n_con), dtype=torch.float64)
        quality = {k: torch.empty(0, dtype=torch.float64) for k in QUALITY}
    columns: dict[str, Any] = {}
    props = torch.cat([f_in, g_in], dim=1)
    for j, name in enumerate(prop_names):
        columns[name] = props[:, j].numpy()
    columns["gower"] = quality["gower"].numpy()
    columns["changed"] = quality["changed"].numpy().astype(np.int64)
    columns["changed_fraction"] = quality["changed"].numpy() / space.dim
    columns["manifold"] = quality["manifold"].numpy()
    values = cf.target_values(f_in, g_in)
    for t, v in zip(cf.targets, values):
        if t.is_constraint:
            columns[f"{t.name}_satisfied"] = (t.violation(v) <= 0).numpy()
    rest = pd.DataFrame(columns, index=params.index)
    return pd.concat([params, rest], axis=1)


def _never_met(cf: CounterfactualDomain, constraint_targets: list[Target], g: torch.Tensor, ok: torch.Tensor,
               evaluations: int) -> str:
    """Which targets no evaluated design met, and how close the best came."""
    names = [c.name for c in cf.constraints]
    okg = g[ok]
    never = []
    for t in constraint_targets:
        col = okg[:, names.index(target_column(t))] if okg.shape[0] else torch.empty(0, dtype=torch.float64)
        if not bool((col <= 0).any()):
            closest = float(col.min()) if col.numel() else math.nan
            never.append(f"{t.describe()} (closest: {closest:.4g} away)")
    head = f"no counterfactual found: no design met every target in {evaluations} evaluations"
    if int(ok.sum()) == 0:
        return f"{head}; every evaluation failed"
    if never:
        return f"{head}; never met: {'; '.join(never)}"
    return f"{head}; each target was met by some design, but never all together ({', '.join(t.describe() for t in constraint_targets)})"
