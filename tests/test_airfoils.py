"""Airfoils: the Kulfan section representation, the fitted UIUC database, NeuralFoil in torch, the Airfoil
domain's objectives and constraints, the shipped prior, and the study end to end at its tiniest setting."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

asb = pytest.importorskip("aerosandbox", reason="the airfoil tests need the 'shapes' extra")
nf = pytest.importorskip("neuralfoil", reason="the airfoil tests need the 'shapes' extra")

import workbench as wb  # noqa: E402
from domains.shapes import sections as S  # noqa: E402
from domains.shapes.airfoil_data import CLASSICS, database_dir, fit_file, load_database, read_dat  # noqa: E402
from domains.shapes.airfoil_prior import BOX, load_prior, near_threshold, standardizer  # noqa: E402
from domains.shapes.airfoils import Airfoil, airfoil_like  # noqa: E402
from domains.shapes.neuralfoil_torch import at_lift, neuralfoil  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest's


@pytest.fixture(scope="module")
def classics() -> np.ndarray:
    """Fitted sections [3, 18] of NACA 2412, Clark Y and E387 from the shipped database."""
    db = load_database()
    return np.stack([db.vector(name) for name in CLASSICS])


# ------------------------------------------------------------------------------------------ representation
def test_section_layout_and_kulfan_dict_round_trip(classics):
    assert S.SECTION_SIZE == 18 and len(S.NAMES) == 18
    d = S.to_kulfan_dict(classics)
    assert d["upper_weights"].shape == (8, 3) and d["TE_thickness"].shape == (3,)
    np.testing.assert_array_equal(S.from_kulfan_dict(d), classics)
    one = S.to_kulfan_dict(classics[0])
    assert one["upper_weights"].shape == (8,)
    np.testing.assert_array_equal(one["lower_weights"], classics[0, 8:16])


def test_coordinates_match_aerosandbox_and_kulfan_airfoil_is_exact(classics):
    from aerosandbox.geometry.airfoil.airfoil_families import get_kulfan_coordinates

    x, up, lo = S.coordinates(classics, 81)
    assert x.shape == (81,) and up.shape == (3, 81) and lo.shape == (3, 81)
    for i, v in enumerate(classics):
        ref = get_kulfan_coordinates(**S.to_kulfan_dict(v), n_points_per_side=81)
        np.testing.assert_allclose(ref[:81, 1][::-1], up[i], atol=1e-12)
        np.testing.assert_allclose(ref[80:, 1], lo[i], atol=1e-12)
        np.testing.assert_allclose(S.from_airfoil(S.to_airfoil(v)), v)  # KulfanAirfoil is read exactly
    outline = S.contour(classics, 81)
    assert outline.shape == (3, 161, 2) and outline[0, 80, 0] == 0.0


def test_fit_error_on_real_database_airfoils():
    folder = database_dir()
    for name in ("naca2412", "clarky", "e387", "s1223", "dae11"):
        v, err_max, err_rms = fit_file(folder / f"{name}.dat")
        assert err_max < 2e-3 and err_rms < 5e-4, name
        # refitting the section's own coordinates returns it
        coords = S.to_airfoil(v).to_airfoil(n_coordinates_per_side=200).coordinates
        np.testing.assert_allclose(S.from_coordinates(coords), v, atol=2e-3)
    db = load_database()
    assert len(db) > 2100 and db.vectors.shape == (len(db), 18)
    assert np.median(db.fit_max) < 1e-3 and np.quantile(db.fit_max, 0.99) < 1e-2
    assert db.clean().sum() > 2000


def test_geometry_matches_aerosandbox(classics):
    t, xt = S.thickness(classics)
    for i, name in enumerate(CLASSICS):
        af = asb.Airfoil(name)
        assert abs(t[i] - af.max_thickness()) < 2e-3
        assert abs(S.area(classics[i]) - af.area()) < 1e-3
    assert abs(t[0] - 0.12) < 2e-3 and 0.25 < xt[0] < 0.35  # NACA 2412: 12% thick near 30% chord
    c, xc = S.camber(classics)
    assert abs(c[0] - 0.02) < 2e-3 and 0.35 < xc[0] < 0.45  # 2% camber at 40% chord
    x = np.linspace(0.15, 0.5, 20_001)
    up, lo = S.surfaces_at(classics, x)
    np.testing.assert_allclose(S.area(classics, 0.15, 0.5), np.trapezoid(up - lo, x, axis=-1), rtol=1e-6)


def test_crossing_check(classics):
    assert not S.crosses(classics).any()
    swapped = classics.copy()
    swapped[:, :8], swapped[:, 8:16] = classics[:, 8:16], classics[:, :8]  # upper below lower
    assert S.crosses(swapped).all() and (S.crossing(swapped) > 0.05).all() and (S.area(swapped) < 0).all()
    pinched = classics[0].copy()
    pinched[4:7] = -0.6  # upper surface dives through the lower one aft
    assert S.crosses(pinched)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="18 Kulfan values"):
        S.check(np.zeros(17))
    with pytest.raises(ValueError, match="non-finite value.*lower_2"):
        S.thickness(np.where(np.arange(18) == 10, np.nan, 0.1))
    coords = asb.Airfoil("naca2412").coordinates
    with pytest.raises(ValueError, match="too few"):
        S.from_coordinates(coords[np.linspace(0, len(coords) - 1, 12).astype(int)])
    bad = coords.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        S.from_coordinates(bad)
    with pytest.raises(ValueError, match="zero chord"):
        S.from_coordinates(np.zeros((30, 2)))
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        S.from_coordinates(np.zeros((30, 3)))


def test_read_dat_lednicer_and_empty(tmp_path):
    up = np.array([[0, 0], [0.3, 0.06], [1.0, 0.0]])
    lo = np.array([[0, 0], [0.3, -0.04], [1.0, 0.0]])
    text = "demo\n3. 3.\n\n" + "\n".join(f"{a} {b}" for a, b in up) + "\n\n" + "\n".join(f"{a} {b}" for a, b in lo)
    (tmp_path / "led.dat").write_text(text)
    xy = read_dat(tmp_path / "led.dat")
    np.testing.assert_allclose(xy, [[1.0, 0.0], [0.3, 0.06], [0, 0], [0.3, -0.04], [1.0, 0.0]])
    (tmp_path / "empty.dat").write_text("no numbers here\n")
    with pytest.raises(ValueError, match="no coordinate"):
        read_dat(tmp_path / "empty.dat")


# ------------------------------------------------------------------------------------------------- physics
def test_torch_neuralfoil_matches_the_package(classics):
    v = np.concatenate([classics, load_database().vector("naca0012")[None]])
    alpha = np.array([2.0, 4.0, -1.0, 3.0])
    for size in ("xsmall", "xxxlarge"):
        ref = nf.get_aero_from_kulfan_parameters(S.to_kulfan_dict(v), alpha=alpha, Re=5e5, model_size=size)
        got = neuralfoil(size)(torch.from_numpy(v), torch.from_numpy(alpha), 5e5)
        for key, mine in (("CL", "CL"), ("CD", "CD"), ("CM", "CM"), ("analysis_confidence", "confidence")):
            np.testing.assert_allclose(got[mine].numpy(), ref[key], rtol=1e-9, atol=1e-12)


def test_neuralfoil_sanity(classics):
    model = neuralfoil("xxxlarge")
    out = model(torch.from_numpy(classics[:1]), torch.tensor([4.0]), 1e6)
    assert 0.6 < float(out["CL"]) < 0.8  # NACA 2412 at 4 degrees (XFoil: about 0.68)
    assert 0.005 < float(out["CD"]) < 0.01
    assert -0.07 < float(out["CM"]) < -0.03
    sym = torch.from_numpy(load_database().vector("naca0012")[None])
    out0 = model(sym, torch.tensor([0.0]), 1e6)
    assert abs(float(out0["CL"])) < 1e-9 and abs(float(out0["CM"])) < 1e-9  # symmetric airfoil at alpha 0


def test_trim_to_lift_is_vectorized_and_differentiable(classics):
    model = neuralfoil("xsmall")
    v = torch.from_numpy(classics).requires_grad_(True)
    out = at_lift(model, v, 0.6, 5e5)
    np.testing.assert_allclose(out["CL"].detach().numpy(), 0.6, atol=1e-6)
    out["LD"].sum().backward()
    eps = 1e-6
    bumped = classics.copy()
    bumped[:, 2] += eps
    fd = (at_lift(model, torch.from_numpy(bumped), 0.6, 5e5)["LD"] - out["LD"].detach()) / eps
    np.testing.assert_allclose(v.grad[:, 2].numpy(), fd.numpy(), rtol=1e-3, atol=1e-2)


# ------------------------------------------------------------------------------------------------- domain
def test_domain_scores_classics_and_constraints(classics):
    dom = Airfoil(min_thickness=0.10)
    assert [o.name for o in dom.objectives] == ["ld", "thickness"]
    assert {c.name for c in dom.constraints} == {"crossing", "min_thickness", "spar_area", "confidence", "lift_error",
                                                "cm_limit"}
    thin = classics[0] * np.r_[np.full(16, 0.5), 1.0, 1.0]  # NACA 2412 at half its thickness
    swapped = np.concatenate([classics[0, 8:16], classics[0, :8], classics[0, 16:]])
    tab = dom.table(np.stack([*classics, thin, swapped]))
    assert tab.feasible.tolist() == [True, True, False, False, False]  # E387 (9%) is below 10%, then thin, crossed
    assert 60 < tab.ld[0] < 100 and (tab.lift_error[:3] < 1e-6).all()
    assert tab.thickness[3] == pytest.approx(0.5 * tab.thickness[0], rel=0.02)
    assert tab.crossing[4] > 0
    ev = wb.evaluation.Evaluator(dom)(dom.encode(classics))
    assert ev.ok.all() and torch.allclose(ev.objectives[:, 0], torch.tensor(tab.ld[:3].to_numpy()), rtol=1e-6)


def test_encodings_agree_and_bad_rows_fail_without_crashing(classics):
    params, std = Airfoil(), Airfoil(encoding="standardized")
    a = wb.evaluation.Evaluator(params)(params.encode(classics))
    b = wb.evaluation.Evaluator(std)(std.encode(classics))
    torch.testing.assert_close(a.objectives, b.objectives, rtol=1e-5, atol=1e-5)
    x = params.encode(classics)
    x[1, 3] = float("nan")
    ev = wb.evaluation.Evaluator(params)(x)
    assert ev.ok.tolist() == [True, False, True] and "invalid design" in ev.errors[1]
    with pytest.raises(ValueError, match="unknown objectives"):
        Airfoil(objectives=("lift",))
    with pytest.raises(ValueError, match="Reynolds"):
        Airfoil(Re=float("nan"))


def test_evaluate_soft_has_gradients_and_matches_evaluate(classics):
    dom = Airfoil(encoding="standardized")
    z = dom.encode(classics).requires_grad_(True)
    soft = dom.evaluate_soft(z)
    hard = dom.evaluate(z.detach())
    torch.testing.assert_close(soft["ld"].detach(), hard["ld"])
    (soft["ld"].sum() + soft["thickness"].sum()).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_low_confidence_is_flagged_and_constrained():
    dom = Airfoil(min_confidence=0.9)
    wild = dom.space.sample(64, torch.Generator().manual_seed(0))  # uniform in the box: mostly not airfoils
    tab = dom.table(dom.sections(wild).numpy())
    assert (tab.confidence < 0.9).mean() > 0.5 and not tab.feasible[tab.confidence < 0.9].any()
    loose = Airfoil(min_confidence=0.0).table(dom.sections(wild).numpy())
    np.testing.assert_allclose(loose.confidence, tab.confidence)  # still stored: flagged, not constrained


def test_database_distance_separates_airfoils_from_wild_sections(classics):
    threshold = near_threshold()
    assert 2.0 < threshold < 8.0
    near = Airfoil(near_database=threshold)
    assert "database_distance" in {c.name for c in near.constraints}
    wild = near.sections(near.space.sample(64, torch.Generator().manual_seed(1))).numpy()
    tab = near.table(np.concatenate([classics, wild]))
    assert (tab.database_distance[:3] < 1.0).all() and (tab.database_distance[3:] > threshold).mean() > 0.9
    assert not tab.feasible[3:][tab.database_distance[3:] > threshold].any()
    like = airfoil_like(np.concatenate([classics, wild]), model="xsmall")
    assert like.airfoil_like[:3].all() and like.airfoil_like[3:].mean() < 0.1


# -------------------------------------------------------------------------------------------------- prior
def test_prior_loads_and_samples_airfoils():
    prior = load_prior()
    assert prior.meta["standardizer"]["mean"] == pytest.approx(list(standardizer().mean))
    z = prior.sample(128, steps=25, generator=torch.Generator().manual_seed(0))
    assert z.shape == (128, 18) and bool((z.abs() <= BOX).all())
    v = standardizer().to_sections(z).numpy()
    like = airfoil_like(v, model="xsmall")
    assert like.no_crossing.mean() > 0.95 and like.thickness_ok.mean() > 0.95 and like.airfoil_like.mean() > 0.8
    assert isinstance(Airfoil(encoding="standardized").prior(), type(prior)) and Airfoil().prior() is None


# -------------------------------------------------------------------------------------------------- study
def test_study_end_to_end_tiny(tmp_path):
    proc = subprocess.run([sys.executable, "studies/airfoils.py", "--scale", "tiny", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "tiny"
    for name in ("front.png", "outlines.png", "heldout.png", "table.md", "classics.md", "designs.csv"):
        assert (out / name).exists(), name
    rows = pd.read_csv(out / "studies.csv")
    assert set(rows.method) == {"nsga2", "nsga2_near", "nsga2_small", "qlognehvi", "pretrained", "best_of_n", "svdd",
                                "svdd_small", "drakes"}
    small = rows[rows.method == "svdd_small"].iloc[0]
    assert small.evaluations == 1 * (2 * 3 + 1)  # SVDD at the Bayesian-optimization budget: n (M T + 1)
    designs = pd.read_csv(out / "designs.csv")
    assert designs.ld.notna().all() and designs.airfoil_like.dtype == bool
    sampled = designs[designs.method.isin(["pretrained", "best_of_n", "svdd"])]
    assert sampled.airfoil_like.mean() > 0.5
