"""Hypervolume against evaluations, averaged over seeds."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

_COLUMNS = ("label", "seed", "evaluations", "hypervolume")
_BANDS = ("std", "minmax", None)


def seed_grid(traces: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Step-interpolate each seed's trace of one label onto a common grid of evaluation counts.

    Hypervolume is constant between checkpoints, so a seed's value at ``e`` is its value at its last
    checkpoint ``<= e``. The grid is every checkpoint of any seed inside the range all seeds cover
    (from the latest first checkpoint to the earliest last one). Returns (grid ``[g]``, values
    ``[seeds, g]``, seeds).
    """
    seeds, curves = [], []
    for seed, sub in traces.groupby("seed", sort=True):
        sub = sub.sort_values("evaluations", kind="stable").drop_duplicates("evaluations", keep="last")
        seeds.append(seed)
        curves.append((sub["evaluations"].to_numpy(dtype=np.float64), sub["hypervolume"].to_numpy(dtype=np.float64)))
    start = max(ev[0] for ev, _ in curves)
    stop = min(ev[-1] for ev, _ in curves)
    if start > stop:
        raise ValueError(f"the seeds' traces do not overlap: they cover evaluations "
                         f"{[(int(ev[0]), int(ev[-1])) for ev, _ in curves]} (seeds {seeds})")
    every = np.unique(np.concatenate([ev for ev, _ in curves]))
    grid = every[(every >= start) & (every <= stop)]
    values = np.stack([hv[np.searchsorted(ev, grid, side="right") - 1] for ev, hv in curves])
    return grid, values, seeds


def plot_hypervolume(traces: pd.DataFrame, ax: Any = None, band: str | None = "std") -> Any:
    """Mean hypervolume over seeds against evaluations, one line per label, with a shaded band.

    ``traces``: long DataFrame with columns ``label``, ``seed``, ``evaluations``, ``hypervolume`` (one row
    per label, seed and checkpoint, e.g. from ``StudyResults.hypervolume_trace()``). Seeds are put on a
    common grid first (see :func:`seed_grid`). ``band``: "std" (mean +- sample std over seeds),
    "minmax" (range over seeds) or None. Returns the Axes.
    """
    if not isinstance(traces, pd.DataFrame):
        raise TypeError(f"traces must be a pandas DataFrame with columns {list(_COLUMNS)}, got {type(traces).__name__}")
    missing = [c for c in _COLUMNS if c not in traces.columns]
    if missing:
        raise ValueError(f"traces lacks columns {missing}; it needs {list(_COLUMNS)} (long format: one row per "
                         f"label, seed and checkpoint), it has {list(traces.columns)}")
    if band not in _BANDS:
        raise ValueError(f"band must be 'std', 'minmax' or None, got {band!r}")
    data = traces.dropna(subset=["evaluations", "hypervolume"])
    if data.empty:
        raise ValueError("traces has no rows with both evaluations and hypervolume")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.2))
    for i, label in enumerate(pd.unique(data["label"])):
        grid, values, seeds = seed_grid(data[data["label"] == label])
        mean = values.mean(axis=0)
        color = f"C{i}"
        (line,) = ax.plot(grid, mean, color=color, drawstyle="steps-post", linewidth=1.6, marker="o",
                          markevery=[len(grid) - 1], markersize=4,
                          label=f"{label} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})")
        line.set_gid(f"mean:{label}")
        if band is not None and len(seeds) > 1:
            if band == "std":
                sd = values.std(axis=0, ddof=1)
                lo, hi = mean - sd, mean + sd
            else:
                lo, hi = values.min(axis=0), values.max(axis=0)
            poly = ax.fill_between(grid, lo, hi, step="post", color=color, alpha=0.2, linewidth=0)
            poly.set_gid(f"band:{label}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations")
    ax.set_ylabel("hypervolume")
    ax.grid(True, color="0.92", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.legend(fontsize="small", loc="lower right")
    return ax
