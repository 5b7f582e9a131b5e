"""Same seed, same designs: every sampler twice, and once split by a resume, on the CPU; the same with
``deterministic=True`` on CUDA (marked ``gpu``)."""

import pytest
import torch

import workbench as wb
from domains.benchmarks import DTLZ2, PlantedMotif
from optimizers import NSGA2
from optimizers.guidance import DPS, DRAKES, SMC, SVDD, BestOfN, Pretrained

STEPS, N = 12, 16


def samplers() -> dict:
    common = {"steps": STEPS, "batch_size": 8}
    return {"pretrained": Pretrained(**common), "best_of_n": BestOfN(n_samples=3, **common),
            "smc": SMC(alpha=0.5, **common), "svdd_pm": SVDD(n_candidates=3, value="pm", **common),
            "svdd_mc": SVDD(n_candidates=3, value="mc", rollouts=32, value_epochs=2, **common),
            "dps": DPS(scale=1.0, **common),
            "drakes": DRAKES(iterations=3, train_batch=4, truncate=4, kl_weight=1e-2, lr=1e-3, temperature=0.5,
                             **common)}


@pytest.fixture(scope="module")
def motif() -> PlantedMotif:
    domain = PlantedMotif()
    domain.prior()  # trained once per process (seeded)
    return domain


def designs(domain, optimizer, storage, name, device="cpu", deterministic=False, stops=(N,)) -> torch.Tensor:
    """Runs to each budget in ``stops``, each time from a fresh Study object (a resume), and returns the designs."""
    for budget in stops:
        study = wb.Study(domain, optimizer(), storage=storage, name=name, seed=3, device=device,
                         deterministic=deterministic)
        study.run(budget, progress=False)
    return study.designs()


@pytest.mark.parametrize("method", list(samplers()))
def test_same_seed_gives_the_same_designs_on_the_cpu_also_across_a_resume(motif, method, tmp_path):
    storage = f"sqlite:///{tmp_path}/d.db"
    make = lambda: samplers()[method]  # noqa: E731
    first = designs(motif, make, storage, "first")
    assert torch.equal(first, designs(motif, make, storage, "second"))
    assert torch.equal(first, designs(motif, make, storage, "resumed", stops=(N // 2, N)))


def test_a_stored_study_records_whether_it_ran_deterministically(motif, tmp_path):
    storage = f"sqlite:///{tmp_path}/d.db"
    wb.Study(motif, Pretrained(steps=STEPS, batch_size=8), storage=storage, name="det", device="cpu",
             deterministic=True).run(N, progress=False)
    wb.Study(motif, Pretrained(steps=STEPS, batch_size=8), storage=storage, name="plain", device="cpu").run(
        N, progress=False)
    det, plain = wb.Study.load(storage, "det"), wb.Study.load(storage, "plain")
    assert det.record.spec["deterministic"] is True and plain.record.spec["deterministic"] is False
    assert det.counters()["deterministic_batches"] == det.counters()["evaluate_calls"] == 2
    assert plain.counters()["deterministic_batches"] == 0
    assert not torch.are_deterministic_algorithms_enabled()  # the mode ends with the run


def test_deterministic_mode_restores_the_settings_also_on_error():
    with pytest.raises(ValueError, match="inside"):
        with wb.deterministic_mode():
            assert torch.are_deterministic_algorithms_enabled()
            raise ValueError("inside")
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.gpu
@pytest.mark.parametrize("method", list(samplers()))
def test_deterministic_cuda_runs_repeat_bit_for_bit(motif, method, tmp_path):
    storage = f"sqlite:///{tmp_path}/d.db"
    make = lambda: samplers()[method]  # noqa: E731
    first = designs(motif, make, storage, "first", device="cuda", deterministic=True)
    assert torch.equal(first, designs(motif, make, storage, "second", device="cuda", deterministic=True))
    assert torch.equal(first, designs(motif, make, storage, "resumed", device="cuda", deterministic=True,
                                      stops=(N // 2, N)))


@pytest.mark.gpu
def test_deterministic_nsga2_on_cuda_repeats(tmp_path):
    storage = f"sqlite:///{tmp_path}/d.db"
    runs = [wb.Study(DTLZ2(n_var=12, n_obj=3), NSGA2(pop_size=2000), storage=storage, name=f"n{i}", seed=1,
                     device="cuda", deterministic=True).run(10_000, progress=False).designs() for i in range(2)]
    assert torch.equal(runs[0], runs[1])
