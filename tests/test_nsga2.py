import pytest
import torch

import workbench as wb
from domains.benchmarks import C1DTLZ1, DTLZ2, ZDT1
from optimizers import NSGA2, RandomSearch
from workbench.pareto import hypervolume, igd
from workbench.serialization import pack, unpack


def _problem(domain, seed=0):
    return wb.Problem(domain.space, domain.objectives, domain.constraints, torch.device("cpu"), seed)


def _drive(domain, opt, generations, pop, seed=0):
    opt.setup(_problem(domain, seed))
    ev = wb.Evaluator(domain, "cpu")
    for _ in range(generations):
        x = opt.ask(pop)
        opt.tell(x, ev(x))
    return opt


def test_converges_on_zdt1():
    dom = ZDT1(n_var=30)
    opt = _drive(dom, NSGA2(pop_size=100), 100, 100)
    assert hypervolume(opt.f, [1.1, 1.1]) > 0.84  # the true front has 0.8716
    assert igd(opt.f, dom.pareto_front(500)) < 0.02


def test_constrained_problem_reaches_feasible_front():
    dom = C1DTLZ1(n_obj=3)
    opt = _drive(dom, NSGA2(pop_size=92), 150, 92)
    assert bool((opt.cv <= 0).all())
    assert igd(opt.f, dom.pareto_front(300)) < 0.05


def test_beats_random_search_on_dtlz2_and_is_deterministic():
    dom = DTLZ2(n_obj=3)
    a = _drive(dom, NSGA2(pop_size=50), 30, 50, seed=4)
    b = _drive(dom, NSGA2(pop_size=50), 30, 50, seed=4)
    assert torch.equal(a.x, b.x)
    rand = RandomSearch()
    rand.setup(_problem(dom, 4))
    x = rand.ask(1500)
    f = wb.Evaluator(dom, "cpu")(x).objectives
    assert hypervolume(a.f, [1.1] * 3) > hypervolume(f, [1.1] * 3) + 0.1


def test_mixed_space_children_are_legal_and_unique(mixed_domain):
    opt = _drive(mixed_domain, NSGA2(pop_size=30), 5, 30)
    children = opt.ask(30)
    assert mixed_domain.space.invalid_rows(children) == {}
    rows = torch.cat([opt.x, children])
    assert len(torch.unique(rows, dim=0)) == len(rows)


def test_duplicate_detection_is_exact():
    space = wb.MixedSpace([wb.Integer("a", 0, 3), wb.Categorical("b", ["x", "y"])])
    opt = NSGA2(pop_size=4)
    opt.setup(wb.Problem(space, [wb.Objective("f")], [], torch.device("cpu"), 0))
    opt.x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    children = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 1.0], [3.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    assert opt._duplicates(children).tolist() == [True, False, True, True, False]


def test_state_round_trip_continues_identically():
    dom = ZDT1(n_var=8)
    a = _drive(dom, NSGA2(pop_size=20), 4, 20)
    b = NSGA2(pop_size=20)
    b.setup(_problem(dom))
    b.load_state_dict(unpack(pack(a.state_dict())))
    assert torch.equal(a.ask(20), b.ask(20))


def test_failed_rows_rank_last():
    space = wb.MixedSpace.box(2)

    def fn(x):
        f = x.clone()
        f[x[:, 0] < 0.5] = float("nan")
        return f

    dom = wb.Domain.from_function(space, fn, objectives=["a", "b"])
    opt = _drive(dom, NSGA2(pop_size=10), 6, 10)
    assert bool(torch.isfinite(opt.f).all()) and bool((opt.x[:, 0] >= 0.5).all())


def test_rejects_sequence_spaces():
    dom = wb.Domain.from_function(wb.SequenceSpace("ACGT", 5), lambda x: x.float().sum(1), objectives=["s"])
    with pytest.raises(TypeError, match="NSGA2 works on MixedSpace designs, not SequenceSpace"):
        NSGA2().setup(_problem(dom))


def test_random_search_sobol_resume():
    dom = ZDT1(n_var=4)
    a = RandomSearch(method="sobol")
    a.setup(_problem(dom, 3))
    first = a.ask(8)
    b = RandomSearch(method="sobol")
    b.setup(_problem(dom, 3))
    b.load_state_dict(unpack(pack(a.state_dict())))
    assert torch.equal(a.ask(8), b.ask(8))
    assert dom.space.invalid_rows(first) == {}
    with pytest.raises(ValueError, match="method must be 'uniform' or 'sobol'"):
        RandomSearch(method="lhs")
