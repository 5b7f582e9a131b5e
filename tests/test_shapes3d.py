"""The 3-D shape prior: corpus, voxels, physics rewards, quality metrics, the shipped tiny prior under the shared
samplers, bad input, and the study end to end."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("trimesh")
pytest.importorskip("skimage")

import trimesh  # noqa: E402

import workbench as wb  # noqa: E402
from domains.shapes import voxels  # noqa: E402
from domains.shapes.corpus import FAMILIES, load_corpus, make_shape  # noqa: E402
from domains.shapes.loft import GeometryError  # noqa: E402
from domains.shapes.shape_domain import Shapes3D, draw_grids, shape_space  # noqa: E402
from domains.shapes.shape_metrics import (chamfer_matrix, coverage, mmd, one_nna, point_clouds,  # noqa: E402
                                          shape_metrics)
from domains.shapes.shape_prior import VoxelUNet, load_prior, read_prior, checkpoint_path  # noqa: E402
from domains.shapes.shape_rewards import Flow, grid_rewards, mesh_rewards, skin_friction, soft_quantities  # noqa: E402
from optimizers.guidance import DRAKES, SVDD, BestOfN, Pretrained  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FLOW = Flow()
Q = FLOW.dynamic_pressure


def grid_of(mesh: trimesh.Trimesh, resolution: int = 32) -> tuple[np.ndarray, dict]:
    unit, frame = voxels.normalize(mesh.vertices, resolution)
    return voxels.voxelize(unit, mesh.faces, resolution), frame


def as_batch(*grids: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(grids)).float().unsqueeze(1)


# ----------------------------------------------------------------------------------------------- corpus and voxels

@pytest.mark.parametrize("family", FAMILIES)
def test_corpus_shapes_are_watertight_and_regenerate_bit_for_bit(family):
    corpus = load_corpus()
    rows = corpus.meta.index[corpus.meta.family == family][:3]
    for row in rows:
        index = int(corpus.meta.loc[row, "index"])
        grid, meta, mesh = make_shape(family, index, seed=corpus.seed)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
        from domains.shapes.loft import check_mesh
        check_mesh(mesh, self_intersection=True)  # no two faces cross
        assert np.array_equal(grid, corpus.grids[row])  # the shipped grids are what the script makes
        assert meta["mesh_volume"] == pytest.approx(corpus.meta.loc[row, "mesh_volume"], rel=1e-9)
        verts, faces = voxels.surface(grid)
        assert voxels.edge_defects(faces) == (0, 0) and voxels.components(faces, len(verts)) == 1


def test_the_corpus_has_three_families_split_into_train_valid_test():
    corpus = load_corpus()
    assert corpus.grids.shape == (3000, 32, 32, 32) and corpus.grids.dtype == bool
    counts = corpus.meta.groupby(["family", "split"]).size()
    for family in FAMILIES:
        assert counts[family].to_dict() == {"test": 100, "train": 850, "valid": 50}
    margin = corpus.grids[:, [0, -1]].any() or corpus.grids[:, :, [0, -1]].any() or corpus.grids[..., [0, -1]].any()
    assert not margin  # every shape keeps an empty layer all round
    scale = corpus.meta.scale.to_numpy()
    assert np.all((scale > 1.0) & (scale < 60.0))  # metres per box side: cars of 4 m to fuselages of 40 m


def test_voxel_volume_matches_the_mesh_volume_within_the_voxel_error():
    corpus = load_corpus()
    meta = corpus.meta
    h = meta.scale / corpus.resolution  # voxel edge, metres
    error = (meta.voxels * h ** 3 - meta.mesh_volume).abs()
    assert (error <= 0.5 * meta.mesh_area * h).all()  # at most half a voxel layer over the whole surface
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    grid, frame = grid_of(sphere)
    assert grid.sum() * (frame["scale"] / 32) ** 3 == pytest.approx(sphere.volume, rel=0.01)


def test_voxels_pack_into_bits_and_back():
    grids = load_corpus().grids[:5]
    bits = voxels.pack(grids)
    assert bits.shape == (5, 32 ** 3 // 8)
    assert np.array_equal(voxels.unpack(bits, 32), grids)


# ----------------------------------------------------------------------------------------------- physics

def test_newtonian_drag_and_frontal_area_of_exact_meshes_match_the_analytic_values():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    out = mesh_rewards(sphere, FLOW)
    area = math.pi * 0.25
    assert out["frontal_area"] == pytest.approx(area, rel=0.005)
    assert out["pressure_drag"] / (Q * area) == pytest.approx(1.0, rel=0.005)  # Newtonian sphere: C_D = 1
    reynolds = FLOW.speed * 1.0 / FLOW.viscosity
    cf = 0.075 / (math.log10(reynolds) - 2.0) ** 2
    assert out["friction_drag"] == pytest.approx(Q * cf * 4 * math.pi * 0.25, rel=0.005)
    along = trimesh.creation.cylinder(radius=0.5, height=2.0, sections=128)
    along.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, [0, 1, 0]))  # axis along the flow
    assert mesh_rewards(along, FLOW)["pressure_drag"] / (Q * area) == pytest.approx(2.0, rel=0.005)  # flat face
    across = trimesh.creation.cylinder(radius=0.5, height=2.0, sections=128)  # axis along z: across the flow
    out = mesh_rewards(across, FLOW)
    assert out["frontal_area"] == pytest.approx(2.0, rel=0.005)
    assert out["pressure_drag"] / (Q * 2.0) == pytest.approx(4.0 / 3.0, rel=0.005)


def test_voxelized_sphere_and_cylinder_keep_their_frontal_area_and_drag():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    grid, frame = grid_of(sphere)
    box = frame["scale"]
    values, errors = grid_rewards(as_batch(grid), box=box)
    assert errors == [None]
    assert float(values["frontal_area"][0]) == pytest.approx(math.pi, rel=0.03)  # silhouette of the voxels
    assert float(values["pressure_drag"][0]) / (Q * math.pi) == pytest.approx(1.0, rel=0.06)
    assert float(values["watertight"][0]) == 1.0 and float(values["pieces"][0]) == 1.0
    across = trimesh.creation.cylinder(radius=1.0, height=3.0, sections=128)
    grid, frame = grid_of(across)
    values, _ = grid_rewards(as_batch(grid), box=frame["scale"])
    assert float(values["frontal_area"][0]) == pytest.approx(6.0, rel=0.03)
    assert float(values["pressure_drag"][0]) / (Q * 6.0) == pytest.approx(4.0 / 3.0, rel=0.06)


def test_drag_at_equal_volume_does_not_depend_on_the_size():
    small = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    large = trimesh.creation.icosphere(subdivisions=4, radius=3.0)
    a, b = mesh_rewards(small), mesh_rewards(large)
    assert a["drag"] < b["drag"] / 50
    assert a["drag_at_volume"] == pytest.approx(b["drag_at_volume"], rel=1e-9)
    unit = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    unit.apply_scale((1.0 / unit.volume) ** (1 / 3))  # 1 m^3
    assert mesh_rewards(unit)["drag"] == pytest.approx(a["drag_at_volume"], rel=1e-6)
    # grids: the same shape in two boxes has the same drag at equal volume
    grid = load_corpus().grids[2000]
    v1, _ = grid_rewards(as_batch(grid), box=1.0)
    v2, _ = grid_rewards(as_batch(grid), box=10.0)
    assert float(v1["drag_at_volume"][0]) == pytest.approx(float(v2["drag_at_volume"][0]), rel=1e-9)
    assert float(v2["volume"][0]) == pytest.approx(1000 * float(v1["volume"][0]), rel=1e-12)


def test_the_friction_line_is_ittc_1957():
    assert float(skin_friction(1e7)) == pytest.approx(0.075 / 25.0)
    with pytest.raises(ValueError, match="Reynolds"):
        skin_friction(50.0)
    with pytest.raises(ValueError, match="speed"):
        Flow(speed=-1.0)


def test_slender_bodies_have_less_drag_at_equal_volume_than_cars_or_wings():
    dom = Shapes3D(prior="tiny")
    drag = {f: float(dom.evaluate(dom.designs("test", f)[:6])["drag_at_volume"].median()) for f in FAMILIES}
    assert drag["fuselage"] < drag["car"] < drag["wing"]


def test_the_soft_proxy_ranks_shapes_like_the_mesh_and_has_gradients():
    x = torch.cat([load_corpus().tensor("test", f)[:8] for f in FAMILIES])
    hard, _ = grid_rewards(x)
    soft = soft_quantities(x)
    rank = lambda v: torch.argsort(torch.argsort(v)).double()  # noqa: E731
    corr = torch.corrcoef(torch.stack([rank(hard["drag_at_volume"]), rank(soft["drag_at_volume"].detach())]))[0, 1]
    assert corr > 0.8
    assert torch.allclose(soft["volume"], hard["volume"])  # hard grids: the summed occupancy is the voxel volume
    assert torch.allclose(soft["frontal_area"], hard["frontal_area"])
    x = x[:2].clone().requires_grad_(True)
    soft_quantities(x)["drag_at_volume"].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------- metrics

def test_metrics_of_identical_and_of_different_sets():
    corpus = load_corpus()
    cars, fuselages = corpus.tensor("test", "car")[:12], corpus.tensor("test", "fuselage")[:12]
    clouds = point_clouds(cars, 128)
    d = chamfer_matrix(clouds, clouds)
    assert d.diagonal().abs().max() < 1e-6 and torch.allclose(d, d.T, atol=1e-6)  # cdist's float32 rounding
    # identical sets: every shape's nearest neighbour is its twin in the other set, so 1-NNA is 0 (not 0.5)
    assert one_nna(d, d, d) == 0.0 and coverage(d) == 1.0 and mmd(d) < 1e-6
    same = shape_metrics(corpus.tensor("train", "car")[:12], cars, points=128)
    apart = shape_metrics(fuselages, cars, points=128)
    assert 0.25 <= same["nna"] <= 0.75 and apart["nna"] >= 0.9  # same distribution ~0.5, different ~1
    assert apart["mmd"] > 1.5 * same["mmd"] and apart["cov"] < same["cov"]


# ----------------------------------------------------------------------------------------------- prior

@pytest.fixture(scope="module")
def prior():
    return load_prior("tiny")


def test_the_tiny_prior_loads_with_weights_only_and_samples_each_family(prior, one_thread):
    assert isinstance(prior.denoiser, VoxelUNet) and prior.bins == 2
    assert read_prior(checkpoint_path("tiny")).config() == prior.config()
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3)
    x = prior.sample(3, 8, g, condition=labels)
    assert x.shape == (3, 1, 32, 32, 32) and not shape_space().invalid_rows(x)  # solid or empty voxels
    real = load_corpus().tensor("valid")[:6]
    noise = (torch.rand(6, 1, 32, 32, 32, generator=g) > 0.9).float()
    g = torch.Generator().manual_seed(0)
    assert prior.bits_per_dim(real, 2, g).mean() < prior.bits_per_dim(noise, 2, g).mean() - 0.1


def test_the_shipped_full_prior_samples_watertight_cars_it_rates_like_real_ones(one_thread):
    """The GPU-trained prior (float16 weights) on the CPU: a few cars, and its likelihood tells real from noise."""
    full = load_prior("full")
    assert full.meta and sum(p.numel() for p in full.denoiser.parameters()) > 5_000_000
    g = torch.Generator().manual_seed(0)
    cars = full.sample(2, 10, g, condition=torch.full((2,), FAMILIES.index("car")))
    result = Shapes3D(objectives=("drag_at_volume",), constraints=("watertight", "pieces", "voxels")).evaluate(cars)
    assert (result["watertight"] == 1).all() and (result["pieces"] == 1).all() and (result["voxels"] >= 150).all()
    assert ((result["drag_at_volume"] > 100) & (result["drag_at_volume"] < 400)).all()  # N; real cars: 170-400
    real = load_corpus().tensor("valid")[:2]
    noise = (torch.rand(2, 1, 32, 32, 32, generator=g) > 0.9).float()
    g = torch.Generator().manual_seed(0)
    assert full.bits_per_dim(real, 2, g).mean() < 1.5 < full.bits_per_dim(noise, 2, g).mean()


def test_shared_samplers_run_on_the_tiny_prior(tmp_path, one_thread):
    dom = Shapes3D(prior="tiny")
    storage = f"sqlite:///{tmp_path}/s.db"
    for name, opt in {"pre": Pretrained(steps=4, batch_size=2, weights=[0.01], condition=2),
                      "bon": BestOfN(n_samples=2, steps=4, batch_size=2, weights=[0.01], condition=2),
                      "svdd": SVDD(n_candidates=2, steps=4, batch_size=2, weights=[0.01], condition=2),
                      "drakes": DRAKES(iterations=1, train_batch=2, truncate=1, kl_samples=1, steps=4, batch_size=2,
                                       weights=[0.01], condition=2)}.items():
        study = wb.Study(dom, opt, storage=storage, name=name, device="cpu").run(2, progress=False)
        frame = study.results()
        assert len(frame) == 2 and set(frame.status) <= {"ok", "failed"}
        if name == "svdd":
            assert study.counters()["reward_sequences"] == 4 * 2 * 2


# ----------------------------------------------------------------------------------------------- bad input

def test_bad_grids_and_meshes_give_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        voxels.surface(np.full((8, 8, 8), np.nan))
    with pytest.raises(ValueError, match="empty"):
        voxels.surface(np.zeros((8, 8, 8)))
    with pytest.raises(ValueError, match=r"\[n, 1, D, D, D\]"):
        grid_rewards(torch.zeros(2, 32, 32, 32))
    with pytest.raises(ValueError, match="NaN"):
        voxels.normalize(np.array([[0.0, 0.0, 0.0], [np.nan, 1.0, 1.0]]))
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-1], process=False)
    with pytest.raises(GeometryError, match="not watertight"):
        mesh_rewards(open_box)
    crossing = trimesh.util.concatenate([trimesh.creation.box(), trimesh.creation.box().apply_translation([0.5, 0.3,
                                                                                                          0.2])])
    with pytest.raises(GeometryError, match="self-intersecting"):
        mesh_rewards(crossing)
    nan_box = trimesh.Trimesh(np.where(np.arange(8)[:, None] == 0, np.nan, box.vertices), box.faces, process=False)
    with pytest.raises(GeometryError, match="NaN"):
        mesh_rewards(nan_box)
    with pytest.raises(ValueError, match="unknown quantities"):
        Shapes3D(objectives=("lift",))
    with pytest.raises(ValueError, match="no default bound"):
        Shapes3D(constraints=("drag",))
    with pytest.raises(ValueError, match="family"):
        make_shape("boat", 0)


def test_empty_and_nan_designs_are_failed_rows_and_the_study_goes_on(tmp_path):
    dom = Shapes3D(prior="tiny")
    x = torch.cat([load_corpus().tensor("test", "car")[:2], torch.zeros(1, 1, 32, 32, 32),
                   torch.full((1, 1, 32, 32, 32), float("nan"))])
    evaluation = wb.Evaluator(dom, device="cpu")(x)
    assert evaluation.ok.tolist() == [True, True, False, False]
    assert "empty" in evaluation.errors[2] and "finite" in evaluation.errors[3]
    piece = torch.zeros(1, 1, 32, 32, 32)
    piece[..., 4:10, 4:10, 4:10] = 1.0
    piece[..., 20:26, 20:26, 20:26] = 1.0
    values = dom.evaluate(piece)
    assert float(values["pieces"][0]) == 2.0  # two bodies: infeasible, not failed


def test_render_draws_shapes_and_marks_empty_grids(tmp_path):
    x = torch.cat([load_corpus().tensor("test", "car")[:1], torch.zeros(1, 1, 32, 32, 32)])
    ax = draw_grids(x, ncols=2, titles=["car", "nothing"])
    image = ax.get_images()[0].get_array()
    left, right = image[:, : image.shape[1] // 2], image[:, image.shape[1] // 2:]
    assert (left < 0.9).any() and (right > 0.99).all()  # a shaded car, a blank cell
    assert "nothing (empty)" in [t.get_text() for t in ax.texts]
    with pytest.raises(ValueError, match="titles"):
        draw_grids(x, titles=["one"])


# ----------------------------------------------------------------------------------------------- study

def test_the_study_runs_end_to_end_in_a_tiny_setting(tmp_path):
    cmd = [sys.executable, str(ROOT / "studies" / "shapes3d.py"), "--scale", "cpu", "--seeds", "1", "--n", "3",
           "--methods", "pretrained,svdd_pm", "--out", str(tmp_path), "--threads", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "cpu" / "car"
    for name in ("table.md", "studies.csv", "designs.csv", "grid.png", "reward_vs_likelihood.png", "speed.json"):
        assert (folder / name).exists()
    table = (folder / "table.md").read_text()
    assert "svdd_pm" in table and "corpus" in table and "1-NNA" in table
