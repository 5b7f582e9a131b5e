"""Pareto plots: 2D/3D objective scatters and a pairwise grid for many objectives.

Colour rule shared by every plot here: feasible non-dominated designs are coloured,
dominated feasible designs are grey and smaller, designs that were evaluated but
violate a constraint are light grey crosses, and failed designs (NaN) are left out.
Values are shown in the user's directions (the columns of ``StudyResults.frame()``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..pareto import is_nondominated
from ..results import StudyResults

PARETO_COLOR = "C0"
DOMINATED_COLOR = "0.55"
INFEASIBLE_COLOR = "0.78"
FRONT_COLOR = "black"


# --------------------------------------------------------------------------- helpers
def as_results(obj: Any) -> StudyResults:
    """A StudyResults from a StudyResults or anything with a ``_results()`` method (a Study)."""
    if isinstance(obj, StudyResults):
        return obj
    getter = getattr(obj, "_results", None)
    if callable(getter):
        res = getter()
        if isinstance(res, StudyResults):
            return res
    raise TypeError(f"expected a StudyResults or a Study, got {type(obj).__name__}")


def as_results_list(results: Any, labels: Sequence[str] | None = None) -> tuple[list[StudyResults], list[str], bool]:
    """(results, labels, several?) from one study, a list/tuple of them, or a ``{label: study}`` mapping."""
    if isinstance(results, Mapping):
        items = [as_results(r) for r in results.values()]
        names = [str(k) for k in results.keys()]
        multi = True
    elif isinstance(results, (list, tuple)):
        if not results:
            raise ValueError("no studies to plot: the list is empty")
        items = [as_results(r) for r in results]
        names = _default_labels(items)
        multi = True
    else:
        items = [as_results(results)]
        names = [items[0].name]
        multi = False
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(labels) != len(items):
            raise ValueError(f"got {len(labels)} labels for {len(items)} studies")
        names = labels
    return items, names, multi


def _default_labels(items: list[StudyResults]) -> list[str]:
    """Optimizer names where they tell the studies apart, else study names."""
    opt = [str((r.record.spec.get("optimizer") or {}).get("name") or r.name) for r in items]
    if len(set(opt)) == len(opt):
        return opt
    return [r.name for r in items]


def axis_label(objective: Any) -> str:
    """``name (min)`` / ``name (max)``."""
    return f"{objective.name} ({'max' if objective.sign < 0 else 'min'})"


def pick_objectives(res: StudyResults, objectives: Sequence[Any] | str | None, *, max_k: int | None = None,
                    where: str = "plot_pareto") -> list[int]:
    """Indices of the chosen objectives (names or Objective objects); all of them when None."""
    names = [o.name for o in res.objectives]
    if objectives is None:
        if max_k is not None and len(names) > max_k:
            raise ValueError(f"study {res.name!r} has {len(names)} objectives ({', '.join(names)}); {where} draws "
                             f"2 or {max_k} at a time: pass objectives=[...] to choose {max_k} of them, "
                             f"or use plot_pairwise to see all of them")
        chosen = list(range(len(names)))
    else:
        if isinstance(objectives, str):
            objectives = [objectives]
        chosen = []
        for item in objectives:
            name = getattr(item, "name", item)
            if name not in names:
                raise ValueError(f"study {res.name!r} has no objective {name!r}; its objectives are {names}")
            chosen.append(names.index(name))
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"objectives listed twice: {[names[i] for i in chosen]}")
    if len(chosen) < 2:
        raise ValueError(f"{where} needs at least 2 objectives; study {res.name!r} has "
                         f"{len(names)} ({', '.join(names)}) and {len(chosen)} were chosen")
    if max_k is not None and len(chosen) > max_k:
        raise ValueError(f"{where} draws 2 or {max_k} objectives, got {len(chosen)}; use plot_pairwise for more")
    return chosen


@dataclass
class Groups:
    """Per-row values of the chosen objectives (user's directions) and the colour groups."""

    values: np.ndarray  # [n, k]
    pareto: np.ndarray  # [n] bool: feasible and non-dominated in the chosen objectives
    dominated: np.ndarray  # [n] bool: feasible, dominated
    infeasible: np.ndarray  # [n] bool: evaluated, violates a constraint
    signs: np.ndarray  # [k]


def groups(res: StudyResults, chosen: Sequence[int]) -> Groups:
    """Split the rows into Pareto / dominated / infeasible for the chosen objectives; failed rows in none."""
    chosen = list(chosen)
    values = np.asarray(res.raw["f"], dtype=np.float64)[:, chosen]
    signs = np.array([res.objectives[i].sign for i in chosen], dtype=np.float64)
    finite = np.isfinite(values).all(axis=1) & res.raw["ok"]
    feasible = res.feasible_mask() & finite
    if chosen == list(range(len(res.objectives))):
        pareto = res.pareto_mask() & finite
    else:  # non-dominated in the objectives shown
        pareto = np.zeros(len(values), dtype=bool)
        idx = np.flatnonzero(feasible)
        if len(idx):
            pareto[idx] = is_nondominated(torch.from_numpy(values[idx] * signs)).numpy()
    return Groups(values=values, pareto=pareto, dominated=feasible & ~pareto, infeasible=finite & ~feasible,
                  signs=signs)


def staircase(points: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """The 2D attainment staircase through non-dominated ``points`` (user's directions) ``[m, 2]``."""
    p = points * signs
    p = p[np.lexsort((p[:, 1], p[:, 0]))]
    if len(p) < 2:
        return p * signs
    corners = np.column_stack([p[1:, 0], p[:-1, 1]])
    path = np.empty((2 * len(p) - 1, 2))
    path[0::2] = p
    path[1::2] = corners
    return path * signs


def front_array(front: Any, res: StudyResults, chosen: Sequence[int]) -> np.ndarray:
    """A known front ``[m, k]`` (array/tensor, user's directions) restricted to the chosen objectives."""
    if isinstance(front, torch.Tensor):
        front = front.detach().cpu().numpy()
    arr = np.asarray(front, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"front must be a 2D array [m, k], got shape {list(arr.shape)}")
    if arr.shape[1] == len(res.objectives):
        return arr[:, list(chosen)]
    if arr.shape[1] == len(chosen):
        return arr
    raise ValueError(f"front has {arr.shape[1]} columns; expected {len(chosen)} (objectives shown) or "
                     f"{len(res.objectives)} (all objectives of the study)")


def _check_same_objectives(items: list[StudyResults], chosen_names: list[str], labels: list[str]) -> None:
    for res, label in zip(items[1:], labels[1:]):
        names = {o.name: o.direction for o in res.objectives}
        ref = {o.name: o.direction for o in items[0].objectives}
        for name in chosen_names:
            if name not in names:
                raise ValueError(f"study {label!r} has no objective {name!r}; its objectives are {list(names)}")
            if names[name] != ref[name]:
                raise ValueError(f"objective {name!r} is to {ref[name]} in {labels[0]!r} but to {names[name]} in "
                                 f"{label!r}; studies drawn together must agree")


def _is_3d(ax: Any) -> bool:
    return getattr(ax, "name", "") == "3d"


# --------------------------------------------------------------------------- plot_pareto
def plot_pareto(results: Any, objectives: Sequence[Any] | None = None, ax: Any = None, show_dominated: bool = True,
                front: Any = None, title: str | None = None, *, labels: Sequence[str] | None = None,
                zoom: str = "feasible") -> Any:
    """Scatter of the evaluated designs in 2 or 3 objectives, with the feasible non-dominated ones highlighted.

    ``results``: a StudyResults, a Study, or a list (or ``{label: study}`` dict) of them to compare, e.g.
    optimizers; each then gets its own colour and legend entry (``labels`` overrides the names).
    ``objectives``: names of the 2 or 3 objectives to draw (default all, when there are 2 or 3); the
    highlighted points are those non-dominated in the objectives drawn. ``front``: a known true front
    ``[m, k]`` in the user's directions, drawn as a thin black line (2D) or small black points (3D).
    ``show_dominated=False`` leaves out dominated and infeasible designs. ``zoom="feasible"`` (2D) scales the
    axes to the feasible designs, so that far infeasible ones (drawn faintly) do not squash the front;
    ``"all"`` shows every design. Returns the Axes (3D for 3 objectives).
    """
    if zoom not in ("feasible", "all"):
        raise ValueError(f"zoom must be 'feasible' or 'all', got {zoom!r}")
    items, names, multi = as_results_list(results, labels)
    first = items[0]
    chosen = pick_objectives(first, objectives, max_k=3)
    chosen_names = [first.objectives[i].name for i in chosen]
    _check_same_objectives(items, chosen_names, names)
    objs = [first.objectives[i] for i in chosen]
    three = len(chosen) == 3

    if ax is None:
        fig = plt.figure(figsize=(6.4, 5.2) if three else (6.0, 4.6))
        ax = fig.add_subplot(projection="3d" if three else None)
    elif three and not _is_3d(ax):
        raise ValueError("3 objectives need a 3D axes: pass ax=fig.add_subplot(projection='3d'), or choose 2 objectives")
    elif not three and _is_3d(ax):
        raise ValueError("2 objectives need a 2D axes, got a 3D one")

    feasible_points = []
    for s, (res, label) in enumerate(zip(items, names)):
        idx = [[o.name for o in res.objectives].index(n) for n in chosen_names]
        grp = groups(res, idx)
        feasible_points.append(grp.values[grp.pareto | grp.dominated])
        color = f"C{s}" if multi else PARETO_COLOR
        if show_dominated:
            dom_color = color if multi else DOMINATED_COLOR
            dom_alpha = 0.25 if multi else 0.6
            _scatter(ax, grp.values[grp.infeasible], gid="infeasible", s=14, marker="x", color=INFEASIBLE_COLOR,
                     linewidths=0.9, alpha=0.35, label=None if multi and s else "infeasible", zorder=1)
            _scatter(ax, grp.values[grp.dominated], gid="dominated", s=10, color=dom_color, alpha=dom_alpha,
                     linewidths=0, label=f"{label} dominated" if multi else "dominated", zorder=2)
        pts = grp.values[grp.pareto]
        n_front = len(pts)
        _scatter(ax, pts, gid="pareto", s=30, color=color, edgecolors="white", linewidths=0.5, zorder=4,
                 label=f"{label} (Pareto, {n_front})" if multi else f"Pareto front ({n_front})")
        if not three and n_front:
            path = staircase(pts, grp.signs)
            (line,) = ax.plot(path[:, 0], path[:, 1], color=color, linewidth=1.2, alpha=0.85, zorder=3)
            line.set_gid("pareto-line")

    if front is not None:
        arr = front_array(front, first, chosen)
        if three:
            _scatter(ax, arr, gid="front", s=2, color=FRONT_COLOR, alpha=0.5, linewidths=0, label="true front",
                     zorder=0)
        else:
            arr = arr[np.argsort(arr[:, 0], kind="stable")]
            feasible_points.append(arr)  # the zoom keeps the true front in view
            (line,) = ax.plot(arr[:, 0], arr[:, 1], color=FRONT_COLOR, linewidth=0.9, label="true front", zorder=5)
            line.set_gid("front")

    feasible = np.concatenate(feasible_points) if feasible_points else np.empty((0, len(chosen)))
    if zoom == "feasible" and not three and len(feasible) >= 2:
        lo, hi = feasible.min(axis=0), feasible.max(axis=0)
        pad = np.where(hi > lo, 0.06 * (hi - lo), np.maximum(np.abs(hi) * 0.05, 1e-9))
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_xlabel(axis_label(objs[0]))
    ax.set_ylabel(axis_label(objs[1]))
    if three:
        ax.set_zlabel(axis_label(objs[2]))
    else:
        ax.grid(True, color="0.92", linewidth=0.6, zorder=0)
        ax.set_axisbelow(True)
    if title is None and not multi:
        title = first.name
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="best", framealpha=0.85)
    return ax


def _scatter(ax: Any, pts: np.ndarray, gid: str, label: str | None = None, **kw: Any) -> Any:
    if len(pts) == 0:
        return None
    if label is None:
        label = "_nolegend_"
    if pts.shape[1] == 3:
        coll = ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], label=label, depthshade=False, **kw)
    else:
        coll = ax.scatter(pts[:, 0], pts[:, 1], label=label, **kw)
    coll.set_gid(gid)
    return coll


# --------------------------------------------------------------------------- plot_pairwise
def plot_pairwise(results: Any, objectives: Sequence[Any] | None = None, fig: Any = None, *,
                  labels: Sequence[str] | None = None) -> Any:
    """A k x k grid: pairwise scatters of the objectives (same colour rule as plot_pareto), histograms on the diagonal.

    Meant for 4+ objectives, works for 2+. The highlighted designs are those non-dominated in all the
    objectives drawn. ``results`` may be one study or several (list or ``{label: study}``). Returns the Figure.
    """
    items, names, multi = as_results_list(results, labels)
    first = items[0]
    chosen = pick_objectives(first, objectives, where="plot_pairwise")
    chosen_names = [first.objectives[i].name for i in chosen]
    _check_same_objectives(items, chosen_names, names)
    objs = [first.objectives[i] for i in chosen]
    k = len(chosen)
    size = max(1.9, min(2.8, 11.0 / k))
    if fig is None:
        fig = plt.figure(figsize=(size * k + 0.6, size * k + 0.4))
    axes = np.asarray(fig.subplots(k, k, squeeze=False))

    per_study = []
    for res in items:
        idx = [[o.name for o in res.objectives].index(n) for n in chosen_names]
        per_study.append(groups(res, idx))

    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if i == j:
                hax = ax.twinx()  # counts on a hidden twin: the panel's own y axis stays the row's objective
                hax.set_gid("histogram")
                hax.set_yticks([])
                for s, (grp, label) in enumerate(zip(per_study, names)):
                    color = f"C{s}" if multi else PARETO_COLOR
                    ok = grp.pareto | grp.dominated | grp.infeasible
                    vals = grp.values[ok, i]
                    if not len(vals):
                        continue
                    bins = np.histogram_bin_edges(vals, bins=min(30, max(5, int(np.sqrt(len(vals))))))
                    if multi:
                        hax.hist(vals, bins=bins, histtype="step", color=color, linewidth=1.1)
                    else:
                        hax.hist(vals, bins=bins, color=DOMINATED_COLOR, alpha=0.45)
                        hax.hist(grp.values[grp.pareto, i], bins=bins, color=color, alpha=0.9)
            else:
                for s, (grp, label) in enumerate(zip(per_study, names)):
                    color = f"C{s}" if multi else PARETO_COLOR
                    v = grp.values[:, [j, i]]
                    _scatter(ax, v[grp.infeasible], gid="infeasible", s=8, marker="x", color=INFEASIBLE_COLOR,
                             linewidths=0.7, zorder=1, label="infeasible" if s == 0 else None)
                    _scatter(ax, v[grp.dominated], gid="dominated", s=5, linewidths=0, zorder=2,
                             color=color if multi else DOMINATED_COLOR, alpha=0.25 if multi else 0.6,
                             label=None if multi else "dominated")
                    _scatter(ax, v[grp.pareto], gid="pareto", s=14, color=color, linewidths=0.3,
                             edgecolors="white", zorder=3, label=label if multi else "Pareto front")
            if i == k - 1:
                ax.set_xlabel(axis_label(objs[j]))
            else:
                ax.tick_params(labelbottom=False)
            if j == 0:
                ax.set_ylabel(axis_label(objs[i]))
            else:
                ax.tick_params(labelleft=False)
            ax.tick_params(labelsize="small")
    # share x along columns and y along rows (the diagonal's own y axis follows its row)
    for j in range(k):
        col = [axes[i, j] for i in range(k) if i != j]
        lo, hi = min(a.get_xlim()[0] for a in col), max(a.get_xlim()[1] for a in col)
        for i in range(k):
            axes[i, j].set_xlim(lo, hi)
    for i in range(k):
        row = [axes[i, j] for j in range(k) if j != i]
        lo, hi = min(a.get_ylim()[0] for a in row), max(a.get_ylim()[1] for a in row)
        for j in range(k):
            axes[i, j].set_ylim(lo, hi)
    handles, leg_labels = axes[k - 1, 0].get_legend_handles_labels()
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    if handles:
        fig.legend(handles, leg_labels, loc="upper right", ncol=len(handles), fontsize="small", frameon=False)
    fig.suptitle(first.name if not multi else "pairwise objectives", x=0.02, y=0.99, ha="left", va="top")
    return fig
