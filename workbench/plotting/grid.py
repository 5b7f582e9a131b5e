"""The cell arrangement shared by the domains' picture grids (images, shapes, layouts)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def grid_size(n: int, ncols: int | None, titles: Sequence[str] | None, what: str) -> tuple[int, int]:
    """(columns, rows) of a grid of ``n`` pictures: ``ncols`` columns (default about sqrt(n)), and a clear error
    when ``titles`` are not one per picture (``what`` names the pictures in it) or ``ncols`` is below 1."""
    if titles is not None and len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} {what}")
    ncols = int(ncols) if ncols else math.ceil(math.sqrt(n))
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    return ncols, math.ceil(n / ncols)
