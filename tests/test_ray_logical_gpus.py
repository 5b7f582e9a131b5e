"""One evaluation actor per GPU, on a local Ray that declares 2 GPUs it does not have (``num_gpus=2``).

Ray's scheduling and GPU assignment are real (each actor gets its own ``CUDA_VISIBLE_DEVICES``); the actors
evaluate on the CPU (``device="cpu"``), so this runs in CPU-only CI. The same check on real GPUs is
``tests/test_ray.py::test_one_evaluation_actor_per_gpu`` (marked ``gpu``).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import workbench as wb
from optimizers import NSGA2
from workbench.executors import spread

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def two_gpu_cluster():
    if ray.is_initialized():  # another module's Ray: this module needs its own resources
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


def zdt1(x: torch.Tensor) -> torch.Tensor:
    f1 = x[:, 0]
    g = 1 + 9 * x[:, 1:].mean(dim=1)
    return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], dim=1)


def test_a_study_spread_over_two_gpus_gets_one_actor_on_each(two_gpu_cluster, tmp_path):
    domain = wb.Domain.from_function(wb.MixedSpace.box(8), zdt1, objectives=["f1", "f2"], name="zdt1")
    url = f"sqlite:///{tmp_path / 'gpus.db'}"
    study = wb.Study(domain, NSGA2(pop_size=40), storage=url, name="spread", seed=3, device="cpu")
    with spread(study, device="cpu") as engine:  # default count and resources: one actor, one GPU each, per GPU
        assert len(engine.actors) == 2
        gpu_ids = sorted(tuple(ids) for _, _, ids in engine.placement)
        assert gpu_ids == [("0",), ("1",)]  # each actor holds its own GPU
        assert len({pid for pid, _, _ in engine.placement}) == 2
        study.run(200, progress=False)
        assert engine.calls == 2 * 5  # every batch of 40 split over both actors
    ref = wb.Study(domain, NSGA2(pop_size=40), storage="sqlite:///:memory:", name="ref", seed=3, device="cpu")
    np.testing.assert_array_equal(wb.Study.load(url, "spread").frame()[["f1", "f2"]].to_numpy(),
                                  ref.run(200, progress=False).results()[["f1", "f2"]].to_numpy())
