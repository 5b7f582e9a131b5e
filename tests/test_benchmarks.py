"""Benchmark domains against pymoo's reference implementations and their own Pareto fronts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymoo.problems.many.cdtlz import C1DTLZ1 as PymooC1DTLZ1
from pymoo.problems.many.dtlz import DTLZ2 as PymooDTLZ2
from pymoo.problems.multi.osy import OSY as PymooOSY
from pymoo.problems.multi.zdt import ZDT1 as PymooZDT1
from pymoo.problems.multi.zdt import ZDT2 as PymooZDT2
from pymoo.problems.multi.zdt import ZDT3 as PymooZDT3

from domains.benchmarks import C1DTLZ1, DTLZ2, OSY, ZDT1, ZDT2, ZDT3
from workbench import Domain
from workbench.domain import split_outputs
from workbench.objectives import violations
from workbench.pareto import igd, is_nondominated

# (our domain, pymoo twin, factor turning our raw violations into pymoo's G)
CASES = {
    "zdt1": (lambda: ZDT1(), lambda: PymooZDT1(n_var=30), None),
    "zdt2": (lambda: ZDT2(n_var=12), lambda: PymooZDT2(n_var=12), None),
    "zdt3": (lambda: ZDT3(), lambda: PymooZDT3(n_var=30), None),
    "dtlz2": (lambda: DTLZ2(), lambda: PymooDTLZ2(n_var=12, n_obj=3), None),
    "dtlz2_m2": (lambda: DTLZ2(n_obj=2), lambda: PymooDTLZ2(n_var=11, n_obj=2), None),
    "dtlz2_m5": (lambda: DTLZ2(n_obj=5), lambda: PymooDTLZ2(n_var=14, n_obj=5), None),
    "c1dtlz1": (lambda: C1DTLZ1(), lambda: PymooC1DTLZ1(n_var=7, n_obj=3), [1.0]),
    "c1dtlz1_m4": (lambda: C1DTLZ1(n_obj=4), lambda: PymooC1DTLZ1(n_var=8, n_obj=4), [1.0]),
    "osy": (lambda: OSY(), lambda: PymooOSY(), [2.0, 6.0, 2.0, 2.0, 4.0, 4.0]),
}


def _random_designs(domain: Domain, n: int = 200, seed: int = 0) -> torch.Tensor:
    return domain.space.sample(n, generator=torch.Generator().manual_seed(seed))


def _near_front(domain: Domain, n: int = 200, seed: int = 1) -> torch.Tensor:
    """Designs with distance variables near 0.5, so C1-DTLZ1 gets both feasible and infeasible rows."""
    x = _random_designs(domain, n, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    m = domain.n_obj
    x[:, m - 1:] = 0.5 + 0.001 * (torch.rand((n, x.shape[1] - m + 1), generator=gen, dtype=torch.float64) - 0.5)
    return x


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_pymoo(case: str) -> None:
    make, make_ref, scale = CASES[case]
    domain, ref = make(), make_ref()
    assert domain.space.dim == ref.n_var and domain.n_obj == ref.n_obj and domain.n_con == ref.n_ieq_constr
    np.testing.assert_allclose(domain.space.bounds[0].numpy(), np.broadcast_to(ref.xl, (ref.n_var,)))
    np.testing.assert_allclose(domain.space.bounds[1].numpy(), np.broadcast_to(ref.xu, (ref.n_var,)))
    xs = [_random_designs(domain)] + ([_near_front(domain)] if case.startswith("c1dtlz1") else [])
    for x in xs:
        out = domain.evaluate(x)
        assert out.shape == (x.shape[0], domain.n_obj + domain.n_con) and out.dtype == torch.float64
        f, values = split_outputs(domain, out, x.shape[0])
        F, G = ref.evaluate(x.numpy(), return_values_of=["F", "G"])
        np.testing.assert_allclose(f.numpy(), F, rtol=1e-10, atol=1e-10)
        if scale is None:
            assert values.shape[1] == 0
            continue
        g = violations(domain.constraints, values)  # <= 0 feasible, like pymoo's G
        np.testing.assert_allclose(g.numpy() / np.asarray(scale), G, rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal((g <= 0).all(dim=1).numpy(), (G <= 0).all(axis=1))
    if case.startswith("c1dtlz1"):  # the near-front batch really exercises both sides of the constraint
        feasible = (violations(domain.constraints, split_outputs(domain, domain.evaluate(xs[1]), 200)[1]) <= 0)
        assert 0 < int(feasible.sum()) < 200


@pytest.mark.parametrize("case", sorted(CASES))
def test_pareto_front_is_feasible_nondominated_and_reached(case: str) -> None:
    domain = CASES[case][0]()
    front = domain.pareto_front(300)
    assert front.dim() == 2 and front.shape[1] == domain.n_obj and 50 <= front.shape[0] <= 300
    assert torch.isfinite(front).all() and bool(is_nondominated(front).all())
    assert torch.equal(front, domain.pareto_front(300))  # deterministic
    assert igd(front, front) == pytest.approx(0.0, abs=1e-6)  # cdist rounding only
    # every objective's reference value lies beyond the whole front
    ref = torch.tensor([o.ref for o in domain.objectives], dtype=torch.float64)
    assert bool((front < ref).all())
    # the Pareto set evaluates onto the front, and is feasible
    xs = domain.pareto_set(300)
    assert xs.shape == (front.shape[0], domain.space.dim)
    assert not domain.space.invalid_rows(xs)
    f, values = split_outputs(domain, domain.evaluate(xs), xs.shape[0])
    assert float(torch.cdist(f, front, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values.max()) < 1e-9
    assert bool((violations(domain.constraints, values) <= 1e-9).all())


@pytest.mark.parametrize("case", sorted(CASES))
def test_random_designs_do_not_beat_the_front(case: str) -> None:
    domain = CASES[case][0]()
    front = domain.pareto_front(500)
    x = _random_designs(domain, 2000, seed=3)
    f, values = split_outputs(domain, domain.evaluate(x), 2000)
    f = f[(violations(domain.constraints, values) <= 0).all(dim=1)]
    beats = ((f.unsqueeze(1) <= front.unsqueeze(0)).all(dim=2) & (f.unsqueeze(1) < front.unsqueeze(0) - 1e-6).any(dim=2))
    assert not bool(beats.any())


def test_front_shapes_match_the_analytic_curves() -> None:
    f = ZDT1().pareto_front(200)
    torch.testing.assert_close(f[:, 1], 1 - f[:, 0].sqrt())
    f = ZDT2().pareto_front(200)
    torch.testing.assert_close(f[:, 1], 1 - f[:, 0] ** 2)
    # ZDT3: all points inside pymoo's five disconnected regions, and every region is covered
    f1 = ZDT3().pareto_front(500)[:, 0].numpy()
    regions = PymooZDT3()._calc_pareto_front(n_points=10, flatten=False)[:, [0, -1], 0]  # [5, 2] f1 ranges
    inside = (f1[:, None] >= regions[:, 0] - 1e-4) & (f1[:, None] <= regions[:, 1] + 1e-4)
    assert inside.any(axis=1).all() and inside.any(axis=0).all()
    for m in (2, 3, 10):
        f = DTLZ2(n_obj=m).pareto_front(1000)
        torch.testing.assert_close(f.norm(dim=1), torch.ones(f.shape[0], dtype=torch.float64))
        assert f.shape[0] > 200 and bool((f >= 0).all())
    f = C1DTLZ1().pareto_front(1000)
    torch.testing.assert_close(f.sum(dim=1), torch.full((f.shape[0],), 0.5, dtype=torch.float64))
    f = OSY().pareto_front(1000)
    torch.testing.assert_close(f.min(dim=0).values, torch.tensor([-274.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(f.max(dim=0).values, torch.tensor([-42.0, 76.0], dtype=torch.float64))


@pytest.mark.parametrize("case", sorted(CASES))
def test_batch_shapes_dtypes_and_devices(case: str) -> None:
    domain = CASES[case][0]()
    width = domain.n_obj + domain.n_con
    x = _random_designs(domain, 16)
    full = domain.evaluate(x)
    one = domain.evaluate(x[:1])
    assert one.shape == (1, width)
    torch.testing.assert_close(one, full[:1])
    empty = domain.evaluate(x[:0])
    assert empty.shape == (0, width)
    low = domain.evaluate(x.float())
    assert low.dtype == torch.float64 and low.shape == (16, width)
    torch.testing.assert_close(low, domain.evaluate(x.float().double()))
    torch.testing.assert_close(low, full, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        domain.evaluate(x[:, :-1])
    if torch.cuda.is_available():
        on_gpu = domain.evaluate(x.cuda())
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), full)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_evaluation_matches_cpu() -> None:
    for case in sorted(CASES):
        domain = CASES[case][0]()
        x = _random_designs(domain, 64)
        torch.testing.assert_close(domain.evaluate(x.cuda()).cpu(), domain.evaluate(x))


def test_names_refs_and_argument_checks() -> None:
    assert [d.name for d in (ZDT1(), ZDT2(), ZDT3(), DTLZ2(), C1DTLZ1(), OSY())] == \
        ["zdt1", "zdt2", "zdt3", "dtlz2", "c1dtlz1", "osy"]
    assert [o.ref for o in ZDT3().objectives] == [1.1, 1.1]
    assert [o.name for o in DTLZ2(n_obj=4).objectives] == ["f1", "f2", "f3", "f4"]
    assert DTLZ2(n_obj=4).space.dim == 13 and C1DTLZ1(n_obj=5).space.dim == 9
    assert [o.ref for o in C1DTLZ1().objectives] == [0.6] * 3
    assert [o.ref for o in OSY().objectives] == [-18.8, 83.2]
    assert DTLZ2().describe()["objectives"][0] == {"name": "f1", "direction": "minimize", "ref": 1.1}
    for bad in (lambda: ZDT1(n_var=1), lambda: DTLZ2(n_obj=1), lambda: DTLZ2(n_obj=11),
                lambda: DTLZ2(n_obj=3, n_var=2), lambda: C1DTLZ1(n_obj=1)):
        with pytest.raises(ValueError):
            bad()
