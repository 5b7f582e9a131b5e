"""Plots of stored studies (matplotlib): Pareto scatters, pairwise grids, parallel coordinates, hypervolume traces.

Every function takes an optional ``ax=`` (``fig=`` for grids) and returns the Axes (Figure for grids).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .grid import grid_size
from .parallel import plot_parallel
from .pareto import plot_pairwise, plot_pareto
from .traces import plot_hypervolume

__all__ = ["plot_pareto", "plot_pairwise", "plot_parallel", "plot_hypervolume", "save", "grid_size"]


def save(fig_or_ax: Any, path: str | os.PathLike) -> Path:
    """Save the figure of a Figure or Axes to ``path`` (parent folders created), dpi 150, tight bbox."""
    fig = getattr(fig_or_ax, "figure", None) if not hasattr(fig_or_ax, "savefig") else fig_or_ax
    if fig is None or not hasattr(fig, "savefig"):
        raise TypeError(f"expected a matplotlib Figure or Axes, got {type(fig_or_ax).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path
