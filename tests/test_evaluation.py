import math

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
