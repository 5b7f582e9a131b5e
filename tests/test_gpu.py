"""CUDA paths: the Triton sort, NSGA-II and the evaluation engine on the GPU (skipped without CUDA)."""

import numpy as np
import pytest
import torch

import workbench as wb
from domains.benchmarks import DTLZ2, ZDT1
from optimizers import NSGA2
from workbench.pareto import nondominated_rank, nondominated_rank_torch

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("n,k", [(1, 2), (999, 2), (3000, 3), (2500, 5)])
def test_cuda_ranks_match_moocore(n, k):
    import moocore

    f = torch.rand(n, k, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    f[: n // 10] = f[n // 10: 2 * (n // 10)]
    f[:, 0] = torch.round(f[:, 0] * 20) / 20
    expected = np.asarray(moocore.pareto_rank(f.numpy()))
    assert np.array_equal(nondominated_rank(f.cuda()).cpu().numpy(), expected)
    assert np.array_equal(nondominated_rank_torch(f.cuda()).cpu().numpy(), expected)


def test_study_on_cuda_is_deterministic_and_converges(tmp_path):
    def run(name):
        study = wb.Study(ZDT1(n_var=30), NSGA2(pop_size=100), storage=f"sqlite:///{tmp_path / 'g.db'}", name=name,
                         seed=0, device="cuda")
        return study.run(5000, progress=False)

    a, b = run("a"), run("b")
    assert a.results()["f1"].equals(b.results()["f1"])
    assert a.hypervolume([1.1, 1.1]) > 0.65


def test_evaluator_moves_chunks_to_cuda():
    seen = []

    class Probe(DTLZ2):
        def evaluate(self, x):
            seen.append(x.device.type)
            return super().evaluate(x)

    dom = Probe(n_obj=3)
    ev = wb.Evaluator(dom, "cuda", chunk_size=64)(dom.space.sample(200, torch.Generator().manual_seed(0)))
    assert seen == ["cuda"] * 4 and bool(ev.ok.all())
