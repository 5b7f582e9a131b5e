"""Wing aerodynamics at a required lift: aerosandbox's vortex lattice for the span loading, NeuralFoil for the
sections (profile drag and maximum lift), the Trefftz plane for the induced drag.

Per wing, aerosandbox's ``VortexLatticeMethod`` (wake along x, so the solution is linear in the freestream
direction) is run at two angles of attack; every other angle follows exactly as
``Gamma(alpha) = cos(alpha) Gamma_x + sin(alpha) Gamma_z``. From the circulation of each spanwise strip:

- lift ``L = rho V sum Gamma dy`` and the angle of attack that gives the required lift, in closed form;
- induced drag from the lifting-line (Trefftz-plane) series fitted to the strips' circulations
  (:func:`induced`); aerosandbox's near-field drag is not used: at these resolutions it comes out below the
  elliptic-wing minimum (span efficiency above 1), as does the point-vortex Trefftz sum at the strip midpoints;
- the local lift coefficient of each strip ``cl = 2 Gamma / (V c)``.

NeuralFoil (``model_size``, batched over every strip of every wing and an angle grid) gives each strip's
section polar at the cruise and at the stall Reynolds number: the profile drag is the section drag at the
strip's cl (strip theory), and the wing's maximum lift is the critical-section estimate: the wing lift at the
angle where the first strip reaches its section maximum lift times cos(sweep). NeuralFoil is trained on XFoil,
which over-predicts the maximum lift of thick sections by roughly 5-10 %.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import sections
from .loft import WingShape, span_stations, stations

G0 = 9.80665
ALPHA_SOLVE = 6.0  # degrees: the second vortex-lattice solve
ALPHA_GRID = np.arange(-6.0, 25.0, 1.0)  # degrees: NeuralFoil polar of every strip
ALPHA_SCAN = np.arange(-4.0, 25.0, 0.05)  # degrees: search of the wing's maximum lift


@dataclass(frozen=True)
class FlightCondition:
    """Cruise at a required lift and a stall-speed requirement (SI units).

    The default is a four-seat light aircraft: 1100 kg, cruise 60 m/s at 2000 m, clean stall at most 31 m/s at
    sea level (60 knots); ``n_crit`` is NeuralFoil's transition parameter (9: natural transition).
    """

    mass: float = 1100.0
    speed: float = 60.0
    altitude: float = 2000.0
    stall_speed: float = 31.0
    n_crit: float = 9.0

    def __post_init__(self) -> None:
        for name in ("mass", "speed", "stall_speed", "n_crit"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"flight condition: {name} must be a positive number, got {value!r}")
        if not (np.isfinite(self.altitude) and -500.0 <= self.altitude <= 20000.0):
            raise ValueError(f"flight condition: altitude must be within -500..20000 m, got {self.altitude!r}")

    @property
    def weight(self) -> float:
        """Required lift, N."""
        return self.mass * G0

    def air(self, altitude: float | None = None) -> tuple[float, float]:
        """Density (kg/m^3) and dynamic viscosity (Pa s) of the standard atmosphere at ``altitude`` (cruise)."""
        asb = sections.require_aerosandbox()
        atm = asb.Atmosphere(altitude=self.altitude if altitude is None else altitude)
        return float(atm.density()), float(atm.dynamic_viscosity())


@dataclass
class Strips:
    """Vortex-lattice solution of one wing, per spanwise strip from the left tip to the right tip (``2 K``):
    circulation parts ``gamma_x``, ``gamma_z`` (m^2/s at the cruise speed), the strip edges ``edges [2K + 1]``
    (horizontal y of the trailing vortices), the strip chord ``chord`` and length ``length`` ``[2K]``, and the
    blended section of each strip of the right half ``section [K, 18]`` (the left half mirrors it)."""

    gamma_x: np.ndarray
    gamma_z: np.ndarray
    edges: np.ndarray
    chord: np.ndarray
    length: np.ndarray
    section: np.ndarray

    def gamma(self, alpha_deg: Any) -> np.ndarray:
        """Strip circulation ``[..., 2K]`` at angles of attack ``alpha_deg [...]`` (degrees)."""
        a = np.radians(np.asarray(alpha_deg, dtype=np.float64))[..., None]
        return np.cos(a) * self.gamma_x + np.sin(a) * self.gamma_z


_CONTROLLER: Any = None


def _one_blas_thread() -> Any:
    """A context with one BLAS thread: the lattice systems are small (a few hundred unknowns), and several BLAS
    threads on a shared machine made each solve 5-10 times slower here. A no-op without threadpoolctl."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return contextlib.nullcontext()
        _CONTROLLER = ThreadpoolController()  # finding the libraries takes ~5 ms: once per process
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _asb_wing(shape: WingShape, eta: np.ndarray, fast: bool = True) -> Any:
    """One wing (batch of one) as a symmetric ``asb.Wing`` with a cross-section at each span fraction ``eta``;
    ``fast`` gives it the vectorized camber-surface mesher of :func:`camber_surface` (the same points as
    aerosandbox's own, 15 times faster)."""
    asb = sections.require_aerosandbox()
    st = stations(shape, eta)
    xsecs = [asb.WingXSec(xyz_le=st["le"][0, k], chord=float(st["chord"][0, k]), twist=float(st["twist"][0, k]),
                          airfoil=sections.to_airfoil(st["section"][0, k], name=f"station{k}"))
             for k in range(len(eta))]
    if not fast:
        return asb.Wing(name="wing", symmetric=True, xsecs=xsecs)
    wing = _fast_wing_class()(name="wing", symmetric=True, xsecs=xsecs)
    wing.stations = (st, float(shape.dihedral[0]))
    return wing


def camber_surface(st: dict[str, np.ndarray], dihedral: float, n_chord: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``[2 (n_chord + 1) m, 3]`` and quad faces ``[2 n_chord (m - 1), 4]`` of the mean camber surface of a
    symmetric wing with stations ``st`` (of :func:`~.loft.stations`, one wing, ``m`` stations), in the order and
    frames of ``asb.Wing.mesh_thin_surface(method="quad", chordwise_spacing_function=cosspace)``: the local
    span axis (0, cos G, sin G) for a straight wing of dihedral G, twist about it, right half then the mirror."""
    m = st["chord"].shape[1]
    x_n = 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, n_chord + 1)))  # aerosandbox's cosspace(0, 1, n + 1)
    up, lo = sections.surfaces_at(st["section"][0], x_n)  # [m, C + 1]
    camber = 0.5 * (up + lo)
    g, t = np.radians(dihedral), np.radians(st["twist"][0])[:, None]
    ex, ez = np.array([1.0, 0.0, 0.0]), np.array([0.0, -np.sin(g), np.cos(g)])
    x_axis = ex * np.cos(t) - ez * np.sin(t)  # [m, 3]
    z_axis = ez * np.cos(t) + ex * np.sin(t)
    c = st["chord"][0][:, None, None]
    pts = st["le"][0][:, None, :] + c * (x_n[None, :, None] * x_axis[:, None, :]
                                         + camber[..., None] * z_axis[:, None, :])
    pts = np.swapaxes(pts, 0, 1).reshape(-1, 3)  # chordwise line j holds every station i: index i + j m
    i, j = np.meshgrid(np.arange(m - 1), np.arange(n_chord), indexing="ij")
    i, j = i.ravel(), j.ravel()
    right = np.stack([i + j * m, i + (j + 1) * m, i + 1 + (j + 1) * m, i + 1 + j * m], axis=1)
    left = len(pts) + np.stack([i + 1 + j * m, i + 1 + (j + 1) * m, i + (j + 1) * m, i + j * m], axis=1)
    return np.concatenate([pts, pts * np.array([1.0, -1.0, 1.0])]), np.concatenate([right, left])


_FAST_WING: Any = None


def _fast_wing_class() -> Any:
    """``asb.Wing`` whose ``mesh_thin_surface`` is :func:`camber_surface` (built once, on first use)."""
    global _FAST_WING
    if _FAST_WING is None:
        asb = sections.require_aerosandbox()

        class FastWing(asb.Wing):
            """An ``asb.Wing`` meshed by :func:`camber_surface` (quad faces, cosine chordwise spacing)."""

            stations: tuple[dict[str, np.ndarray], float]

            def mesh_thin_surface(self, method: str = "quad", chordwise_resolution: int = 6,
                                  chordwise_spacing_function: Any = None, add_camber: bool = True) -> Any:
                if method != "quad" or not add_camber:
                    return super().mesh_thin_surface(method, chordwise_resolution, chordwise_spacing_function,
                                                     add_camber)
                return camber_surface(self.stations[0], self.stations[1], chordwise_resolution)

        _FAST_WING = FastWing
    return _FAST_WING


def vortex_lattice(shape: WingShape, condition: FlightCondition, n_span: int = 12, n_chord: int = 6,
                   fast: bool = True) -> Strips:
    """Solve the vortex lattice of one wing (``shape`` holds one row): ``n_span`` strips per half between the
    loft's span stations, ``n_chord`` cosine-spaced chordwise panels; returns its :class:`Strips`. ``fast=False``
    lets aerosandbox mesh the camber surface itself (same result, slower)."""
    asb = sections.require_aerosandbox()
    if len(shape) != 1:
        raise ValueError(f"vortex_lattice takes one wing; got a batch of {len(shape)}")
    eta = span_stations(n_span)
    wing = _asb_wing(shape, eta, fast)
    plane = asb.Airplane(wings=[wing], s_ref=float(shape.area[0]), b_ref=float(shape.span[0]),
                         c_ref=float(shape.area[0] / shape.span[0]))
    atm = asb.Atmosphere(altitude=condition.altitude)
    runs = []
    with _one_blas_thread():
        for alpha in (0.0, ALPHA_SOLVE):
            vlm = asb.VortexLatticeMethod(plane, asb.OperatingPoint(atm, velocity=condition.speed, alpha=alpha),
                                          spanwise_resolution=1, chordwise_resolution=n_chord,
                                          chordwise_spacing_function=asb.numpy.cosspace)
            vlm.run()
            runs.append(vlm)
    k = n_span

    def per_strip(values: np.ndarray) -> np.ndarray:  # [2 K C, ...] right half then left half -> left tip..right tip
        v = values.reshape(2, k, n_chord, *values.shape[1:])
        return np.concatenate([v[1, ::-1], v[0]])

    g0 = per_strip(runs[0].vortex_strengths).sum(axis=1)
    g1 = per_strip(runs[1].vortex_strengths).sum(axis=1)
    a1 = np.radians(ALPHA_SOLVE)
    gamma_z = (g1 - np.cos(a1) * g0) / np.sin(a1)
    ends = np.sort(np.stack([per_strip(runs[0].left_vortex_vertices)[:, -1, 1],  # trailing-edge row, y
                             per_strip(runs[0].right_vortex_vertices)[:, -1, 1]], axis=1), axis=1)
    edges = np.concatenate([ends[:, 0], ends[-1:, 1]])
    st = stations(shape, eta)
    chord_half = 0.5 * (st["chord"][0, 1:] + st["chord"][0, :-1])
    le = st["le"][0]
    length_half = np.linalg.norm(np.diff(le[:, 1:], axis=0), axis=1)
    mid = 0.5 * (eta[1:] + eta[:-1])
    section = (1 - mid)[:, None] * shape.root[0][None, :] + mid[:, None] * shape.tip[0][None, :]
    return Strips(gamma_x=g0, gamma_z=gamma_z, edges=edges, chord=np.concatenate([chord_half[::-1], chord_half]),
                  length=np.concatenate([length_half[::-1], length_half]), section=section)


def fourier_basis(edges: np.ndarray, speed: float) -> np.ndarray:
    """``[S, S]``: the mean over each strip (between ``edges [S + 1]``, y from the left tip to the right tip) of
    the lifting-line modes ``2 b V sin(n theta)``, n = 1..S, with ``y = -(b/2) cos(theta)``; exact integrals."""
    half = 0.5 * (edges[-1] - edges[0])
    theta = np.arccos(np.clip(-(edges - 0.5 * (edges[-1] + edges[0])) / half, -1.0, 1.0))
    n = np.arange(1, len(edges))[None, :]
    t = theta[:, None]
    # integral of sin(n t) sin(t) (b/2) dt = (b/4) [sin((n - 1) t) / (n - 1) - sin((n + 1) t) / (n + 1)]
    first = np.where(n == 1, t, np.sin((n - 1) * t) / np.where(n == 1, 1, n - 1))
    prim = 0.5 * half * (first - np.sin((n + 1) * t) / (n + 1))
    return 2 * (2 * half) * speed * np.diff(prim, axis=0) / np.diff(edges)[:, None]


def induced(gamma: np.ndarray, edges: np.ndarray, rho: float, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Lift and induced drag (N) ``[...]`` of strip circulations ``gamma [..., S]`` (strips between ``edges
    [S + 1]``, horizontal y from the left tip): the lifting-line series ``Gamma = 2 b V sum A_n sin(n theta)``
    with S terms reproduces every strip's mean circulation exactly; then ``L = pi/2 rho V^2 b^2 A_1`` and
    ``D_i = pi/2 rho V^2 b^2 sum n A_n^2`` (so the span efficiency never exceeds 1). Converges from below:
    with 12 strips per half the span efficiency of a rectangular wing of aspect ratio 7 is 2-3 % low.
    Dihedral enters through the projected span only."""
    basis = fourier_basis(np.asarray(edges, dtype=np.float64), speed)
    coef = np.linalg.solve(basis, np.moveaxis(np.asarray(gamma, dtype=np.float64), -1, 0).reshape(len(basis), -1))
    coef = coef.T.reshape(*np.shape(gamma)[:-1], len(basis))  # [..., S]
    span = edges[-1] - edges[0]
    n = np.arange(1, len(basis) + 1)
    factor = 0.5 * np.pi * rho * speed ** 2 * span ** 2
    return factor * coef[..., 0], factor * np.sum(n * coef ** 2, axis=-1)


def section_polars(section: np.ndarray, reynolds: np.ndarray, n_crit: float = 9.0,
                   model_size: str = "xlarge") -> dict[str, np.ndarray]:
    """NeuralFoil polars of sections ``[..., 18]`` at Reynolds numbers ``[...]`` over ``ALPHA_GRID``: ``CL``,
    ``CD``, ``confidence`` ``[..., A]``, in one batched call."""
    try:
        import neuralfoil
    except ImportError as err:
        raise ImportError(f"section aerodynamics need NeuralFoil: {sections.INSTALL_HINT}") from err
    section = sections.check(section)
    batch = section.shape[:-1]
    reynolds = np.broadcast_to(np.asarray(reynolds, dtype=np.float64), batch)
    n_a = len(ALPHA_GRID)
    flat = np.repeat(section.reshape(-1, sections.SECTION_SIZE), n_a, axis=0)
    out = neuralfoil.get_aero_from_kulfan_parameters(
        sections.to_kulfan_dict(flat), alpha=np.tile(ALPHA_GRID, int(np.prod(batch))),
        Re=np.repeat(reynolds.reshape(-1), n_a), n_crit=n_crit, model_size=model_size)
    return {"CL": np.asarray(out["CL"]).reshape(*batch, n_a), "CD": np.asarray(out["CD"]).reshape(*batch, n_a),
            "confidence": np.asarray(out["analysis_confidence"]).reshape(*batch, n_a)}


def cl_max(cl: np.ndarray) -> np.ndarray:
    """Maximum of polars ``cl [..., A]`` over ``ALPHA_GRID``, refined by a parabola through the best point and its
    neighbours."""
    i = np.clip(np.argmax(cl, axis=-1), 1, cl.shape[-1] - 2)
    y0, y1, y2 = (np.take_along_axis(cl, (i + k)[..., None], -1)[..., 0] for k in (-1, 0, 1))
    curv = y0 - 2 * y1 + y2
    peak = y1 - np.where(curv < 0, (y2 - y0) ** 2 / (8 * np.where(curv < 0, curv, -1.0)), 0.0)
    return np.maximum(peak, cl.max(axis=-1))


def drag_at_cl(cl_polar: np.ndarray, cd_polar: np.ndarray, cl: np.ndarray) -> np.ndarray:
    """Section drag ``[...]`` at lift coefficients ``cl [...]`` on the attached branch of polars ``[..., A]``
    (angles up to the maximum lift; beyond it, the drag at the maximum)."""
    out = np.empty(cl.shape)
    for idx in np.ndindex(cl.shape):
        c, d = cl_polar[idx], cd_polar[idx]
        top = int(np.argmax(c))
        lo = int(np.argmin(c[: top + 1]))
        out[idx] = np.interp(cl[idx], c[lo: top + 1], d[lo: top + 1])
    return out


def cruise(shape: WingShape, condition: FlightCondition, n_span: int = 12, n_chord: int = 6,
           model_size: str = "xlarge") -> dict[str, np.ndarray]:
    """Aerodynamics of every wing of ``shape`` at ``condition``; each value ``[n]`` (strip values ``[n, 2K]``).

    ``alpha`` (deg) trims the lift to the weight; ``CL``, ``CDi``, ``CDp``, ``CD`` (reference: the projected
    area), ``L_over_D``, ``drag`` (N), ``induced_drag``, ``profile_drag``; ``CL_max`` (critical section) and
    ``stall_speed`` (m/s, sea level); ``stall_margin = CL_max / CL needed at the required stall speed - 1``;
    ``confidence``: NeuralFoil's lowest analysis confidence at the cruise point; strip results ``strip_cl``
    and ``strip_lift`` (N, at the cruise trim). Rows whose lift cannot reach the weight get NaN and a reason
    in ``errors``.
    """
    rho, mu = condition.air()
    rho0, mu0 = condition.air(0.0)
    v, w = condition.speed, condition.weight
    n, k2 = len(shape), 2 * n_span
    strips = [vortex_lattice(shape.row(i), condition, n_span, n_chord) for i in range(n)]
    chord = np.stack([s.chord for s in strips])  # [n, 2K]
    half_sections = np.stack([s.section for s in strips])  # [n, K, 18]
    re_cruise = rho * v * chord[:, n_span:] / mu
    re_stall = rho0 * condition.stall_speed * chord[:, n_span:] / mu0
    with _one_blas_thread():
        polars = section_polars(np.concatenate([half_sections, half_sections], axis=1),
                                np.concatenate([re_cruise, re_stall], axis=1), condition.n_crit, model_size)
    cruise_cl, cruise_cd = polars["CL"][:, :n_span], polars["CD"][:, :n_span]
    stall_cl = polars["CL"][:, n_span:]
    clmax_half = cl_max(stall_cl) * np.cos(np.radians(shape.sweep))[:, None]  # [n, K]
    clmax = np.concatenate([clmax_half[:, ::-1], clmax_half], axis=1)

    keys = ("alpha", "CL", "CDi", "CDp", "CD", "L_over_D", "drag", "induced_drag", "profile_drag", "CL_max",
            "stall_speed", "stall_margin", "confidence")
    out = {key: np.full(n, np.nan) for key in keys}
    out["strip_cl"] = np.full((n, k2), np.nan)
    out["strip_lift"] = np.full((n, k2), np.nan)
    errors: list[str | None] = [None] * n
    q = 0.5 * rho * v ** 2
    area = shape.area
    for i, s in enumerate(strips):
        lift_x, _ = induced(s.gamma_x, s.edges, rho, v)
        lift_z, _ = induced(s.gamma_z, s.edges, rho, v)
        reach = np.hypot(lift_x, lift_z)
        if not reach > w:
            errors[i] = (f"the wing cannot lift {w:.0f} N at {v:g} m/s (at most {reach:.0f} N at any angle of "
                         f"attack in the linear model)")
            continue
        alpha = np.degrees(np.arcsin(w / reach) - np.arctan2(lift_x, lift_z))
        gamma = s.gamma(alpha)
        lift, di = induced(gamma, s.edges, rho, v)
        cl_local = 2 * gamma / (v * s.chord)
        cd_local = drag_at_cl(cruise_cl[i], cruise_cd[i], cl_local[n_span:])
        cd_local = np.concatenate([cd_local[::-1], cd_local])
        dp = q * np.sum(cd_local * s.chord * s.length)
        # critical section: the first angle at which a strip reaches its maximum lift
        g_scan = s.gamma(ALPHA_SCAN)  # [A, 2K]
        reached = (2 * g_scan / (v * s.chord) >= clmax[i]).any(axis=1)
        first = int(np.argmax(reached)) if reached.any() else len(ALPHA_SCAN) - 1
        lift_scan, _ = induced(g_scan[first], s.edges, rho, v)
        cl_wing_max = float(lift_scan / (q * area[i]))
        cl_needed = w / (0.5 * rho0 * condition.stall_speed ** 2 * area[i])
        conf = polars["confidence"][i, :n_span]
        lo_conf = float(np.min([np.interp(alpha, ALPHA_GRID, conf[j]) for j in range(n_span)]))
        out["alpha"][i], out["CL"][i] = alpha, lift / (q * area[i])
        out["induced_drag"][i], out["profile_drag"][i], out["drag"][i] = di, dp, di + dp
        out["CDi"][i], out["CDp"][i] = di / (q * area[i]), dp / (q * area[i])
        out["CD"][i] = out["CDi"][i] + out["CDp"][i]
        out["L_over_D"][i] = lift / (di + dp)
        out["CL_max"][i] = cl_wing_max
        out["stall_speed"][i] = np.sqrt(2 * w / (rho0 * area[i] * cl_wing_max)) if cl_wing_max > 0 else np.inf
        out["stall_margin"][i] = cl_wing_max / cl_needed - 1.0
        out["confidence"][i] = lo_conf
        out["strip_cl"][i] = cl_local
        out["strip_lift"][i] = rho * v * gamma * np.diff(s.edges)
    out["errors"] = np.array(errors, dtype=object)
    return out
