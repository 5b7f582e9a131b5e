"""Counterfactuals (MCD): targets, distances, selection, the MCD optimizer and ``wb.counterfactuals``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import workbench as wb
from workbench.counterfactuals import CounterfactualDomain, GowerMetric, parse_targets
from workbench.counterfactuals import distances as distances_module
from workbench.counterfactuals.select import select_diverse
from workbench.registry import available_optimizers, optimizer_class

ROOT = Path(__file__).resolve().parents[1]
QUALITY_COLUMNS = ["gower", "changed", "changed_fraction", "manifold"]


# ------------------------------------------------------------------ problems
def toy_valid(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The 2-D toy of the MCD paper: valid inside a small circle or a rounded star-like shape."""
    x1, x2 = x[:, 0], x[:, 1]
    circle = ((x1 - 0.3) ** 2 + (x2 - 0.3) ** 2) <= 0.1 ** 2
    shape = (((x1 - x2) ** 6 - 1) ** 2 + ((x1 + x2) ** 6 - 1) ** 2) ** 2 < 0.99
    return {"valid": (circle | shape).to(torch.float64)}


def toy_domain(rows: int = 20_000) -> wb.Domain:
    space = wb.MixedSpace([wb.Real("x1", -1, 1), wb.Real("x2", -1, 1)])
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.uniform(-1, 1, (rows, 2)), columns=["x1", "x2"])
    return wb.Domain.from_function(space, toy_valid, objectives=["valid"], dataset=data, name="toy2d")


TOY_QUERY = {"x1": 0.0, "x2": 0.0}


@pytest.fixture(scope="module")
def toy() -> wb.Domain:
    return toy_domain()


def synthetic_props(x: torch.Tensor) -> dict[str, torch.Tensor]:
    w = torch.tensor([1.0, 0.5, 0.3, 0.8, 0.2, 0.6, 0.4, 0.1], dtype=x.dtype, device=x.device)
    density = torch.tensor([7.8, 2.7, 4.5], dtype=x.dtype, device=x.device)[x[:, 9].long()]
    mass = density * (x[:, :8] @ w) / 3 + 0.1 * x[:, 8]
    stiffness = torch.sin(3 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.2 * x[:, 8] + torch.cos(2 * x[:, 3]) - x[:, 4] ** 2
    return {"mass": mass, "stiffness": stiffness}


@pytest.fixture(scope="module")
def synthetic() -> wb.Domain:
    """10 mixed features (8 real, 1 integer, 1 categorical), 1,000 real designs, two smooth properties."""
    space = wb.MixedSpace([wb.Real(f"x{i}", 0, 1) for i in range(8)]
                          + [wb.Integer("k", 1, 10), wb.Categorical("material", ["steel", "aluminium", "titanium"])])
    data = space.to_frame(space.sample(1000, generator=torch.Generator().manual_seed(1)))
    return wb.Domain.from_function(space, synthetic_props, objectives=["mass", ("stiffness", "max")], dataset=data,
                                   name="synthetic10")


# ---------------------------------------------------------------- end to end
def test_toy_counterfactuals_are_valid_diverse_and_sorted(toy):
    df = wb.counterfactuals(toy, TOY_QUERY, {"valid": {1}}, n=10, seed=0)
    assert len(df) == 10
    assert list(df.columns) == ["x1", "x2", "valid", *QUALITY_COLUMNS, "valid_satisfied"]
    x = torch.tensor(df[["x1", "x2"]].to_numpy())
    assert bool((toy_valid(x)["valid"] == 1).all())  # valid on re-evaluation
    assert df["valid_satisfied"].all()
    # MCD finds sparse counterfactuals (one feature changed) and the nearest valid region
    assert (df["changed"] == 1).sum() >= 5
    assert df["gower"].min() < 0.25  # the shape's nearest point on an axis is 0.816 / 4 = 0.204 away
    keys = list(zip(df["changed"], df["gower"]))
    assert keys == sorted(keys)
    assert df.attrs["diversity"] > 0.1
    assert df.attrs["evaluations"] >= 100 * 100  # the search, plus the sparsifying pass
    np.testing.assert_allclose(df["changed_fraction"], df["changed"] / 2)


def test_range_target_and_toy_determinism_in_process(toy):
    a = wb.counterfactuals(toy, pd.Series(TOY_QUERY), {"valid": (0.5, None)}, n=5, generations=20, seed=3)
    b = wb.counterfactuals(toy, pd.DataFrame([TOY_QUERY]), {"valid": (0.5, None)}, n=5, generations=20, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs
    assert (a["valid"] == 1).all()


_SUBPROCESS_RUN = """
import hashlib, sys
sys.path.insert(0, {tests!r})
import workbench as wb
from test_counterfactuals import TOY_QUERY, toy_domain
df = wb.counterfactuals(toy_domain(), TOY_QUERY, {{"valid": {{1}}}}, n=5, generations=20, seed=7)
print(hashlib.sha256(df.to_csv(float_format="%.17g").encode()).hexdigest())
"""


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(float_format="%.17g").encode()).hexdigest()


def test_deterministic_across_processes(toy):
    here = _digest(wb.counterfactuals(toy, TOY_QUERY, {"valid": {1}}, n=5, generations=20, seed=7))
    code = _SUBPROCESS_RUN.format(tests=str(ROOT / "tests"))
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == here


def test_synthetic_ten_features_two_range_targets(synthetic):
    data = synthetic.dataset()
    query = data.iloc[3]
    targets = {"mass": (None, 2.0), "stiffness": (2.0, None)}
    df = wb.counterfactuals(synthetic, query, targets, n=8, generations=40, seed=0)
    assert len(df) == 8
    space = synthetic.space
    x = space.from_frame(df)
    props = synthetic_props(x)
    assert bool((props["mass"] <= 2.0).all()) and bool((props["stiffness"] >= 2.0).all())
    np.testing.assert_allclose(df["mass"], props["mass"].numpy())
    assert df["mass_satisfied"].all() and df["stiffness_satisfied"].all()
    # the quality columns agree with a direct computation
    q = space.from_frame(query)[0]
    metric = GowerMetric(space, space.from_frame(data))
    np.testing.assert_allclose(df["gower"], metric.to_query(x, q).numpy())
    ranges = metric.ranges
    numeric = torch.tensor([True] * 9 + [False])
    rel = (x - q).abs() / ranges
    changed = torch.where(numeric, rel > 0.01, rel > 0).sum(dim=1)
    assert df["changed"].tolist() == changed.tolist()
    assert df["changed"].max() < 10  # counterfactuals, not new designs


def test_frozen_features_keep_the_query_value(synthetic):
    query = synthetic.dataset().iloc[3]
    df = wb.counterfactuals(synthetic, query, {"mass": (None, 2.5)}, n=5, generations=15, seed=1,
                            freeze=["x0", "material"])
    assert len(df) > 0
    assert (df["x0"] == query["x0"]).all()
    assert (df["material"] == query["material"]).all()


def test_frozen_features_respected_by_a_plain_optimizer_through_the_constraint(toy):
    df = wb.counterfactuals(toy, TOY_QUERY, {"valid": {1}}, n=5, generations=15, seed=0, freeze="x2",
                            optimizer="nsga2")
    assert len(df) > 0 and (df["x2"].abs() <= 0.01 * 2).all()  # within the tolerance: 1% of the range
    assert (df["valid"] == 1).all()


def test_impossible_target_returns_an_empty_frame_with_a_message(toy):
    with pytest.warns(RuntimeWarning, match="never met: valid in"):
        df = wb.counterfactuals(toy, TOY_QUERY, {"valid": {2}}, n=5, generations=5, seed=0)
    assert df.empty
    assert list(df.columns) == ["x1", "x2", "valid", *QUALITY_COLUMNS, "valid_satisfied"]
    assert "valid in {2}" in df.attrs["message"] and "closest: 1 away" in df.attrs["message"]
    assert df.attrs["feasible"] == 0


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize("query, match", [
    ({"x1": 0.0}, r"missing columns for variables \['x2'\]"),
    ({"a": 0.0, "b": 0.0}, "missing columns"),
    ({"x1": 0.0, "x2": 5.0}, "not a valid design.*outside"),
    (pd.DataFrame([TOY_QUERY, TOY_QUERY]), "one design; the DataFrame has 2 rows"),
])
def test_bad_query(toy, query, match):
    with pytest.raises(ValueError, match=match):
        wb.counterfactuals(toy, query, {"valid": {1}})


@pytest.mark.parametrize("targets, error, match", [
    ({"mass": (0, 1)}, ValueError, r"unknown property 'mass'.*\['valid'\]"),
    ({"valid": (0.8, 0.2)}, ValueError, "infeasible range, lower bound 0.8 > upper bound 0.2"),
    ({"valid": set()}, ValueError, "set of allowed classes is empty"),
    ({"valid": (None, None)}, ValueError, "asks nothing"),
    ({"valid": (0, 1, 2)}, ValueError, "a range is"),
    ({"valid": "bigger"}, ValueError, "unknown spec 'bigger'"),
    ({"valid": 1}, TypeError, "bad spec 1"),
    ({"valid": ("a", None)}, TypeError, "lower bound must be a number"),
    ({"valid": "maximize"}, ValueError, "give at least one range or set"),
    ({}, ValueError, "targets is empty"),
])
def test_bad_targets(toy, targets, error, match):
    with pytest.raises(error, match=match):
        wb.counterfactuals(toy, TOY_QUERY, targets)


def test_bad_frozen_feature_and_missing_dataset(toy):
    with pytest.raises(ValueError, match=r"cannot freeze 'x3'.*\['x1', 'x2'\]"):
        wb.counterfactuals(toy, TOY_QUERY, {"valid": {1}}, freeze=["x3"])
    with pytest.raises(ValueError, match="every variable is frozen"):
        wb.counterfactuals(toy, TOY_QUERY, {"valid": {1}}, freeze=["x1", "x2"])
    bare = wb.Domain.from_function(toy.space, toy_valid, objectives=["valid"])
    with pytest.raises(ValueError, match="need real designs"):
        wb.counterfactuals(bare, TOY_QUERY, {"valid": {1}})


# ----------------------------------------------------------- MCD optimizer
def test_mcd_needs_a_counterfactual_problem(zdt1_domain, tmp_path):
    from optimizers import MCD

    study = wb.Study(zdt1_domain, MCD(pop_size=10), storage=f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(ValueError, match="MCD needs a counterfactual problem"):
        study.run(10, progress=False)


def _cf_domain(toy) -> CounterfactualDomain:
    space = toy.space
    targets = parse_targets({"valid": {1}}, ["valid"], [])
    return CounterfactualDomain(toy, space.from_frame(TOY_QUERY)[0], targets, space.from_frame(toy.dataset()))


def test_mcd_resumes_bit_identically(toy, tmp_path):
    from optimizers import MCD

    url = f"sqlite:///{tmp_path}/cf.db"
    whole = wb.Study(_cf_domain(toy), MCD(pop_size=20), storage=url, name="whole").run(200, progress=False)
    wb.Study(_cf_domain(toy), MCD(pop_size=20), storage=url, name="split").run(100, progress=False)
    split = wb.Study(_cf_domain(toy), MCD(pop_size=20), storage=url, name="split").run(200, progress=False)
    a, b = whole.results(), split.results()
    np.testing.assert_array_equal(a[["x1", "x2"]].to_numpy(), b[["x1", "x2"]].to_numpy())


def test_mcd_first_population_and_repair(toy):
    from optimizers import MCD

    cf = _cf_domain(toy)
    study = wb.Study(cf, MCD(pop_size=40), storage="sqlite:///:memory:", device="cpu")
    study.run(40, progress=False)
    first = wb.Study.load(study.storage, study.name).designs()
    assert bool((first[0] == 0).all())  # the query leads the first population
    data = cf.inner.space.from_frame(cf.inner.dataset())
    from_data = sum(bool((data == row).all(dim=1).any()) for row in first)
    assert from_data >= 10  # about half are real designs

    problem = wb.Problem(space=cf.space, objectives=cf.objectives, constraints=cf.constraints,
                         device=torch.device("cpu"), seed=0,
                         hints={"query": torch.tensor([0.5, -0.5]), "frozen": torch.tensor([False, True])})
    x = torch.rand(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    always = MCD(revert_prob=1.0, revert_gene_prob=1.0)
    always.setup(problem)
    assert bool((always.repair(x) == torch.tensor([0.5, -0.5], dtype=torch.float64)).all())
    default = MCD()
    default.setup(problem)
    repaired = default.repair(x)
    assert bool((repaired[:, 1] == -0.5).all())  # frozen: always the query's value
    reverted = float((repaired[:, 0] == 0.5).double().mean())
    assert 0.03 < reverted < 0.09  # revert_prob x revert_gene_prob = 0.06


def test_registry_resolves_entry_points():
    assert {"mcd", "nsga2", "random", "qlognehvi"} <= set(available_optimizers())
    from optimizers import MCD, NSGA2

    assert optimizer_class("mcd") is MCD and optimizer_class("nsga2") is NSGA2
    assert optimizer_class("optimizers.mcd:MCD") is MCD
    with pytest.raises(ValueError, match="unknown optimizer 'nope'; registered"):
        optimizer_class("nope")


# --------------------------------------------------------------- distances
def test_gower_and_sparsity_tolerance():
    space = wb.MixedSpace([wb.Real("a", 0, 1), wb.Integer("n", 0, 10), wb.Categorical("c", ["p", "q", "r"]),
                           wb.Binary("b")])
    metric = GowerMetric(space)
    q = torch.tensor([0.355, 5.0, 0.0, 0.0], dtype=torch.float64)
    x = torch.tensor([[0.354, 5.0, 0.0, 0.0], [0.855, 6.0, 2.0, 1.0], [0.355, 5.0, 1.0, 0.0]], dtype=torch.float64)
    np.testing.assert_allclose(metric.to_query(x, q), [0.001 / 4, (0.5 + 0.1 + 1 + 1) / 4, 0.25])
    assert metric.changed(x, q).tolist() == [0, 4, 1]  # 0.355 -> 0.354 is no change
    np.testing.assert_allclose(metric.pairwise(x, q.unsqueeze(0))[:, 0], metric.to_query(x, q))


def test_knn_manifold_distance_is_chunk_independent(monkeypatch):
    space = wb.MixedSpace([wb.Real("a", 0, 1), wb.Real("b", 0, 2), wb.Categorical("c", ["p", "q", "r"])])
    g = torch.Generator().manual_seed(0)
    data = space.sample(500, generator=g)
    x = space.sample(7, generator=g)
    metric = GowerMetric(space, data)
    brute = metric.pairwise(x, data).topk(3, dim=1, largest=False).values.mean(dim=1)
    embedded = metric.embed(data)
    full = metric.knn_mean(x, embedded, 3)
    monkeypatch.setitem(distances_module._CHUNK_ELEMENTS, "cpu", 7 * 13)  # chunks of 13 data rows
    chunked = metric.knn_mean(x, embedded, 3)
    torch.testing.assert_close(full, brute)
    torch.testing.assert_close(chunked, brute)
    # nearest rows, also in chunks
    near = metric.nearest(x[0], embedded, 4)
    assert near.tolist() == torch.sort(metric.pairwise(x[:1], data)[0], stable=True).indices[:4].tolist()


def test_selection_prefers_quality_then_diversity():
    space = wb.MixedSpace([wb.Real("a", 0, 1), wb.Real("b", 0, 1)])
    metric = GowerMetric(space)
    x = torch.tensor([[0.10, 0.0], [0.1001, 0.0], [0.0, 0.10], [0.9, 0.9]], dtype=torch.float64)
    cost = torch.tensor([0.0, 0.0, 0.1, 1.0], dtype=torch.float64)
    picks = select_diverse(x, cost, 3, metric, scale=0.05, diversity=0.5)
    assert picks.tolist()[:2] == [0, 2]  # the near-duplicate of the first pick comes last
    assert select_diverse(x, cost, 10, metric, scale=0.05).numel() == 4


# ------------------------------------------------------------------ memory
_MEMORY_RUN = """
import json, resource, sys
import numpy as np, pandas as pd
import workbench as wb
space = wb.MixedSpace([wb.Real(f"x{{i}}", 0, 1) for i in range(10)])
def props(x):
    return {{"a": x[:, :5].sum(1), "b": (x[:, 5:] ** 2).sum(1)}}
data = pd.DataFrame(np.random.default_rng(0).uniform(0, 1, ({rows}, 10)), columns=space.names)
dom = wb.Domain.from_function(space, props, objectives=["a", "b"], dataset=data)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
df = wb.counterfactuals(dom, data.iloc[0], {{"a": (3.0, None), "b": (None, 1.0)}}, n=5, pop_size=100,
                        generations=2, seed=0, device="cpu")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
print(json.dumps({{"increase_mb": (after - before) * scale / 2**20, "rows": len(df)}}))
"""


def test_million_row_dataset_peak_memory_under_1gb():
    out = subprocess.run([sys.executable, "-c", _MEMORY_RUN.format(rows=1_000_000)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["increase_mb"] < 1024, result
    assert result["rows"] > 0


# -------------------------------------------------------------------- GPU
@pytest.mark.gpu
def test_counterfactuals_on_cuda_match_the_targets_and_repeat(toy):
    a = wb.counterfactuals(toy, TOY_QUERY, {"valid": {1}}, n=10, generations=30, seed=0, device="cuda")
    b = wb.counterfactuals(toy, TOY_QUERY, {"valid": {1}}, n=10, generations=30, seed=0, device="cuda")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 10
    assert bool((toy_valid(torch.tensor(a[["x1", "x2"]].to_numpy()))["valid"] == 1).all())


@pytest.mark.gpu
def test_million_row_manifold_on_cuda_in_chunks():
    space = wb.MixedSpace([wb.Real(f"x{i}", 0, 1) for i in range(10)])
    g = torch.Generator().manual_seed(0)
    data = space.sample(1_000_000, generator=g)
    x = space.sample(100, generator=g)
    metric = GowerMetric(space, data, device="cuda")
    embedded = metric.embed_chunked(data.cuda())
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    knn = metric.knn_mean(x.cuda(), embedded, 3)
    assert torch.cuda.max_memory_allocated() - base < 2 ** 30
    cpu = GowerMetric(space, data).knn_mean(x, GowerMetric(space, data).embed_chunked(data), 3)
    torch.testing.assert_close(knn.cpu(), cpu)


def test_returned_counterfactuals_are_sparse(synthetic):
    """No returned design keeps a changed feature that could go back to the query alone."""
    query = synthetic.dataset().iloc[0]
    df = wb.counterfactuals(synthetic, query, {"mass": (None, 1.0), "stiffness": (1.0, None)}, n=5,
                            generations=30, seed=2, device="cpu")
    assert len(df) > 0
    space = synthetic.space
    x = space.from_frame(df)
    q = space.from_frame(query)[0]
    for row in x:
        for j in torch.nonzero(row != q).flatten().tolist():
            reverted = row.clone()
            reverted[j] = q[j]
            props = synthetic.evaluate(reverted.unsqueeze(0))
            assert not (float(props["mass"]) <= 1.0 and float(props["stiffness"]) >= 1.0)


def test_pull_towards_query_keeps_targets_and_shortens_changes(synthetic):
    import importlib

    refine = importlib.import_module("workbench.counterfactuals.refine")
    api = importlib.import_module("workbench.counterfactuals.api")
    data = synthetic.dataset()
    query = data.iloc[3]
    targets = {"mass": (None, 2.0), "stiffness": (2.0, None)}
    space = synthetic.space
    parsed = api.parse_targets(targets, [o.name for o in synthetic.objectives], [c.name for c in synthetic.constraints])
    cf = api.CounterfactualDomain(synthetic, api.encode_query(space, query), parsed, space.from_frame(data))
    found = wb.counterfactuals(synthetic, query, targets, n=4, generations=20, seed=0)
    x, _ = refine.sparsify(cf, space.from_frame(found), torch.device("cpu"))
    x = x + 0.3 * (x - cf.query) * (x != cf.query) * ~space.discrete_mask  # lengthen the real changes
    x = space.repair(x)
    x = x[(cf.evaluate(x)[1] <= 0).all(dim=1)]  # keep the ones still meeting the targets
    assert x.shape[0] >= 1
    pulled, spent = refine.pull_towards_query(cf, x, torch.device("cpu"))
    assert spent > 0
    assert bool((cf.evaluate(pulled)[1] <= 0).all())  # every target still met
    before, after = cf.quality(x)["gower"], cf.quality(pulled)["gower"]
    assert bool((after <= before + 1e-12).all()) and bool((after < before).any())
    assert torch.equal(pulled[:, space.discrete_mask], x[:, space.discrete_mask])  # discrete features untouched


def test_selection_prefers_the_sparser_of_two_equally_close_trade_offs():
    """A design changing one feature beats one changing two that is closer by as much of the pool's
    range in Gower distance as it is worse in changed features (equal weights would tie them)."""
    from workbench.counterfactuals import api
    from workbench.counterfactuals.select import normalized_cost

    space = wb.MixedSpace([wb.Real("a", -1, 1), wb.Real("b", -1, 1)])
    metric = GowerMetric(space)
    x = torch.tensor([[0.2, 0.24], [0.85, 0.0]], dtype=torch.float64)  # two changes, closer; one change, farther
    criteria = torch.tensor([[0.11, 2.0, 0.001], [0.21, 1.0, 0.001]], dtype=torch.float64)
    assert normalized_cost(criteria)[0] == normalized_cost(criteria)[1]  # unweighted: a tie
    cost = normalized_cost(criteria, weights=api._weights(3))
    assert float(cost[1]) < float(cost[0])
    assert select_diverse(x, cost, 1, metric, scale=0.2, diversity=0.6).tolist() == [1]


def test_sparsify_moves_a_stuck_residual_change_onto_the_other_features(toy):
    """A change within tolerance that cannot go back alone goes back when its Gower distance is added to
    the design's other changes: one feature fewer, the same distance, still valid."""
    from workbench.counterfactuals import api, refine

    space = toy.space
    parsed = api.parse_targets({"valid": {1}}, ["valid"], [])
    cf = api.CounterfactualDomain(toy, api.encode_query(space, TOY_QUERY), parsed, space.from_frame(toy.dataset()))
    x = torch.tensor([[0.8156, 0.00997], [0.9, 0.0]], dtype=torch.float64)
    assert not bool(toy_valid(torch.tensor([[0.8156, 0.0]]))["valid"][0])  # the residual cannot go back alone
    out, spent = refine.sparsify(cf, x, torch.device("cpu"))
    assert spent > 0
    assert out[0, 1] == 0.0 and out[0, 0] > 0.8156
    torch.testing.assert_close(cf.metric.to_query(out, cf.query), cf.metric.to_query(x, cf.query))
    assert bool((toy_valid(out)["valid"] == 1).all())
    assert out[1].tolist() == [0.9, 0.0]  # nothing to move
