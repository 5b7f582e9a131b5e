import math

import numpy as np
import pandas as pd
import pytest
import torch

import workbench as wb


def test_nan_and_exception_rows_fail_alone():
    space = wb.MixedSpace.box(2)

    def fn(x):
        if bool((x[:, 0] > 0.9).any()):
            raise RuntimeError("solver diverged")
        f = x.clone()
        f[x[:, 1] < 0.1, 0] = float("nan")
        return f

    dom = wb.Domain.from_function(space, fn, objectives=["f1", "f2"])
    x = torch.tensor([[0.5, 0.5], [0.95, 0.5], [0.3, 0.05], [0.2, 0.7]], dtype=torch.float64)
    ev = wb.Evaluator(dom, "cpu")(x)
    assert ev.ok.tolist() == [True, False, False, True]
    assert ev.errors[1] == "RuntimeError: solver diverged"
    assert ev.errors[2] == "objective 'f1' is nan"
    assert torch.equal(ev.objectives[3], x[3])
    assert math.isnan(float(ev.objectives[1, 0]))


def test_invalid_designs_are_marked_not_evaluated():
    calls = []
    dom = wb.Domain.from_function(wb.MixedSpace.box(2), lambda x: calls.append(len(x)) or x, objectives=["a", "b"])
    x = torch.tensor([[0.5, 0.5], [1.5, 0.5]], dtype=torch.float64)
    ev = wb.Evaluator(dom, "cpu")(x)
    assert ev.ok.tolist() == [True, False]
    assert ev.errors[1] == "invalid design: variable 'x0' = 1.5 is outside [0.0, 1.0]"
    assert calls == [1]


def test_chunking_cache_and_output_forms():
    calls = []

    def fn(x):
        calls.append(len(x))
        return pd.DataFrame({"s": x.sum(1).numpy(), "p": x.prod(1).numpy(), "c": (x[:, 0] - 0.5).numpy()})

    dom = wb.Domain.from_function(wb.MixedSpace.box(3), fn, objectives=["s", ("p", "max")], constraints=["c"])
    ev_engine = wb.Evaluator(dom, "cpu", chunk_size=4)
    x = dom.space.sample(10, torch.Generator().manual_seed(0))
    ev = ev_engine(x)
    assert calls == [4, 4, 2]
    assert torch.allclose(ev.objectives[:, 0], x.sum(1))
    assert torch.allclose(ev.constraints[:, 0], x[:, 0] - 0.5)
    again = ev_engine(torch.cat([x[:3], x[:3]]))
    assert calls == [4, 4, 2]  # all six rows came from the cache
    assert torch.equal(again.objectives[:3], ev.objectives[:3])


def test_wrong_output_shape_fails_rows_with_message():
    dom = wb.Domain.from_function(wb.MixedSpace.box(2), lambda x: x[:, :1], objectives=["a", "b"])
    ev = wb.Evaluator(dom, "cpu")(torch.full((2, 2), 0.5, dtype=torch.float64))
    assert not ev.ok.any()
    assert "expected [1, 2]" in ev.errors[0]


def test_device_resolution(monkeypatch):
    monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    assert wb.resolve_device("auto").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            wb.resolve_device("cuda")


def _counting_domain(calls: list[int]) -> wb.Domain:
    """Two objectives of three variables; ``b`` is NaN where x2 > 0.8 (those rows fail with a message)."""

    def fn(x):
        calls.append(len(x))
        f = torch.stack([x.sum(1), x[:, 0] - x[:, 1]], 1)
        f[x[:, 2] > 0.8, 1] = float("nan")
        return f

    return wb.Domain.from_function(wb.MixedSpace.box(3), fn, objectives=["a", "b"])


def test_the_cache_serves_repeats_with_their_messages_and_drops_the_oldest_first():
    calls: list[int] = []
    dom = _counting_domain(calls)
    engine = wb.Evaluator(dom, "cpu", cache_size=6)
    a = torch.tensor([[0.1, 0.2, 0.9], [0.3, 0.1, 0.2], [0.5, 0.5, 0.5], [0.7, 0.2, 0.1]], dtype=torch.float64)
    b = a * 0.5
    first = engine(a)
    assert calls == [4] and first.ok.tolist() == [False, True, True, True]
    again = engine(torch.cat([a[2:], a[:2]]))
    assert calls == [4]  # all four from the cache, the failed row with its message
    assert again.errors == [None, None, "objective 'b' is nan", None] and again.ok.tolist() == [True, True, False, True]
    assert torch.equal(again.objectives[:2], first.objectives[2:])
    assert torch.equal(again.objectives[3], first.objectives[1])
    engine(b)  # four more: the cache keeps the last six, a[2:] and b
    assert calls == [4, 4]
    engine(a)
    assert calls == [4, 4, 2]  # a[:2] were dropped and are evaluated again
    invalid = torch.tensor([[1.5, 0.0, 0.0], [0.3, 0.1, 0.2]], dtype=torch.float64)
    mixed = engine(invalid)
    assert calls == [4, 4, 2] and mixed.errors[0].startswith("invalid design") and mixed.ok.tolist() == [False, True]
    twice = torch.full((2, 3), 0.375, dtype=torch.float64)  # a new design twice in one batch: both evaluated
    engine(twice)
    assert calls == [4, 4, 2, 2]


def test_equal_hashes_of_different_designs_are_a_miss_never_a_wrong_score(monkeypatch):
    import workbench.evaluation as evaluation

    monkeypatch.setattr(evaluation, "_row_hashes", lambda keys: np.zeros(len(keys), dtype=np.uint64))
    calls: list[int] = []
    dom = _counting_domain(calls)
    x = dom.space.sample(50, torch.Generator().manual_seed(0))
    engine = wb.Evaluator(dom, "cpu")
    engine(x)
    out = engine(torch.cat([x[:1], x[1:] * 0.5]))  # every hash equals every other: only x[0] is really cached
    assert calls == [50, 49]
    reference = wb.Evaluator(dom, "cpu", cache_size=0)(torch.cat([x[:1], x[1:] * 0.5]))
    assert torch.equal(out.objectives.nan_to_num(-1), reference.objectives.nan_to_num(-1))
    assert out.errors == reference.errors and torch.equal(out.ok, reference.ok)


def test_a_large_batch_with_repeats_equals_scoring_without_cache():
    calls: list[int] = []
    dom = _counting_domain(calls)
    x = dom.space.sample(20_000, torch.Generator().manual_seed(3))
    engine = wb.Evaluator(dom, "cpu")
    engine(x[:5000])
    batch = torch.cat([x[2500:], x[:2500]])  # 5,000 cached rows (in two places), 15,000 new
    out = engine(batch)
    assert calls == [5000, 15_000]
    reference = wb.Evaluator(dom, "cpu", cache_size=0)(batch)
    assert torch.equal(out.objectives.nan_to_num(-1), reference.objectives.nan_to_num(-1))
    assert out.errors == reference.errors and torch.equal(out.ok, reference.ok) and not out.ok.all()
