"""3-D views of triangle meshes to PNG with matplotlib (headless; no OpenGL needed).

Faces are drawn as a ``Poly3DCollection`` shaded by the angle between their normal and a light direction, on
axes with equal scale in x, y and z (a wing 11 m wide and 1.5 m deep looks like one). Works for any mesh given
as a ``trimesh.Trimesh`` or as ``(vertices [V, 3], faces [F, 3])``; shared by the wings and the 3-D shape prior.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _arrays(mesh: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(mesh, tuple) and len(mesh) == 2:
        vertices, faces = mesh
    else:
        vertices, faces = getattr(mesh, "vertices", None), getattr(mesh, "faces", None)
        if vertices is None or faces is None:
            raise TypeError(f"expected a trimesh.Trimesh or (vertices, faces), got {type(mesh).__name__}")
    vertices, faces = np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"vertices must be [V, 3] and faces [F, 3]; got {vertices.shape} and {faces.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError("cannot draw a mesh with NaN or inf vertices")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces index vertices 0..{len(vertices) - 1}; found {faces.min()}..{faces.max()}")
    return vertices, faces


def draw_mesh(mesh: Any, ax: Any = None, color: str | tuple = "#4a7fb5", elev: float = 30.0, azim: float = 200.0,
              light: tuple[float, float, float] = (-0.4, -0.5, 1.0), edges: bool = False, title: str | None = None,
              axes: bool = True, zoom: float = 1.0) -> Any:
    """Draw ``mesh`` on a 3-D matplotlib Axes (a new figure when ``ax`` is None) and return the Axes.

    ``elev`` / ``azim``: the viewing angles in degrees (the default looks from ahead, left and above for a body
    whose x axis points aft, as aircraft geometry does); ``light``: the direction the light comes from; ``edges``
    draws the triangle edges thinly; ``axes=False`` hides the frame and ticks; ``zoom`` scales the box.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    vertices, faces = _arrays(mesh)
    if ax is None:
        fig = plt.figure(figsize=(7, 5))
        ax = fig.add_subplot(projection="3d")
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    direction = np.asarray(light, dtype=np.float64)
    direction /= np.linalg.norm(direction)
    shade = 0.35 + 0.65 * np.clip(normal @ direction, 0.0, 1.0)
    rgb = np.clip(np.asarray(to_rgb(color))[None, :] * shade[:, None], 0.0, 1.0)
    coll = Poly3DCollection(tri, facecolors=rgb, edgecolors=(0, 0, 0, 0.15) if edges else rgb,
                            linewidths=0.1 if edges else 0.05)
    ax.add_collection3d(coll)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    mid = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, 0.04 * (hi - lo).max()) * 1.02  # equal scale; a flat mesh keeps some depth
    ax.set_xlim(mid[0] - half[0], mid[0] + half[0])
    ax.set_ylim(mid[1] - half[1], mid[1] + half[1])
    ax.set_zlim(mid[2] - half[2], mid[2] + half[2])
    ax.set_box_aspect(tuple(half / half.max()), zoom=zoom)
    ax.view_init(elev=elev, azim=azim)
    ax.set_proj_type("ortho")  # parallel projection: perspective makes the two halves of a wing look unlike
    if axes:
        from matplotlib.ticker import MaxNLocator
        for axis, size in zip((ax.xaxis, ax.yaxis, ax.zaxis), half):
            axis.set_major_locator(MaxNLocator(nbins=max(2, int(6 * size / half.max())), min_n_ticks=2))
        ax.set_xlabel("x (m)", fontsize=7, labelpad=-8)
        ax.set_ylabel("y (m)", fontsize=7, labelpad=-8)
        ax.set_zlabel("z (m)", fontsize=7, labelpad=-8)
        ax.tick_params(labelsize=6, pad=-3)
    else:
        ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def save_render(mesh: Any, path: str | Path, title: str | None = None, dpi: int = 130, **kwargs: Any) -> Path:
    """Draw ``mesh`` (see :func:`draw_mesh`) and write it to a PNG at ``path``; returns the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ax = draw_mesh(mesh, title=title, **kwargs)
    ax.figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(ax.figure)
    return path
