"""Drawings of page layouts with matplotlib: one page, a grid of pages, and a comparison figure of several groups.

A layout is a pair ``classes [25]`` (int, 0..4 in ``CLASSES`` order, -1 where no element) and ``boxes [25, 4]``
(x, y, w, h of each element's top-left corner and size, as fractions of the page width and height). A page is
drawn portrait, 1 : 1.414 (A4), white with a thin grey frame, the y axis pointing down (y = 0 at the top), each
element a semi-transparent box outlined in its class's colour (the Okabe-Ito colour-blind-safe palette).

Artists carry gids so tests and callers can find them: the page is the patch with gid ``"page"``, each element
a patch with gid ``"element:<class>"`` (elements outside the page are still drawn, in a small margin).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.plotting import grid_size, save

from .data import CLASSES

#: page height / width (A4 portrait)
PAGE_ASPECT = 1.414
#: class name -> colour (Okabe-Ito, colour-blind safe)
CLASS_COLORS: dict[str, str] = {"text": "#0072B2", "title": "#D55E00", "list": "#009E73", "table": "#E69F00",
                                "figure": "#CC79A7"}
#: margin around the page, in page widths (room for elements that stick out of the page)
MARGIN = 0.03
PANEL_WIDTH = 1.35  # inches per page in grids
FILL_ALPHA = 0.3


def _numpy(a: Any, dtype: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=dtype)


def _one(classes: Any, boxes: Any) -> tuple[np.ndarray, np.ndarray]:
    c, b = _numpy(classes, np.int64), _numpy(boxes, np.float64)
    if c.ndim != 1 or b.shape != (len(c), 4):
        raise ValueError(f"expected classes [m] and boxes [m, 4] of one layout, got shapes {list(c.shape)} and "
                         f"{list(b.shape)}")
    return c, b


def _batch(classes: Any, boxes: Any) -> tuple[np.ndarray, np.ndarray]:
    c, b = _numpy(classes, np.int64), _numpy(boxes, np.float64)
    if c.ndim == 1:
        c, b = c[None], b[None]
    if c.ndim != 2 or b.shape != (*c.shape, 4):
        raise ValueError(f"expected classes [n, m] and boxes [n, m, 4], got shapes {list(c.shape)} and "
                         f"{list(b.shape)}")
    return c, b


def class_color(index: int) -> str:
    """The colour of class ``index`` (``CLASSES`` order)."""
    return CLASS_COLORS[CLASSES[index]]


def legend_handles() -> list[Any]:
    """One legend patch per class, in ``CLASSES`` order."""
    from matplotlib.patches import Patch

    return [Patch(facecolor=CLASS_COLORS[name], edgecolor=CLASS_COLORS[name], alpha=0.7, label=name)
            for name in CLASSES]


def draw_layout(classes: Any, boxes: Any, ax: Any, title: str | None = None) -> Any:
    """Draw one layout (``classes [m]``, ``boxes [m, 4]``, tensors or arrays) on ``ax`` as a page; returns ``ax``.

    Elements with class -1 (or another value outside ``CLASSES``) or non-finite boxes are skipped; larger
    elements are drawn first so small ones stay visible on top.
    """
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Rectangle

    c, b = _one(classes, boxes)
    a = PAGE_ASPECT
    ax.add_patch(Rectangle((0.0, 0.0), 1.0, a, facecolor="white", edgecolor="0.45", linewidth=0.6, zorder=0,
                           gid="page"))
    keep = (c >= 0) & (c < len(CLASSES)) & np.isfinite(b).all(axis=1)
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-(b[idx, 2] * b[idx, 3]), kind="stable")]
    for z, i in enumerate(idx):
        x, y, w, h = b[i]
        color = class_color(int(c[i]))
        ax.add_patch(Rectangle((x, y * a), w, h * a, facecolor=(*to_rgb(color), FILL_ALPHA), edgecolor=color,
                               linewidth=0.8, zorder=1 + z * 1e-3, gid=f"element:{CLASSES[int(c[i])]}"))
    ax.set_xlim(-MARGIN, 1.0 + MARGIN)
    ax.set_ylim(a + MARGIN, -MARGIN)  # y down: the top of the page (y = 0) at the top
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_facecolor("none")
    if title is not None:
        ax.set_title(title, fontsize="small")
    return ax


def _grid_axes(fig: Any, rows: int, cols: int) -> np.ndarray:
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={"wspace": 0.08, "hspace": 0.12})
    return axes


def draw_grid(classes: Any, boxes: Any, fig: Any = None, per_row: int = 6,
              titles: Sequence[str] | None = None) -> Any:
    """Draw layouts ``classes [n, m]``, ``boxes [n, m, 4]`` as a grid of pages, ``per_row`` a row, on ``fig`` (a
    new Figure when None; it must be empty); ``titles``: one per layout (default none). Returns the Figure, one
    Axes per layout (cells past the last layout are removed)."""
    import matplotlib.pyplot as plt

    c, b = _batch(classes, boxes)
    n = len(c)
    if n == 0:
        raise ValueError("nothing to draw: no layouts")
    cols, rows = grid_size(n, max(1, min(per_row, n)), titles, "layouts")
    if fig is None:
        extra = 0.25 if titles is not None else 0.0
        fig = plt.figure(figsize=(PANEL_WIDTH * cols, (PANEL_WIDTH * PAGE_ASPECT + extra) * rows))
    elif fig.axes:
        raise ValueError("draw_grid needs an empty figure")
    axes = _grid_axes(fig, rows, cols)
    for k, ax in enumerate(axes.flat):
        if k < n:
            draw_layout(c[k], b[k], ax, title=None if titles is None else titles[k])
        else:
            ax.remove()
    return fig


def draw_comparison(groups: Mapping[str, tuple[Any, Any]], path: str | os.PathLike, per_group: int = 6,
                    legend: bool = True) -> Path:
    """One row of ``per_group`` pages per group (``{"real test pages": (classes, boxes), "SVDD": ...}``; the
    first ``per_group`` layouts of each, fewer leave blank cells), the group's name on the left, a class legend
    at the top; saved as a PNG at ``path`` with ``workbench.plotting.save``. Returns the path."""
    import matplotlib.pyplot as plt

    if not groups:
        raise ValueError("nothing to draw: no groups")
    if per_group < 1:
        raise ValueError(f"per_group must be at least 1, got {per_group}")
    data = {name: _batch(*pair) for name, pair in groups.items()}
    rows = len(data)
    fig = plt.figure(figsize=(PANEL_WIDTH * per_group + 0.4, PANEL_WIDTH * PAGE_ASPECT * rows + 0.45))
    axes = _grid_axes(fig, rows, per_group)
    try:
        for r, (name, (c, b)) in enumerate(data.items()):
            for k in range(per_group):
                ax = axes[r, k]
                if k < len(c):
                    draw_layout(c[k], b[k], ax)
                else:
                    ax.set_axis_off()
            axes[r, 0].set_axis_on()
            axes[r, 0].set_ylabel(name, fontsize="medium", labelpad=6)
            if len(c) == 0:
                axes[r, 0].set_xticks([])
                axes[r, 0].set_yticks([])
                for side in ("left", "right", "top", "bottom"):
                    axes[r, 0].spines[side].set_visible(False)
        if legend:
            # in the 0.45 inch band above the pages, whatever the figure's height
            fig.legend(handles=legend_handles(), loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=len(CLASSES),
                       frameon=False, fontsize="medium", handlelength=1.2, columnspacing=1.4)
        fig.subplots_adjust(top=1 - 0.45 / fig.get_figheight())
        return save(fig, path)
    finally:
        plt.close(fig)
