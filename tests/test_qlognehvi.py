"""Tests of the qLogNEHVI optimizer (small sizes: the whole file runs in well under a minute on CPU)."""

from __future__ import annotations

import pytest
import torch

from optimizers.qlognehvi import QLogNEHVI
from workbench import Categorical, Domain, Integer, MixedSpace, Real
from workbench.evaluation import Evaluator
from workbench.optimizer import Problem
from workbench.pareto import hypervolume
from workbench.serialization import pack, unpack

FAST = dict(num_restarts=2, raw_samples=32, mc_samples=16)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny GPs: one thread is faster and steadier


def _analytic(nan_row: bool = False) -> Domain:
    """2 objectives (one maximized) over 3 reals: distances to two anchor points."""
    space = MixedSpace([Real("a", 0, 1), Real("b", 0, 1), Real("c", 0.1, 10, log=True)])

    def fn(x: torch.Tensor) -> torch.Tensor:
        u = torch.stack([x[:, 0], x[:, 1], torch.log10(x[:, 2]) / 2 + 0.5], dim=1)
        f1 = ((u - 0.2) ** 2).sum(dim=1)
        f2 = -((u - 0.8) ** 2).sum(dim=1)  # maximized: -distance
        out = torch.stack([f1, f2], dim=1)
        if nan_row:
            out[x[:, 0] > 0.7, 0] = float("nan")
        return out

    return Domain.from_function(space, fn, objectives=["f1", ("f2", "maximize")])


def _mixed() -> Domain:
    """2 objectives over a real, an integer and a categorical, with one constraint."""
    space = MixedSpace([Real("x", 0, 1), Integer("n", 1, 5), Categorical("m", ["steel", "al", "ti"])])
    cost = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)

    def fn(x: torch.Tensor):
        m = cost[x[:, 2].long()]
        f1 = (x[:, 0] - 0.3) ** 2 + 0.1 * x[:, 1] * m
        f2 = (x[:, 0] - 0.7) ** 2 + 1.0 / x[:, 1]
        return torch.stack([f1, f2], dim=1), (x[:, 0] + 0.1 * x[:, 1]).unsqueeze(1)

    return Domain.from_function(space, fn, objectives=["f1", "f2"], constraints=[("load", 1.0, "<=")])


def _problem(domain: Domain, seed: int = 0) -> Problem:
    return Problem(domain.space, domain.objectives, domain.constraints, device=torch.device("cpu"), seed=seed)


def _run(domain: Domain, opt: QLogNEHVI, rounds: int, seed: int = 0, n: int | None = None) -> tuple[list[torch.Tensor], Evaluator]:
    opt.setup(_problem(domain, seed))
    ev = Evaluator(domain, "cpu")
    xs = []
    for _ in range(rounds):
        x = opt.ask(n or opt.default_batch_size)
        assert x.shape == (n or opt.default_batch_size, domain.space.dim)
        assert x.dtype == torch.float64
        assert domain.space.invalid_rows(x) == {}
        opt.tell(x, ev(x))
        xs.append(x)
    return xs, ev


def test_params_and_space_check():
    opt = QLogNEHVI(q=3, **FAST)
    assert opt.name == "qlognehvi" and opt.default_batch_size == 3
    assert opt.params()["q"] == 3 and opt.params()["n_init"] is None
    from workbench.spaces import TensorSpace
    dom = _analytic()
    prob = Problem(TensorSpace((2, 2)), dom.objectives, [], device=torch.device("cpu"), seed=0)
    with pytest.raises(TypeError, match="MixedSpace"):
        QLogNEHVI().setup(prob)


def test_improves_hypervolume_over_sobol():
    dom = _analytic()
    opt = QLogNEHVI(q=4, n_init=8, **FAST)
    xs, ev = _run(dom, opt, rounds=5)  # 2 Sobol rounds, 3 model rounds
    prob = _problem(dom)
    f, _, _ = prob.minimized(ev(torch.cat(xs)))
    ref = [1.5, 1.5]  # both minimized objectives lie in [0, 1.92]; the front in [0, 1.08]
    hv_init = hypervolume(f[:8], ref)
    hv_all = hypervolume(f, ref)
    assert hv_all > hv_init * 1.02


def test_sobol_prefix_and_partial_asks():
    dom = _analytic()
    opt = QLogNEHVI(q=4, n_init=6, **FAST)
    opt.setup(_problem(dom))
    a = torch.cat([opt.ask(2), opt.ask(3)])
    ref = QLogNEHVI(q=4, n_init=6, **FAST)
    ref.setup(_problem(dom))
    assert torch.equal(a, ref.ask(5))


def test_mixed_constrained_and_deterministic():
    dom = _mixed()
    xs1, _ = _run(dom, QLogNEHVI(q=3, n_init=6, **FAST), rounds=3)
    xs2, _ = _run(dom, QLogNEHVI(q=3, n_init=6, **FAST), rounds=3)
    for a, b in zip(xs1, xs2):
        assert torch.equal(a, b)
    x = torch.cat(xs1)
    assert set(x[:, 2].tolist()) <= {0.0, 1.0, 2.0}
    assert set(x[:, 1].tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    xs3, _ = _run(dom, QLogNEHVI(q=3, n_init=6, **FAST), rounds=1, seed=1)
    assert not torch.equal(xs1[0], xs3[0])


def test_state_round_trip():
    dom = _analytic()
    opt = QLogNEHVI(q=2, n_init=4, ref_point=[2.0, -2.0], **FAST)
    _run(dom, opt, rounds=3)
    blob = pack(opt.state_dict())
    fresh = QLogNEHVI(q=2, n_init=4, ref_point=[2.0, -2.0], **FAST)
    fresh.setup(_problem(dom))
    fresh.load_state_dict(unpack(blob))
    assert torch.equal(opt.ask(2), fresh.ask(2))


def test_failed_rows_are_skipped():
    dom = _analytic(nan_row=True)
    opt = QLogNEHVI(q=3, n_init=6, **FAST)
    xs, ev = _run(dom, opt, rounds=3)
    evaluation = ev(torch.cat(xs))
    assert not bool(evaluation.ok.all())  # some rows did fail
    assert int(opt._train_mask().sum()) == int(evaluation.ok.sum())


def test_all_failed_keeps_sampling():
    space = MixedSpace.box(2)
    dom = Domain.from_function(space, lambda x: torch.full((len(x), 2), float("nan"), dtype=torch.float64), ["a", "b"])
    opt = QLogNEHVI(q=2, n_init=2, **FAST)
    _run(dom, opt, rounds=3)  # no successful row: no model, Sobol points go on
    assert opt._n_sobol == 6


def test_relaxed_encoding_round_trip_rounding_and_polish():
    from optimizers.relaxation import RelaxedEncoding

    space = MixedSpace([Real("x", 0, 1), Integer("n", 1, 5), Categorical("m", ["steel", "al", "ti"])])
    enc = RelaxedEncoding(space)
    assert enc.dim == 2 + 3 and not enc.is_continuous
    x = torch.tensor([[0.25, 3.0, 2.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    z = enc.encode(x)
    assert torch.equal(z[:, 2:], torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(enc.decode(z), x)
    relaxed = torch.tensor([[0.3, 0.6, 0.2, 0.5, 0.3]], dtype=torch.float64)  # n between 3 and 4, m mostly "al"
    legal = enc.decode(enc.round(relaxed))
    assert legal.tolist() == [[0.3, 3.0, 1.0]]
    assert enc.neighbours(enc.round(relaxed)).shape == (1, 2 + 3, 5)

    # a q = 1 "acquisition" that prefers n = 5 and "ti": the hill climb must reach it from the rounding
    target = enc.encode(torch.tensor([[0.3, 5.0, 2.0]], dtype=torch.float64))[0]
    acqf = lambda b: -((b - target) ** 2).sum(dim=(-1, -2))  # noqa: E731
    polished = enc.polisher(acqf)(relaxed.unsqueeze(0))
    assert enc.decode(polished[0]).tolist() == [[0.3, 5.0, 2.0]]


def _needle(d: int = 4) -> Domain:
    """2 objectives over ``d`` reals and a categorical; feasible only in a small ball (~0.2% of the box)."""
    space = MixedSpace([Real(f"x{i}", 0, 1) for i in range(d)] + [Categorical("m", ["a", "b"])])
    center = torch.tensor([0.7, 0.25, 0.6, 0.4][:d], dtype=torch.float64)

    def fn(x: torch.Tensor):
        u = x[:, :d]
        f1 = u[:, 0] + 0.1 * x[:, d]
        f2 = 1.0 - u[:, 0] + u[:, 1]
        return torch.stack([f1, f2], dim=1), ((u - center) ** 2).sum(dim=1).unsqueeze(1)

    return Domain.from_function(space, fn, objectives=["f1", "f2"], constraints=[("dist", 0.02, "<=")])


def test_finds_feasible_designs_when_the_initial_design_has_none():
    """No feasible Sobol point: the optimizer must search for feasibility (probability of
    feasibility around the least infeasible design) and then keep proposing feasible designs."""
    dom = _needle()
    opt = QLogNEHVI(q=3, n_init=6, **FAST)
    xs, ev = _run(dom, opt, rounds=7)  # 2 Sobol rounds, 5 model rounds
    prob = _problem(dom)
    _, g, _ = prob.minimized(ev(torch.cat(xs)))
    feasible = (g <= 0).all(dim=1)
    assert not bool(feasible[:6].any())  # the premise: the initial design has no feasible point
    # the model rounds found one (a random design has a ~0.2% chance; the optimizer before the
    # feasibility search found none in 7 rounds on seeds 0, 1 and 2)
    assert bool(feasible[6:].any())


def test_reference_point_with_one_feasible_design_allows_trade_offs():
    """With a single feasible design the inferred reference point lies 10% of the observed range
    behind it (not 10% of its own value), so designs that trade one objective for the other count."""
    dom = _mixed()
    opt = QLogNEHVI(q=2, n_init=4, **FAST)
    opt.setup(_problem(dom))
    y = torch.tensor([[-1.0, -1.0], [-0.2, -3.0], [-5.0, -0.5]], dtype=torch.float64)  # maximized
    feasible = torch.tensor([True, False, False])
    ref = opt._reference_point(y, feasible)
    assert torch.allclose(ref, torch.tensor([-1.0 - 0.48, -1.0 - 0.25], dtype=torch.float64))


def test_trust_region_shrinks_without_progress_and_round_trips():
    dom = _needle()
    opt = QLogNEHVI(q=2, n_init=2, trust_region=0.4, **FAST)
    opt.setup(_problem(dom))
    ev = Evaluator(dom, "cpu")
    x = opt.ask(2)
    opt.tell(x, ev(x))
    assert opt._tr == 0.4  # Sobol rows do not move it
    x = opt.ask(2)
    bounds = opt._bounds(opt._encoding.encode(opt._x), -opt._f, opt._g, (opt._g <= 0).all(dim=1))
    assert torch.all(bounds[1, :4] - bounds[0, :4] <= 0.4 + 1e-12)  # reals boxed
    assert torch.all(bounds[:, 4:] == torch.tensor([[0.0], [1.0]], dtype=torch.float64))  # one-hot free
    opt.tell(x, ev(x))
    assert opt._tr in (0.2, 0.4)  # halved unless the batch made progress
    with pytest.raises(ValueError, match="trust_region"):
        QLogNEHVI(trust_region=0.0)
    auto = QLogNEHVI(**FAST)  # "auto": a trust region on constrained problems only
    auto.setup(_problem(dom))
    assert auto._tr == 0.4
    auto.setup(_problem(_analytic()))
    assert auto._tr is None
    blob = pack(opt.state_dict())
    fresh = QLogNEHVI(q=2, n_init=2, trust_region=0.4, **FAST)
    fresh.setup(_problem(dom))
    fresh.load_state_dict(unpack(blob))
    assert fresh._tr == opt._tr
    assert torch.equal(opt.ask(2), fresh.ask(2))
