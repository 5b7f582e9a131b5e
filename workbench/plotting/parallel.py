"""Parallel-coordinates plot of objectives and/or parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from .pareto import DOMINATED_COLOR, as_results, axis_label


def _encode(series: pd.Series, choices: Sequence[Any] | None = None) -> tuple[np.ndarray, list[str] | None]:
    """Numeric values of a column (NaN where missing) and, for bool/categorical columns, the code labels."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(float).to_numpy(), ["False", "True"]
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan), None
    values = series.astype(object)
    present = [v for v in pd.unique(values) if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if all(isinstance(v, (bool, np.bool_)) for v in present) and present:
        order: list[Any] = [False, True]
    elif choices is not None:
        order = list(choices)
    else:
        order = sorted(present, key=str)
    code = {v: i for i, v in enumerate(order)}
    out = np.array([code.get(v, np.nan) if v is not None else np.nan for v in values], dtype=np.float64)
    return out, [str(v) for v in order]


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def plot_parallel(results: Any, columns: Sequence[str] | None = None, ax: Any = None,
                  highlight: Any = "pareto") -> Any:
    """Parallel coordinates, one vertical axis per column, each normalized to [0, 1] with its min/max labelled.

    ``columns``: columns of ``results.frame()`` (objectives by default; parameters and constraints allowed;
    categorical and bool columns are drawn as codes with their labels). ``highlight``: "pareto" (feasible
    non-dominated rows, coloured), "feasible", None, or a boolean mask over the rows; other rows are faint
    grey. Rows missing a value in any column (failed evaluations) are left out. Returns the Axes.
    """
    res = as_results(results)
    frame = res.frame()
    obj = {o.name: o for o in res.objectives}
    if columns is None:
        columns = list(obj)
    elif isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns:
        raise ValueError("no columns to plot")
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise ValueError(f"no columns {unknown} in the results of {res.name!r}; available: {list(frame.columns)}")

    n = len(frame)
    if isinstance(highlight, str):
        if highlight == "pareto":
            mask = res.pareto_mask()
        elif highlight == "feasible":
            mask = res.feasible_mask()
        elif highlight == "none":
            mask = np.zeros(n, dtype=bool)
        else:
            raise ValueError(f"highlight must be 'pareto', 'feasible', None or a boolean mask, got {highlight!r}")
        hl_name = highlight
    elif highlight is None:
        mask, hl_name = np.zeros(n, dtype=bool), "none"
    else:
        mask = np.asarray(highlight, dtype=bool).reshape(-1)
        if len(mask) != n:
            raise ValueError(f"highlight mask has {len(mask)} entries; the study has {n} rows")
        hl_name = "highlighted"

    variables = {v.name: v for v in getattr(res.space, "variables", [])}
    data = np.empty((n, len(columns)))
    code_labels: list[list[str] | None] = []
    for j, col in enumerate(columns):
        choices = getattr(variables.get(col), "choices", None)
        data[:, j], labels = _encode(frame[col], choices)
        code_labels.append(labels)
    keep = np.isfinite(data).all(axis=1)
    lo = np.array([np.nanmin(data[keep, j]) if keep.any() else 0.0 for j in range(len(columns))])
    hi = np.array([np.nanmax(data[keep, j]) if keep.any() else 1.0 for j in range(len(columns))])
    for j, labels in enumerate(code_labels):
        if labels is not None:  # codes: span every label, not only those present
            lo[j], hi[j] = 0.0, max(len(labels) - 1, 1)
    span = np.where(hi > lo, hi - lo, 1.0)
    norm = np.where(hi > lo, (data - lo) / span, 0.5)

    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.5, 1.5 * len(columns) + 1.5), 4.4))
    xs = np.arange(len(columns), dtype=float)
    other = keep & ~mask
    chosen = keep & mask
    if other.any():
        segs = [np.column_stack([xs, row]) for row in norm[other]]
        lc = LineCollection(segs, colors=DOMINATED_COLOR, alpha=0.3 if chosen.any() else 0.5, linewidths=0.7,
                            zorder=1)
        lc.set_gid("other")
        ax.add_collection(lc)
    if chosen.any():
        rows = norm[chosen]
        order = np.argsort(rows[:, 0])
        segs = [np.column_stack([xs, row]) for row in rows[order]]
        colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(segs)))
        lc = LineCollection(segs, colors=colors, alpha=0.9, linewidths=1.3, zorder=3)
        lc.set_gid("highlight")
        ax.add_collection(lc)

    for j, x in enumerate(xs):
        ax.axvline(x, color="0.2", linewidth=0.8, zorder=2)
        labels = code_labels[j]
        if labels is not None and len(labels) <= 12:
            steps = np.linspace(0, 1, len(labels)) if len(labels) > 1 else [0.5]
            for y, text in zip(steps, labels):
                ax.text(x + 0.03, y, text, fontsize="x-small", ha="left", va="center", zorder=4,
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
        else:
            bottom = labels[0] if labels is not None else _fmt(lo[j])
            top = labels[-1] if labels is not None else _fmt(hi[j])
            ax.text(x, -0.03, bottom, fontsize="x-small", ha="center", va="top")
            ax.text(x, 1.03, top, fontsize="x-small", ha="center", va="bottom")

    ax.set_xticks(xs)
    ax.set_xticklabels([axis_label(obj[c]) if c in obj else c for c in columns], fontsize="small")
    ax.tick_params(axis="x", length=0, pad=14)
    ax.set_yticks([])
    ax.set_xlim(-0.3, len(columns) - 0.7 + (0.3 if code_labels[-1] is not None else 0.0))
    ax.set_ylim(-0.12, 1.12)
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(False)
    handles = []
    if chosen.any():
        name = {"pareto": "Pareto front", "feasible": "feasible"}.get(hl_name, "highlighted")
        handles.append(Line2D([], [], color=plt.get_cmap("viridis")(0.45), linewidth=1.5,
                              label=f"{name} ({int(chosen.sum())})"))
    if other.any():
        handles.append(Line2D([], [], color=DOMINATED_COLOR, linewidth=1.0, label=f"other ({int(other.sum())})"))
    if handles:
        ax.legend(handles=handles, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2,
                  frameon=False)
    ax.set_title(res.name)
    return ax
