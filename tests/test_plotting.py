import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import workbench  # noqa: E402
from workbench.plotting import plot_hypervolume, plot_pairwise, plot_parallel, plot_pareto, save  # noqa: E402
from workbench.results import StudyResults  # noqa: E402
from workbench.storage import BatchRows, open_storage  # noqa: E402


# ----------------------------------------------------------------------------- fixtures
def _store(storage, name, domain, batches=3, batch_size=40, seed=0):
    spec = {"domain": domain.describe(), "optimizer": {"name": name, "class": "x", "params": {}}, "seed": seed,
            "settings": {}}
    record, _ = storage.get_or_create_study(name, spec)
    ev_engine = workbench.Evaluator(domain, "cpu")
    gen = torch.Generator().manual_seed(seed)
    start = 0
    for batch in range(batches):
        x = domain.space.sample(batch_size, generator=gen)
        ev = ev_engine(x)
        rows = BatchRows(x=domain.space.encode_rows(x), f=ev.objectives.numpy(), g=ev.constraints.numpy(),
                         ok=ev.ok.numpy(), errors=ev.errors, seconds=ev.seconds.numpy())
        storage.append_batch(record.id, batch, start, rows, snapshot=b"", counters={})
        start += batch_size
    return StudyResults(storage, storage.get_study(name))


def _two_obj(x):
    x = x.to(torch.float64)
    g = 1.0 + x[:, 1] + x[:, 2]
    f1 = x[:, 0]
    f2 = 2.0 - g * (1.0 - torch.sqrt(x[:, 0] / g))  # maximized
    f1 = torch.where(x[:, 2] > 0.9, torch.nan, f1)  # a few failed rows
    return {"f1": f1, "f2": f2, "c": x[:, 1] + x[:, 2]}


def _many_obj(x):
    x = x.to(torch.float64)
    return {"a": x[:, 0], "b": x[:, 1], "c": (1 - x[:, 0]) ** 2 + (1 - x[:, 1]) ** 2 + x[:, 2],
            "d": x[:, 0] + x[:, 1] - x[:, 2]}


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    storage = open_storage(tmp_path_factory.mktemp("db") / "runs.db")
    box = workbench.MixedSpace.box(3)
    d2 = workbench.Domain.from_function(box, _two_obj, objectives=[("f1", "minimize"), ("f2", "maximize")],
                                        constraints=[("c", 1.2, "<=")], name="two")
    d3 = workbench.Domain.from_function(box, lambda x: {k: v for k, v in _many_obj(x).items() if k != "d"},
                                        objectives=["a", "b", "c"], name="three")
    d4 = workbench.Domain.from_function(box, _many_obj, objectives=["a", "b", "c", ("d", "maximize")], name="four")
    mixed = workbench.MixedSpace([workbench.Real("w", 0.0, 2.0), workbench.Categorical("mat", ("steel", "al", "ti")),
                                  workbench.Binary("coat"), workbench.Integer("n", 1, 5)])
    dm = workbench.Domain.from_function(
        mixed, lambda x: {"cost": x[:, 0] + x[:, 1] * 0.3 + x[:, 2], "mass": 2.0 - x[:, 0] + 0.1 * x[:, 3]},
        objectives=["cost", "mass"], name="mixed")
    out = {"two": _store(storage, "two", d2), "two_b": _store(storage, "two_b", d2, seed=1),
           "three": _store(storage, "three", d3), "four": _store(storage, "four", d4),
           "mixed": _store(storage, "mixed", dm, batches=1)}
    yield out
    storage.close()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _by_gid(ax, gid):
    return [c for c in ax.collections if c.get_gid() == gid]


def _count(ax, gid):
    return sum(len(c.get_offsets()) for c in _by_gid(ax, gid))


def _png_ok(path):
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- plot_pareto
def test_fixture_has_failed_infeasible_and_maximized_rows(studies):
    res = studies["two"]
    frame = res.frame()
    assert (frame["status"] == "failed").sum() > 0
    assert ((frame["status"] == "ok") & ~frame["feasible"]).sum() > 0
    assert res.objectives[1].direction == "maximize"


def test_pareto_2d_highlights_exactly_the_front(studies, tmp_path):
    res = studies["two"]
    ax = plot_pareto(res, front=torch.stack([torch.linspace(0, 1, 50), 1 + torch.linspace(0, 1, 50).sqrt()], 1))
    front = res.pareto_front()
    assert _count(ax, "pareto") == len(front) > 0
    offsets = np.concatenate([c.get_offsets() for c in _by_gid(ax, "pareto")])
    np.testing.assert_allclose(np.sort(offsets[:, 0]), np.sort(front["f1"].to_numpy()))
    frame = res.frame()
    ok = frame["status"] == "ok"
    assert _count(ax, "infeasible") == int((ok & ~frame["feasible"]).sum())
    # failed rows skipped: every drawn point is an ok row
    assert _count(ax, "pareto") + _count(ax, "dominated") + _count(ax, "infeasible") == int(ok.sum())
    assert ax.get_xlabel() == "f1 (min)" and ax.get_ylabel() == "f2 (max)"
    assert [ln for ln in ax.lines if ln.get_gid() == "front"][0].get_label() == "true front"
    assert [ln for ln in ax.lines if ln.get_gid() == "pareto-line"]
    # dominated points drawn grey and smaller than the front
    dom = _by_gid(ax, "dominated")[0]
    par = _by_gid(ax, "pareto")[0]
    rgb = dom.get_facecolor()[0][:3]
    assert np.allclose(rgb, rgb[0]) and dom.get_sizes()[0] < par.get_sizes()[0]
    assert {"dominated", "infeasible", "true front"} <= set(ax.get_legend_handles_labels()[1])
    _png_ok(save(ax, tmp_path / "sub" / "pareto2d.png"))


def test_pareto_hide_dominated_and_given_axes(studies):
    fig, ax = plt.subplots()
    out = plot_pareto(studies["two"], ax=ax, show_dominated=False, title="mine")
    assert out is ax and ax.get_title() == "mine"
    assert _count(ax, "dominated") == 0 and _count(ax, "infeasible") == 0
    assert _count(ax, "pareto") == len(studies["two"].pareto_front())


def test_pareto_accepts_study_like_and_lists(studies, tmp_path):
    class FakeStudy:
        def __init__(self, res):
            self.res = res

        def _results(self):
            return self.res

    ax = plot_pareto([FakeStudy(studies["two"]), studies["two_b"]])
    cols = _by_gid(ax, "pareto")
    assert len(cols) == 2
    assert not np.allclose(cols[0].get_facecolor()[0], cols[1].get_facecolor()[0])
    assert [len(c.get_offsets()) for c in cols] == [len(studies["two"].pareto_front()),
                                                   len(studies["two_b"].pareto_front())]
    labels = ax.get_legend_handles_labels()[1]
    assert any(lab.startswith("two ") for lab in labels) and any(lab.startswith("two_b ") for lab in labels)
    _png_ok(save(ax.figure, tmp_path / "compare.png"))


def test_pareto_3d(studies, tmp_path):
    res = studies["three"]
    ax = plot_pareto(res, front=np.random.default_rng(0).random((30, 3)))
    assert ax.name == "3d"
    assert _count(ax, "pareto") == len(res.pareto_front()) > 0
    assert ax.get_zlabel() == "c (min)"
    assert _count(ax, "front") == 30
    _png_ok(save(ax, tmp_path / "pareto3d.png"))
    with pytest.raises(ValueError, match="3D axes"):
        plot_pareto(res, ax=plt.subplots()[1])


def test_pareto_objective_subset_and_errors(studies):
    res = studies["four"]
    with pytest.raises(ValueError, match="plot_pairwise") as err:
        plot_pareto(res)
    assert "4 objectives" in str(err.value) and "objectives=" in str(err.value)
    ax = plot_pareto(res, objectives=["a", "d"])
    assert ax.name != "3d" and ax.get_ylabel() == "d (max)"
    # highlighted points are non-dominated in the objectives drawn (a min, d max)
    pts = np.concatenate([c.get_offsets() for c in _by_gid(ax, "pareto")])
    for p in pts:
        assert not np.any((pts[:, 0] <= p[0]) & (pts[:, 1] >= p[1]) & ((pts[:, 0] < p[0]) | (pts[:, 1] > p[1])))
    with pytest.raises(ValueError, match="no objective 'zz'"):
        plot_pareto(res, objectives=["a", "zz"])
    with pytest.raises(TypeError):
        plot_pareto(object())


# ----------------------------------------------------------------------------- plot_pairwise
def test_pairwise_grid(studies, tmp_path):
    res = studies["four"]
    fig = plot_pairwise(res)
    assert isinstance(fig, matplotlib.figure.Figure)
    grid = [a for a in fig.axes if a.get_gid() != "histogram"]
    hists = [a for a in fig.axes if a.get_gid() == "histogram"]
    assert len(grid) == 16 and len(hists) == 4
    assert all(len(h.patches) > 0 for h in hists)
    n_front = len(res.pareto_front())
    off_diag = [a for a in grid if _by_gid(a, "pareto")]
    assert len(off_diag) == 12 and all(_count(a, "pareto") == n_front for a in off_diag)
    _png_ok(save(fig, tmp_path / "pairwise.png"))
    fig2 = plot_pairwise(studies["two"], fig=plt.figure())
    assert len([a for a in fig2.axes if a.get_gid() != "histogram"]) == 4


# ----------------------------------------------------------------------------- plot_parallel
def _segments(ax, gid):
    return sum(len(c.get_segments()) for c in _by_gid(ax, gid))


def test_parallel_objectives(studies, tmp_path):
    res = studies["two"]
    ax = plot_parallel(res)
    assert _segments(ax, "highlight") == len(res.pareto_front())
    assert _segments(ax, "highlight") + _segments(ax, "other") == int((res.frame()["status"] == "ok").sum())
    segs = np.concatenate([np.asarray(s) for c in ax.collections for s in c.get_segments()])
    assert segs[:, 1].min() >= 0.0 and segs[:, 1].max() <= 1.0
    assert np.isclose(segs[:, 1].min(), 0.0) and np.isclose(segs[:, 1].max(), 1.0)
    texts = [t.get_text() for t in ax.texts]
    assert f"{res.frame()['f1'].min():.4g}" in texts and f"{res.frame()['f2'].max():.4g}" in texts
    _png_ok(save(ax, tmp_path / "parallel.png"))


def test_parallel_parameters_with_categories(studies, tmp_path):
    res = studies["mixed"]
    ax = plot_parallel(res, columns=["w", "mat", "coat", "n", "cost", "mass"], highlight="feasible")
    assert _segments(ax, "highlight") == int(res.feasible_mask().sum())
    texts = {t.get_text() for t in ax.texts}
    assert {"steel", "al", "ti", "False", "True"} <= texts
    ax2 = plot_parallel(res, columns=["w", "cost"], highlight=None)
    assert _segments(ax2, "highlight") == 0 and _segments(ax2, "other") == len(res)
    with pytest.raises(ValueError, match="no columns"):
        plot_parallel(res, columns=["nope"])
    _png_ok(save(ax, tmp_path / "parallel_mixed.png"))


# ----------------------------------------------------------------------------- plot_hypervolume
def _traces():
    rows = []
    a = {0: ([10, 20, 30], [1.0, 2.0, 3.0]), 1: ([10, 25, 30], [1.5, 2.5, 3.5]), 2: ([15, 30], [2.0, 4.0])}
    b = {0: ([10, 20, 30], [0.5, 1.0, 1.5]), 1: ([10, 20, 30], [0.7, 1.1, 1.9]), 2: ([10, 20, 30], [0.6, 0.9, 1.2])}
    for label, seeds in (("nsga2", a), ("random", b)):
        for seed, (ev, hv) in seeds.items():
            rows += [{"label": label, "seed": seed, "evaluations": e, "hypervolume": h} for e, h in zip(ev, hv)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # order must not matter


def test_hypervolume_mean_and_band(tmp_path):
    ax = plot_hypervolume(_traces())
    lines = {ln.get_gid(): ln for ln in ax.lines}
    a = lines["mean:nsga2"]
    x, y = np.asarray(a.get_xdata(), float), np.asarray(a.get_ydata(), float)
    # common range of label a is [15, 30] (seed 2 starts at 15); grid = every checkpoint in it
    np.testing.assert_array_equal(x, [15, 20, 25, 30])
    # at 20: seed0 = 2.0 (checkpoint 20), seed1 = 1.5 (held from 10), seed2 = 2.0 (held from 15)
    assert y[1] == pytest.approx((2.0 + 1.5 + 2.0) / 3)
    assert y[2] == pytest.approx((2.0 + 2.5 + 2.0) / 3)
    b = lines["mean:random"]
    np.testing.assert_allclose(b.get_ydata(), [0.6, 1.0, (1.5 + 1.9 + 1.2) / 3])
    assert [c.get_gid() for c in ax.collections] == ["band:nsga2", "band:random"]
    assert ax.get_xlabel() == "evaluations" and ax.get_ylabel() == "hypervolume"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["nsga2 (3 seeds)", "random (3 seeds)"]
    _png_ok(save(ax, tmp_path / "hv.png"))


def test_hypervolume_minmax_and_errors():
    ax = plot_hypervolume(_traces(), band="minmax")
    band = [c for c in ax.collections if c.get_gid() == "band:random"][0]
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert ys.min() == pytest.approx(0.5) and ys.max() == pytest.approx(1.9)
    with pytest.raises(ValueError, match="lacks columns"):
        plot_hypervolume(pd.DataFrame({"label": ["a"], "evaluations": [1]}))
    with pytest.raises(ValueError, match="band"):
        plot_hypervolume(_traces(), band="iqr")


def test_hypervolume_from_study_traces(studies):
    res = studies["two"]
    frames = []
    for label, r in (("two", res), ("two_b", studies["two_b"])):
        t = r.hypervolume_trace(ref=[1.0, 0.0])
        frames.append(t.assign(label="opt", seed=r.record.spec["seed"]))
    ax = plot_hypervolume(pd.concat(frames))
    y = ax.lines[0].get_ydata()
    assert np.all(np.diff(y) >= -1e-12) and y[-1] > 0
