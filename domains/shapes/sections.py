"""Airfoil sections as one float vector: aerosandbox's Kulfan (CST with leading-edge modification) parameters.

The vector has ``SECTION_SIZE = 18`` values in this order::

    upper_weights[8], lower_weights[8], leading_edge_weight, TE_thickness

with class-function exponents N1 = 0.5 and N2 = 1 (a round leading edge and a sharp trailing edge), exactly as
``aerosandbox.get_kulfan_coordinates`` and NeuralFoil use them, so a vector can go to NeuralFoil
(``to_kulfan_dict``), to an ``asb.KulfanAirfoil`` (``to_airfoil``) or to a loft (``coordinates``) unchanged.

Everything here is numpy and vectorized over any leading batch shape: ``v`` is ``[..., 18]``. Geometry is
linear in the parameters, so ``coordinates`` is one matrix product against a cached Bernstein basis, and the
area is exact (a Beta-function integral of the basis, no quadrature). Shared by the airfoil domain and the 3-D
wings; aerosandbox is only needed to fit or build ``asb.Airfoil`` objects (extra ``shapes``).
"""

from __future__ import annotations

from functools import lru_cache
from math import comb
from typing import Any

import numpy as np
from scipy.special import beta as beta_fn
from scipy.special import betainc

SECTION_SIZE = 18
N_WEIGHTS = 8  # per side
N1, N2 = 0.5, 1.0
UPPER = slice(0, N_WEIGHTS)
LOWER = slice(N_WEIGHTS, 2 * N_WEIGHTS)
LE_WEIGHT = 2 * N_WEIGHTS
TE_THICKNESS = 2 * N_WEIGHTS + 1
NAMES = ([f"upper_{i}" for i in range(N_WEIGHTS)] + [f"lower_{i}" for i in range(N_WEIGHTS)]
         + ["leading_edge_weight", "TE_thickness"])
MIN_FIT_POINTS = SECTION_SIZE + 2  # coordinates needed for an over-determined least-squares fit
MIN_POINTS_PER_SIDE = 5
DEFAULT_POINTS = 101  # cosine-spaced stations per surface
INSTALL_HINT = "pip install 'design-workbench[shapes]' (aerosandbox, neuralfoil, trimesh, scikit-image)"


def require_aerosandbox() -> Any:
    """Import aerosandbox or raise an ImportError naming the ``shapes`` extra."""
    try:
        import aerosandbox as asb
    except ImportError as err:
        raise ImportError(f"airfoil fitting and asb.Airfoil objects need aerosandbox: {INSTALL_HINT}") from err
    return asb


def check(v: Any, name: str = "section") -> np.ndarray:
    """``v`` as float64 ``[..., 18]``; a clear ValueError for a wrong last dimension or non-finite values."""
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != SECTION_SIZE:
        raise ValueError(f"{name} must have {SECTION_SIZE} Kulfan values in its last dimension "
                         f"(upper_weights[8], lower_weights[8], leading_edge_weight, TE_thickness); got shape "
                         f"{tuple(arr.shape)}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise ValueError(f"{name} has a non-finite value ({arr[tuple(idx)]}) at index {tuple(int(i) for i in idx)} "
                         f"({NAMES[idx[-1]]})")
    return arr


def pack(upper_weights: Any, lower_weights: Any, leading_edge_weight: Any = 0.0, TE_thickness: Any = 0.0
         ) -> np.ndarray:
    """Kulfan parts -> ``[..., 18]``. Weights ``[..., 8]``; the scalars broadcast over the batch."""
    up = np.asarray(upper_weights, dtype=np.float64)
    lo = np.asarray(lower_weights, dtype=np.float64)
    if up.shape[-1:] != (N_WEIGHTS,) or lo.shape[-1:] != (N_WEIGHTS,):
        raise ValueError(f"upper and lower weights need {N_WEIGHTS} values each in the last dimension; got "
                         f"{up.shape} and {lo.shape}")
    batch = np.broadcast_shapes(up.shape[:-1], lo.shape[:-1], np.shape(leading_edge_weight), np.shape(TE_thickness))
    out = np.empty(batch + (SECTION_SIZE,))
    out[..., UPPER] = up
    out[..., LOWER] = lo
    out[..., LE_WEIGHT] = leading_edge_weight
    out[..., TE_THICKNESS] = TE_thickness
    return check(out)


def to_kulfan_dict(v: Any) -> dict[str, np.ndarray]:
    """``[..., 18]`` -> the dict of ``neuralfoil.get_aero_from_kulfan_parameters`` / ``asb.KulfanAirfoil``.

    NeuralFoil indexes the weights by their first axis, so batched weights come weight-first: for ``v [n, 18]``
    ``upper_weights`` and ``lower_weights`` are ``[8, n]`` and the two scalars ``[n]``; for ``v [18]`` they are
    ``[8]`` and floats-as-0-d arrays, as aerosandbox writes them.
    """
    v = check(v)
    return {"upper_weights": np.moveaxis(v[..., UPPER], -1, 0),
            "lower_weights": np.moveaxis(v[..., LOWER], -1, 0),
            "leading_edge_weight": v[..., LE_WEIGHT],
            "TE_thickness": v[..., TE_THICKNESS]}


def from_kulfan_dict(params: dict[str, Any]) -> np.ndarray:
    """Inverse of ``to_kulfan_dict`` (weights weight-first ``[8, ...]``) -> ``[..., 18]``."""
    missing = {"upper_weights", "lower_weights"} - set(params)
    if missing:
        raise ValueError(f"Kulfan parameters lack {sorted(missing)}")
    up = np.moveaxis(np.asarray(params["upper_weights"], dtype=np.float64), 0, -1)
    lo = np.moveaxis(np.asarray(params["lower_weights"], dtype=np.float64), 0, -1)
    return pack(up, lo, params.get("leading_edge_weight", 0.0), params.get("TE_thickness", 0.0))


# ----------------------------------------------------------------------------------------------------------------
# Geometry (linear in the parameters)

def cosine_stations(n_points: int = DEFAULT_POINTS) -> np.ndarray:
    """``[n_points]`` chordwise stations 0..1, cosine-spaced (dense at both edges), as aerosandbox's cosspace."""
    if int(n_points) < 3:
        raise ValueError(f"n_points must be at least 3, got {n_points}")
    return 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, int(n_points))))


def basis(x: np.ndarray) -> np.ndarray:
    """``[18, 2, m]`` contribution of each parameter to (upper, lower) y at stations ``x [m]``.

    y_upper = C(x) S_upper(x) + LE(x) + x TE/2, y_lower = C(x) S_lower(x) + LE(x) - x TE/2 with
    C = x^0.5 (1 - x), S the degree-7 Bernstein sum and LE = w_le x (1 - x)^8.5, as aerosandbox.
    """
    x = np.asarray(x, dtype=np.float64)
    xc = np.clip(x, 0.0, 1.0)
    cls = xc ** N1 * (1.0 - xc) ** N2
    deg = N_WEIGHTS - 1
    bern = np.stack([comb(deg, i) * xc ** i * (1.0 - xc) ** (deg - i) for i in range(N_WEIGHTS)])  # [8, m]
    out = np.zeros((SECTION_SIZE, 2, x.shape[-1]))
    out[UPPER, 0] = cls * bern
    out[LOWER, 1] = cls * bern
    le = xc * (1.0 - xc) ** (N_WEIGHTS + 0.5)
    out[LE_WEIGHT, 0] = le
    out[LE_WEIGHT, 1] = le
    out[TE_THICKNESS, 0] = xc / 2
    out[TE_THICKNESS, 1] = -xc / 2
    return out


@lru_cache(maxsize=16)
def _cached_basis(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    x = cosine_stations(n_points)
    b = basis(x)
    b.setflags(write=False)
    x.setflags(write=False)
    return x, b


def surfaces_at(v: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower y ``[..., m]`` of sections ``v [..., 18]`` at chordwise stations ``x [m]`` (0..1)."""
    v = check(v)
    b = basis(np.atleast_1d(np.asarray(x, dtype=np.float64)))
    y = np.einsum("...p,psm->...sm", v, b)
    return y[..., 0, :], y[..., 1, :]


def coordinates(v: Any, n_points: int = DEFAULT_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surfaces of sections ``v [..., 18]`` (numpy) at ``n_points`` cosine-spaced stations.

    Returns ``x [n_points]`` (0 at the leading edge, 1 at the trailing edge), ``upper [..., n_points]`` and
    ``lower [..., n_points]`` (y over chord); for ``v [n, 18]`` the surfaces are ``[n, n_points]``.
    """
    v = check(v)
    x, b = _cached_basis(int(n_points))
    y = np.einsum("...p,psm->...sm", v, b)
    return x.copy(), y[..., 0, :], y[..., 1, :]


def contour(v: Any, n_points: int = DEFAULT_POINTS) -> np.ndarray:
    """One closed outline ``[..., 2 n_points - 1, 2]`` (x, y) in aerosandbox / Selig order: upper surface from
    the trailing edge to the leading edge, then the lower surface back to the trailing edge."""
    x, up, lo = coordinates(v, n_points)
    xs = np.concatenate([x[::-1], x[1:]])
    ys = np.concatenate([up[..., ::-1], lo[..., 1:]], axis=-1)
    return np.stack([np.broadcast_to(xs, ys.shape), ys], axis=-1)


def thickness(v: Any, n_points: int = DEFAULT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Maximum thickness (upper - lower, fraction of chord) ``[...]`` and its chordwise location ``[...]``."""
    x, up, lo = coordinates(v, n_points)
    t = up - lo
    i = np.argmax(t, axis=-1)
    return np.take_along_axis(t, i[..., None], -1)[..., 0], x[i]


def camber(v: Any, n_points: int = DEFAULT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Maximum camber (the mean line's largest |y|, signed, fraction of chord) ``[...]`` and its location."""
    x, up, lo = coordinates(v, n_points)
    mean = (up + lo) / 2
    i = np.argmax(np.abs(mean), axis=-1)
    return np.take_along_axis(mean, i[..., None], -1)[..., 0], x[i]


@lru_cache(maxsize=32)
def area_weights(x0: float = 0.0, x1: float = 1.0) -> np.ndarray:
    """``[18]`` exact integral over x in [x0, x1] of each parameter's contribution to (upper - lower): the area
    between the surfaces there is ``v @ area_weights(x0, x1)`` (read-only array)."""
    if not 0.0 <= x0 < x1 <= 1.0:
        raise ValueError(f"need 0 <= x0 < x1 <= 1, got x0={x0}, x1={x1}")
    deg = N_WEIGHTS - 1
    w = np.zeros(SECTION_SIZE)
    for i in range(N_WEIGHTS):
        # integral of x^(a - 1) (1 - x)^(b - 1) over [x0, x1] = B(a, b) (I_x1(a, b) - I_x0(a, b))
        a, b = i + N1 + 1, deg - i + N2 + 1
        w[i] = comb(deg, i) * beta_fn(a, b) * (betainc(a, b, x1) - betainc(a, b, x0))
    w[LOWER] = -w[UPPER]
    w[TE_THICKNESS] = (x1 ** 2 - x0 ** 2) / 2  # the LE mode moves both surfaces alike: no area
    w.setflags(write=False)
    return w


def area(v: Any, x0: float = 0.0, x1: float = 1.0) -> np.ndarray:
    """Area between the surfaces from ``x0`` to ``x1`` (chord fractions; default the whole section), over chord
    squared ``[...]``: the exact integral of (upper - lower), negative where the surfaces cross. With x0, x1 the
    spar stations it is the area a spar box can use."""
    return check(v) @ area_weights(float(x0), float(x1))


def crossing(v: Any, n_points: int = DEFAULT_POINTS) -> np.ndarray:
    """Largest overlap of the surfaces ``[...]``: max over the interior stations of (lower - upper), in chord
    units. At most 0 for a valid section (the leading and trailing edge points are excluded: the surfaces meet
    at x = 0 and, without TE thickness, at x = 1)."""
    _, up, lo = coordinates(v, n_points)
    return np.max((lo - up)[..., 1:-1], axis=-1)


def crosses(v: Any, n_points: int = DEFAULT_POINTS, tol: float = 0.0) -> np.ndarray:
    """``[...]`` bool: the upper and lower surfaces cross (overlap more than ``tol`` chord) somewhere."""
    return crossing(v, n_points) > tol


def summary(v: Any, n_points: int = DEFAULT_POINTS) -> dict[str, np.ndarray]:
    """Geometry of sections ``v [..., 18]`` by name: thickness and its location, camber and its location,
    area, crossing (max overlap), TE thickness; each ``[...]``."""
    t, xt = thickness(v, n_points)
    c, xc = camber(v, n_points)
    return {"thickness": t, "x_thickness": xt, "camber": c, "x_camber": xc, "area": area(v),
            "crossing": crossing(v, n_points), "te_thickness": check(v)[..., TE_THICKNESS]}


# ----------------------------------------------------------------------------------------------------------------
# Fitting to coordinates (aerosandbox)

def _as_coordinates(coords: Any, name: str) -> np.ndarray:
    arr = np.asarray(coords, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: coordinates must be an [N, 2] array of (x, y); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: coordinates contain NaN or inf (row {int(np.argwhere(~np.isfinite(arr))[0, 0])})")
    if len(arr) < MIN_FIT_POINTS:
        raise ValueError(f"{name}: {len(arr)} coordinates are too few for an {SECTION_SIZE}-parameter Kulfan fit "
                         f"(at least {MIN_FIT_POINTS} needed)")
    return arr


def normalized_coordinates(coords: Any, name: str = "airfoil") -> np.ndarray:
    """Coordinates ``[N, 2]`` checked and normalized by aerosandbox (leading edge at (0, 0), chord 1, unrotated),
    in Selig order; raises a ValueError for NaN, too few points, a degenerate chord or a surface with too few
    points."""
    asb = require_aerosandbox()
    arr = _as_coordinates(coords, name)
    chord = arr[:, 0].max() - arr[:, 0].min()
    if not chord > 1e-9:
        raise ValueError(f"{name}: degenerate coordinates (zero chord)")
    with np.errstate(all="ignore"):
        norm = asb.Airfoil(name=name, coordinates=arr).normalize().coordinates
    if not np.isfinite(norm).all():
        raise ValueError(f"{name}: normalization produced non-finite coordinates (degenerate shape)")
    le = int(np.argmin(norm[:, 0]))
    if le + 1 < MIN_POINTS_PER_SIDE or len(norm) - le < MIN_POINTS_PER_SIDE:
        raise ValueError(f"{name}: one surface has fewer than {MIN_POINTS_PER_SIDE} points (leading edge at row {le} "
                         f"of {len(norm)}); Selig order (TE -> upper -> LE -> lower -> TE) is expected")
    return norm


def from_coordinates(coords: Any, name: str = "airfoil") -> np.ndarray:
    """Least-squares Kulfan fit (aerosandbox's ``get_kulfan_parameters``) of coordinates ``[N, 2]`` -> ``[18]``."""
    from aerosandbox.geometry.airfoil.airfoil_families import get_kulfan_parameters
    norm = normalized_coordinates(coords, name)
    params = get_kulfan_parameters(norm, n_weights_per_side=N_WEIGHTS, N1=N1, N2=N2, normalize_coordinates=False)
    return pack(params["upper_weights"], params["lower_weights"], params["leading_edge_weight"],
                params["TE_thickness"])


def from_airfoil(airfoil: Any) -> np.ndarray:
    """Fit an ``asb.Airfoil`` (or ``asb.KulfanAirfoil``, read exactly) -> ``[18]``."""
    asb = require_aerosandbox()
    if isinstance(airfoil, asb.KulfanAirfoil):
        if len(airfoil.upper_weights) != N_WEIGHTS or len(airfoil.lower_weights) != N_WEIGHTS:
            raise ValueError(f"KulfanAirfoil {airfoil.name!r} has {len(airfoil.upper_weights)} / "
                             f"{len(airfoil.lower_weights)} weights per side; {N_WEIGHTS} are needed")
        if (airfoil.N1, airfoil.N2) != (N1, N2):
            raise ValueError(f"KulfanAirfoil {airfoil.name!r} has N1, N2 = {airfoil.N1}, {airfoil.N2}; sections use "
                             f"{N1}, {N2}")
        return pack(airfoil.upper_weights, airfoil.lower_weights, airfoil.leading_edge_weight, airfoil.TE_thickness)
    if getattr(airfoil, "coordinates", None) is None:
        raise ValueError(f"airfoil {getattr(airfoil, 'name', airfoil)!r} has no coordinates to fit")
    return from_coordinates(airfoil.coordinates, name=str(getattr(airfoil, "name", "airfoil")))


def fit_error(v: Any, coords: Any, name: str = "airfoil") -> tuple[float, float]:
    """Max and RMS |y_fit - y| over chord of section ``v [18]`` against its (normalized) coordinates ``[N, 2]``,
    both surfaces at the given x stations."""
    v = check(v)
    norm = normalized_coordinates(coords, name)
    le = int(np.argmin(norm[:, 0]))
    up_fit, _ = surfaces_at(v, norm[: le + 1, 0])
    _, lo_fit = surfaces_at(v, norm[le:, 0])
    err = np.concatenate([up_fit - norm[: le + 1, 1], lo_fit - norm[le:, 1]])
    return float(np.max(np.abs(err))), float(np.sqrt(np.mean(err ** 2)))


def to_airfoil(v: Any, name: str = "section") -> Any:
    """Section ``[18]`` -> ``asb.KulfanAirfoil`` (exact; ``.to_airfoil()`` gives coordinates)."""
    asb = require_aerosandbox()
    v = check(v)
    if v.ndim != 1:
        raise ValueError(f"to_airfoil takes one section [18]; got shape {v.shape}")
    return asb.KulfanAirfoil(name=name, upper_weights=v[UPPER].copy(), lower_weights=v[LOWER].copy(),
                             leading_edge_weight=float(v[LE_WEIGHT]), TE_thickness=float(v[TE_THICKNESS]),
                             N1=N1, N2=N2)
