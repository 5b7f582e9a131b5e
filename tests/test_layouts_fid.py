"""Layout FID (encoder checkpoint, Frechet distance) and layout drawings."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.linalg  # noqa: E402
import torch  # noqa: E402

from domains.layouts import fid as F  # noqa: E402
from domains.layouts.data import CLASSES, MAX_ELEMENTS, load_split  # noqa: E402
from domains.layouts.render import CLASS_COLORS, draw_comparison, draw_grid, draw_layout  # noqa: E402
from domains.layouts.train_fid import KINDS, jitter_layouts, perturb_batch  # noqa: E402


@pytest.fixture(scope="module")
def test_split() -> tuple[torch.Tensor, torch.Tensor]:
    torch.set_num_threads(1)
    return load_split("test")


def test_encoder_checkpoint_is_small_and_deterministic(test_split):
    assert F.CHECKPOINT.exists() and F.CHECKPOINT.stat().st_size < 2_000_000
    enc = F.load_encoder()
    assert enc is F.load_encoder()  # cached
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    c, b = test_split[0][:64], test_split[1][:64]
    a = F.layout_features(c, b)
    assert a.shape == (64, enc.dim) and a.dtype == torch.float32
    assert torch.equal(a, F.layout_features(c, b))
    assert torch.allclose(a, F.layout_features(c, b, batch_size=7), atol=1e-5)
    # a set of elements: the slot order does not matter
    perm = torch.randperm(MAX_ELEMENTS, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(a, F.layout_features(c[:, perm], b[:, perm]), atol=1e-4)
    # absent slots' boxes are ignored
    noisy = b + (c < 0).unsqueeze(-1) * 0.3
    assert torch.allclose(a, F.layout_features(c, noisy), atol=1e-5)


def test_missing_checkpoint_names_the_training_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m domains.layouts.train_fid"):
        F.load_encoder(path=tmp_path / "fid_encoder.pt")


def test_fid_of_a_set_with_itself_is_zero(test_split):
    c, b = test_split
    feats = F.layout_features(c, b)
    scale = float(feats.var(dim=0).sum())
    assert F.frechet_distance(feats, feats) < 1e-6 * scale
    assert F.fid(c, b, c, b) < 1e-6 * scale


def test_fid_grows_with_jitter(test_split):
    c, b = test_split
    gen = torch.Generator().manual_seed(0)
    half = len(c) // 2
    base = F.fid(c[:half], b[:half], c[half:], b[half:])
    values = [F.fid(*jitter_layouts(c, b, std, gen), c, b) for std in (0.02, 0.05, 0.1)]
    assert base < values[0] < values[1] < values[2], (base, values)


def test_frechet_distance_matches_the_closed_form():
    rng = np.random.default_rng(0)
    d = 4
    # exact statistics, non-commuting covariances: scipy's sqrtm as the reference
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
    ref = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * scipy.linalg.sqrtm(cov_a @ cov_b).real)
    assert F.frechet_from_stats(mu_a, cov_a, mu_b, cov_b) == pytest.approx(ref, rel=1e-8)
    # samples of two Gaussians with known means and diagonal covariances
    mu1, mu2, s1, s2 = np.zeros(d), np.array([1.0, -2.0, 0.5, 0.0]), np.ones(d), np.array([0.5, 2.0, 1.0, 1.5])
    x = mu1 + s1 * rng.normal(size=(200_000, d))
    y = mu2 + s2 * rng.normal(size=(200_000, d))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    assert F.frechet_distance(torch.from_numpy(x), y) == pytest.approx(closed, abs=0.03)
    with pytest.raises(ValueError, match="different widths"):
        F.frechet_distance(x[:10], y[:10, :3])


def test_perturbations_keep_layouts_valid(test_split):
    c, b = test_split[0][:40], test_split[1][:40]
    gen = torch.Generator().manual_seed(0)
    for kind in KINDS:
        pc, pb, kinds = perturb_batch(c, b, gen, kind)
        present = pc >= 0
        assert pc.shape == c.shape and pb.shape == b.shape and int(pc.max()) < len(CLASSES)
        assert bool((pb[present] >= 0).all()) and bool((pb[present][:, :2] + pb[present][:, 2:] <= 1 + 1e-6).all())
        assert bool((pb[~present] == 0).all())
        assert kinds.count(kind) >= len(c) // 2, (kind, kinds)


def _known_layout() -> tuple[torch.Tensor, torch.Tensor]:
    classes = torch.full((MAX_ELEMENTS,), -1)
    boxes = torch.zeros(MAX_ELEMENTS, 4)
    classes[:3] = torch.tensor([1, 0, 4])
    boxes[:3] = torch.tensor([[0.1, 0.05, 0.8, 0.05], [0.1, 0.15, 0.8, 0.5], [0.2, 0.7, 0.6, 0.2]])
    return classes, boxes


def test_render_draws_one_patch_per_element(tmp_path):
    import matplotlib.pyplot as plt

    classes, boxes = _known_layout()
    fig, ax = plt.subplots()
    draw_layout(classes, boxes, ax, title="known")
    gids = [p.get_gid() for p in ax.patches]
    assert gids.count("page") == 1
    assert sorted(g for g in gids if g != "page") == ["element:figure", "element:text", "element:title"]
    title = next(p for p in ax.patches if p.get_gid() == "element:title")
    assert title.get_xy() == pytest.approx((0.1, 0.05 * 1.414))
    assert matplotlib.colors.to_hex(title.get_edgecolor()) == CLASS_COLORS["title"].lower()
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # y points down
    assert ax.get_title() == "known" and not ax.get_xticks().size
    plt.close(fig)

    many_c, many_b = classes.repeat(5, 1), boxes.repeat(5, 1, 1)
    many_c[4, 1:] = -1
    fig = draw_grid(many_c, many_b, per_row=3, titles=list("abcde"))
    assert len(fig.axes) == 5
    assert [sum(p.get_gid() != "page" for p in a.patches) for a in fig.axes] == [3, 3, 3, 3, 1]
    plt.close(fig)

    path = draw_comparison({"real": (many_c, many_b), "two": (many_c[:2], many_b[:2])}, tmp_path / "cmp.png",
                           per_group=4)
    assert path.exists() and path.stat().st_size > 1000
