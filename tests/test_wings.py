"""3-D wings: loft and mesh measures against analytic values, mesh checks, export, aerodynamics, the domain."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

pytest.importorskip("aerosandbox")
pytest.importorskip("neuralfoil")
trimesh = pytest.importorskip("trimesh")

import workbench as wb  # noqa: E402
from domains.shapes import sections  # noqa: E402
from domains.shapes.airfoil_data import load_database  # noqa: E402
from domains.shapes.loft import (MIN_TE, GeometryError, WingShape, check_mesh, export_mesh,  # noqa: E402
                                 load_mesh, loft, measures, self_intersections, span_stations)
from domains.shapes.render3d import save_render  # noqa: E402
from domains.shapes.wing_aero import FlightCondition, cruise, induced, vortex_lattice  # noqa: E402
from domains.shapes.wings import Wing, camber_and_thickness, make_section  # noqa: E402
from optimizers import NSGA2  # noqa: E402


@pytest.fixture(scope="module")
def naca2412() -> np.ndarray:
    v = load_database().vector("naca2412")
    v[sections.TE_THICKNESS] = max(v[sections.TE_THICKNESS], MIN_TE)  # the mesh opens thinner edges to MIN_TE
    return v


@pytest.fixture(scope="module")
def wing() -> Wing:
    return Wing()


def polygon(v: np.ndarray, n_points: int) -> tuple[float, float]:
    """Area and perimeter over chord^2 / chord of the section outline the loft uses."""
    x, up, lo = sections.coordinates(v, n_points)
    px, py = np.concatenate([x, x[1:][::-1]]), np.concatenate([up, lo[1:][::-1]])
    area = 0.5 * abs(np.dot(px, np.roll(py, -1)) - np.dot(py, np.roll(px, -1)))
    return area, float(np.sum(np.hypot(np.diff(np.r_[px, px[0]]), np.diff(np.r_[py, py[0]]))))


# ------------------------------------------------------------------------------------------------ geometry
def test_untapered_unswept_wing_matches_analytic_volume_and_area(naca2412):
    span, chord = 10.0, 1.5
    lofted = loft(WingShape.make(span, chord, chord, root=naca2412), n_span=8, n_points=41)
    mesh = lofted.mesh(0)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    area, perimeter = polygon(naca2412, 41)
    m = measures(lofted)
    assert m["volume"][0] == pytest.approx(span * chord ** 2 * area, rel=1e-12)  # a prism of the outline
    assert mesh.volume == pytest.approx(m["volume"][0], rel=1e-12)
    assert m["volume"][0] == pytest.approx(span * chord ** 2 * float(sections.area(naca2412)), rel=2e-3)  # exact CST
    wetted = span * chord * perimeter + 2 * chord ** 2 * area  # sides and the two tip caps
    assert m["wetted_area"][0] == pytest.approx(wetted, rel=1e-12)
    assert mesh.area == pytest.approx(wetted, rel=1e-12)
    assert m["interval_area"].sum() == pytest.approx(span * chord * perimeter, rel=1e-12)


def test_taper_and_sweep_keep_the_frustum_volume(naca2412):
    """Stations are homothetic outlines, so each bay is a frustum; sweep is a shear, which keeps volume."""
    span, cr, ct = 9.0, 2.0, 0.8
    area, _ = polygon(naca2412, 31)
    exact = span * area * (cr ** 2 + cr * ct + ct ** 2) / 3
    for sweep in (0.0, 25.0):
        lofted = loft(WingShape.make(span, cr, ct, sweep=sweep, root=naca2412), n_span=5, n_points=31)
        assert measures(lofted)["volume"][0] == pytest.approx(exact, rel=1e-10)
        mesh = lofted.mesh(0)
        assert mesh.is_watertight and mesh.is_winding_consistent


def test_twisted_dihedral_wing_is_a_closed_symmetric_solid(naca2412):
    tip = load_database().vector("ls417")
    lofted = loft(WingShape.make(11.0, 1.6, 0.7, sweep=15.0, twist=-4.0, dihedral=7.0, root=naca2412, tip=tip))
    mesh = check_mesh(lofted.mesh(0), self_intersection=True)
    v = np.asarray(mesh.vertices)
    assert np.abs(np.sort(v[:, 1]) + np.sort(-v[:, 1])[::-1]).max() < 1e-12  # mirror symmetric in y
    tip_le = v[np.argmax(v[:, 1])]
    assert tip_le[2] > 0.5 * 5.5 * np.tan(np.radians(7.0))  # dihedral raises the tips
    assert len(lofted.faces) == len(loft(WingShape.make(8.0, 1.0, 1.0, root=naca2412)).faces)  # fixed topology


def test_batched_loft_equals_one_at_a_time(naca2412):
    shape = WingShape.make([8.0, 12.0], [1.2, 1.8], [1.0, 0.6], [0.0, 10.0], [0.0, -3.0], [2.0, 5.0], naca2412)
    both = measures(loft(shape))
    for i in range(2):
        one = measures(loft(shape.row(i)))
        assert both["volume"][i] == pytest.approx(one["volume"][0], rel=1e-13)
        assert both["wetted_area"][i] == pytest.approx(one["wetted_area"][0], rel=1e-13)


def test_bad_wings_raise_clear_errors(naca2412):
    with pytest.raises(GeometryError, match="span is nan"):
        WingShape.make(np.nan, 1.0, 1.0, root=naca2412)
    with pytest.raises(GeometryError, match="root_chord must be > 0"):
        WingShape.make(10.0, -1.0, 1.0, root=naca2412)
    crossed = naca2412.copy()
    crossed[sections.UPPER], crossed[sections.LOWER] = naca2412[sections.LOWER], naca2412[sections.UPPER]
    with pytest.raises(GeometryError, match="self-intersecting.*tip section"):
        WingShape.make(10.0, 1.0, 1.0, root=naca2412, tip=crossed)
    with pytest.raises(ValueError, match="non-finite"):
        WingShape.make(10.0, 1.0, 1.0, root=np.full(18, np.nan))
    with pytest.raises(ValueError, match="18 Kulfan values"):
        WingShape.make(10.0, 1.0, 1.0, root=np.zeros(5))


def test_check_mesh_catches_open_flipped_and_intersecting_meshes(naca2412):
    mesh = loft(WingShape.make(8.0, 1.0, 1.0, root=naca2412), n_span=3, n_points=11).mesh(0)
    with pytest.raises(GeometryError, match="not watertight"):
        check_mesh(trimesh.Trimesh(mesh.vertices, mesh.faces[1:], process=False))
    flipped = mesh.faces.copy()
    flipped[:10] = flipped[:10, ::-1]
    with pytest.raises(GeometryError, match="not wound consistently"):
        check_mesh(trimesh.Trimesh(mesh.vertices, flipped, process=False))
    with pytest.raises(GeometryError, match="inside out"):
        check_mesh(trimesh.Trimesh(mesh.vertices, mesh.faces[:, ::-1], process=False))
    nan = np.asarray(mesh.vertices).copy()
    nan[3] = np.nan
    with pytest.raises(GeometryError, match="NaN"):
        check_mesh(trimesh.Trimesh(nan, mesh.faces, process=False))
    a, b = trimesh.creation.box(extents=(1, 1, 1)), trimesh.creation.box(extents=(1, 1, 1))
    b.apply_translation((0.5, 0.3, 0.2))
    both = trimesh.util.concatenate([a, b])  # closed and consistent, but the boxes pass through each other
    assert both.is_watertight
    assert len(self_intersections(both.vertices, both.faces)) > 0
    with pytest.raises(GeometryError, match="self-intersecting"):
        check_mesh(both, self_intersection=True)
    apart = trimesh.util.concatenate([a, b.copy().apply_translation((3, 0, 0))])
    assert len(self_intersections(apart.vertices, apart.faces)) == 0


def test_export_round_trip_and_render(naca2412, tmp_path):
    mesh = loft(WingShape.make(10.0, 1.5, 0.9, sweep=10.0, twist=-2.0, dihedral=4.0, root=naca2412)).mesh(0)
    for fmt in ("stl", "glb"):
        path = export_mesh(mesh, tmp_path / f"wing.{fmt}")
        back = load_mesh(path)
        assert back.is_watertight and back.is_winding_consistent
        assert back.volume == pytest.approx(mesh.volume, rel=1e-5)
        assert back.area == pytest.approx(mesh.area, rel=1e-5)
    with pytest.raises(FileNotFoundError):
        load_mesh(tmp_path / "missing.stl")
    png = save_render(mesh, tmp_path / "wing.png", title="wing")
    assert png.stat().st_size > 5000


# ------------------------------------------------------------------------------------------------ sections
def test_section_scalings_are_exact():
    db = load_database()
    a, b = db.vector("naca652415"), db.vector("ls417")
    v = make_section(a, b, [0.0, 0.3, 1.0], [0.10, 0.14, 0.18], [1.0, 0.5, 0.0])
    t, _ = sections.thickness(v)
    assert np.allclose(t, [0.10, 0.14, 0.18], atol=1e-12)
    cam, _ = sections.camber(v)
    assert abs(cam[2]) < 1e-12 and cam[0] > 0.01  # camber scale 0 gives a symmetric section
    c, th = camber_and_thickness(a)
    assert np.allclose(c + th, a, atol=1e-15)
    assert not sections.crosses(v).any()


# ------------------------------------------------------------------------------------------------ aerodynamics
def test_induced_drag_series_is_exact_for_an_elliptic_loading():
    edges = np.concatenate([-span_stations(10)[::-1], span_stations(10)[1:]]) * 5.0  # b = 10 m
    prim = 0.5 * (edges / 5 * np.sqrt(1 - (edges / 5) ** 2) + np.arcsin(edges / 5))
    gamma = 3.0 * 5.0 * np.diff(prim) / np.diff(edges)  # strip means of 3 sqrt(1 - (2y/b)^2)
    lift, drag = induced(gamma, edges, rho=1.2, speed=50.0)
    lift_exact = 1.2 * 50.0 * 3.0 * np.pi / 4 * 10.0
    assert lift == pytest.approx(lift_exact, rel=1e-10)
    assert drag == pytest.approx(lift_exact ** 2 / (np.pi * 0.5 * 1.2 * 50.0 ** 2 * 10.0 ** 2), rel=1e-8)


def test_vortex_lattice_lift_grows_with_alpha_and_matches_aerosandbox(naca2412):
    cond = FlightCondition()
    shape = WingShape.make(10.0, 1.6, 0.9, sweep=10.0, twist=-2.0, dihedral=5.0, root=naca2412)
    fast = vortex_lattice(shape, cond, n_span=6)
    slow = vortex_lattice(shape, cond, n_span=6, fast=False)  # aerosandbox meshes the camber surface itself
    assert np.allclose(fast.gamma_x, slow.gamma_x, rtol=1e-9) and np.allclose(fast.gamma_z, slow.gamma_z, rtol=1e-9)
    rho, _ = cond.air()
    lift, _ = induced(fast.gamma(np.array([-2.0, 0.0, 2.0, 4.0, 8.0])), fast.edges, rho, cond.speed)
    assert (np.diff(lift) > 0).all()
    cl_alpha = np.diff(lift[[1, 3]])[0] / (0.5 * rho * cond.speed ** 2 * shape.area[0]) / np.radians(4.0)
    ar = shape.aspect_ratio[0]
    assert 0.8 < cl_alpha / (2 * np.pi * ar / (ar + 2)) < 1.1  # finite-wing lift slope


def test_cruise_trims_to_the_weight_with_plausible_numbers(naca2412):
    cond = FlightCondition()
    shape = WingShape.make(11.0, 1.6, 0.9, sweep=5.0, twist=-2.0, dihedral=4.0, root=naca2412)
    out = cruise(shape, cond)
    rho, _ = cond.air()
    q = 0.5 * rho * cond.speed ** 2
    assert out["CL"][0] * q * shape.area[0] == pytest.approx(cond.weight, rel=1e-9)
    assert 0 < out["alpha"][0] < 8
    assert out["drag"][0] == pytest.approx(out["induced_drag"][0] + out["profile_drag"][0])
    assert out["CD"][0] == pytest.approx(out["CDi"][0] + out["CDp"][0])
    assert 20 < out["L_over_D"][0] < 45  # a clean wing alone
    e = out["CL"][0] ** 2 / (np.pi * shape.aspect_ratio[0] * out["CDi"][0])
    assert 0.9 < e <= 1.0
    assert 0.003 < out["CDp"][0] < 0.008
    assert 1.2 < out["CL_max"][0] < 1.9 and out["confidence"][0] > 0.8
    assert out["stall_margin"][0] == pytest.approx((cond.stall_speed / out["stall_speed"][0]) ** 2 - 1, rel=1e-9)
    assert np.sum(out["strip_lift"][0]) == pytest.approx(cond.weight, rel=1e-6)


def test_induced_drag_falls_with_aspect_ratio(naca2412):
    cond = FlightCondition()
    area = 15.0
    spans = np.array([8.0, 10.0, 12.0, 14.0])
    chords = area / spans
    out = cruise(WingShape.make(spans, chords, chords, root=naca2412), cond)
    assert (np.diff(out["induced_drag"]) < 0).all()
    assert (np.diff(out["CDi"]) < 0).all()
    e = out["CL"] ** 2 / (np.pi * spans ** 2 / area * out["CDi"])
    assert ((e > 0.85) & (e <= 1.0)).all()


# ------------------------------------------------------------------------------------------------ the domain
def test_domain_analyze_evaluate_and_bad_rows(wing):
    x = wing.space.sample(4, torch.Generator().manual_seed(0))
    table = wing.analyze(x)
    assert table["error"].isna().all()
    assert (table["fuel_volume"] > 0).all() and (table["structural_mass"] > 0).all()
    assert np.allclose(table["fuel_volume"], 1000 * table["volume"])
    assert ((table["L_over_D"] > 10) & (table["L_over_D"] < 50)).all()
    again = Wing().analyze(x)  # a fresh domain (no cache): the physics is deterministic
    assert np.array_equal(again[["drag", "structural_mass", "fuel_volume", "stall_margin"]].to_numpy(),
                          table[["drag", "structural_mass", "fuel_volume", "stall_margin"]].to_numpy())
    bad = x.clone()
    bad[1, 0] = float("nan")
    bad[2, 8] = 0.5  # root thickness far outside its bounds
    ev = wb.Evaluator(wing)(bad)
    assert ev.ok.tolist() == [True, False, False, True]
    assert "span" in ev.errors[1] and "nan" in ev.errors[1]
    assert "root_thickness" in ev.errors[2]
    assert np.allclose(ev.objectives[0].numpy(),
                       table.loc[0, ["drag", "structural_mass", "fuel_volume"]].to_numpy(float))
    rows = wing.analyze(bad)
    assert rows["error"].notna().tolist() == [False, True, True, False] and np.isnan(rows.loc[1, "drag"])


def test_minimum_gauge_skin_of_a_light_wing(naca2412):
    light = Wing(condition=FlightCondition(mass=20.0, speed=30.0, stall_speed=20.0))
    x = torch.tensor([[10.0, 1.5, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.12, 0.12, 1.0, 1.0]], dtype=torch.float64)
    row = light.analyze(x).iloc[0]
    assert row["error"] is None
    assert row["structural_mass"] == pytest.approx(light.material.density * light.material.min_gauge
                                                   * row["wetted_area"], rel=1e-9)


def test_tiny_study_end_to_end(tmp_path):
    dom = Wing(n_span=6, n_points=21)
    study = wb.Study(dom, NSGA2(pop_size=6), storage=f"sqlite:///{tmp_path / 'w.db'}", name="w", seed=0)
    study.run(12, progress=False)
    res = study.results()
    assert len(res) == 12 and (res["status"] == "ok").sum() >= 10
    front = study.pareto_front()
    assert len(front) >= 1
    paths = dom.export(front[dom.space.names].to_numpy(), tmp_path / "meshes")
    assert len(paths) == 2 * len(front)
    for p in paths:
        assert load_mesh(p).is_watertight
    axes = dom.render(front[dom.space.names].to_numpy()[:2])
    assert len(axes) == min(2, len(front))
