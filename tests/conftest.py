"""Shared fixtures: small real domains and a skip rule for slow / GPU tests."""

from __future__ import annotations

import os

import pytest
import torch

import workbench as wb


def pytest_collection_modifyitems(config, items):
    slow_ok = os.environ.get("WORKBENCH_SLOW") == "1"
    for item in items:
        if "slow" in item.keywords and not slow_ok:
            item.add_marker(pytest.mark.skip(reason="slow test: set WORKBENCH_SLOW=1 to run"))
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture
def one_thread():
    """One torch intra-op thread for the test: small batches gain little from more, and lose much on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def zdt1(x: torch.Tensor) -> torch.Tensor:
    """ZDT1 written inline, so core tests do not depend on the benchmark package."""
    f1 = x[:, 0]
    g = 1 + 9 * x[:, 1:].mean(dim=1)
    return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], dim=1)


@pytest.fixture
def zdt1_domain() -> wb.Domain:
    return wb.Domain.from_function(wb.MixedSpace.box(10), zdt1, objectives=["f1", "f2"], name="zdt1-inline")


@pytest.fixture
def mixed_domain() -> wb.Domain:
    """A constrained mixed-variable problem: maximize one objective, minimize another."""
    space = wb.MixedSpace([wb.Real("a", 0.0, 1.0), wb.Real("b", 0.1, 10.0, log=True), wb.Integer("n", 1, 6),
                           wb.Categorical("material", ["steel", "aluminium", "titanium"]), wb.Binary("bridge")])

    def fn(x: torch.Tensor) -> dict[str, torch.Tensor]:
        density = torch.tensor([7.8, 2.7, 4.5], dtype=x.dtype, device=x.device)[x[:, 3].long()]
        mass = density * x[:, 0] * x[:, 2] + 0.5 * x[:, 4]
        stiffness = torch.log(x[:, 1]) + x[:, 2] * x[:, 0] + x[:, 4]
        return {"mass": mass, "stiffness": stiffness, "budget": x[:, 2] + x[:, 0]}

    return wb.Domain.from_function(space, fn, objectives=[("mass", "minimize"), ("stiffness", "maximize")],
                                   constraints=[wb.Constraint("budget", 5.0, "<=")], name="mixed")
