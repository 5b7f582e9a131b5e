"""Loop overhead of NSGA-II at a large population: time per candidate spent outside evaluation.

    python benchmarks/loop_overhead.py [--pop 10000] [--generations 10]

Measured in one run on the same machine: pymoo's NSGA-II (its whole minimize loop minus
the time inside the problem's evaluation), our optimizer alone (ask + tell), and our
full Study loop (ask + tell + evaluation engine + SQLite storage) minus evaluation.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

import workbench as wb  # noqa: E402
from domains.benchmarks import ZDT1  # noqa: E402
from optimizers import NSGA2  # noqa: E402


def pymoo_overhead(pop: int, generations: int, seed: int = 0) -> float:
    from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
    from pymoo.optimize import minimize
    from pymoo.problems.multi.zdt import ZDT1 as PymooZDT1

    class Timed(PymooZDT1):
        spent = 0.0

        def _evaluate(self, x, out, *args, **kwargs):
            started = time.perf_counter()
            super()._evaluate(x, out, *args, **kwargs)
            Timed.spent += time.perf_counter() - started

    started = time.perf_counter()
    minimize(Timed(n_var=30), PymooNSGA2(pop_size=pop), ("n_gen", generations), seed=seed, verbose=False)
    total = time.perf_counter() - started
    return (total - Timed.spent) / (pop * generations)


def optimizer_overhead(pop: int, generations: int, device: str = "cpu") -> tuple[float, float]:
    """(ask + tell seconds per candidate, evaluation seconds per candidate), optimizer driven directly."""
    domain = ZDT1(n_var=30)
    opt = NSGA2(pop_size=pop)
    dev = torch.device(device)
    opt.setup(wb.Problem(domain.space, domain.objectives, domain.constraints, dev, seed=0))
    evaluator = wb.Evaluator(domain, device=dev, cache_size=0)
    spent_opt = spent_eval = 0.0
    for _ in range(generations):
        t0 = time.perf_counter()
        x = opt.ask(pop)
        t1 = time.perf_counter()
        ev = evaluator(x)
        t2 = time.perf_counter()
        opt.tell(x, ev)
        t3 = time.perf_counter()
        spent_opt += (t1 - t0) + (t3 - t2)
        spent_eval += t2 - t1
    return spent_opt / (pop * generations), spent_eval / (pop * generations)


def study_overhead(pop: int, generations: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        study = wb.Study(ZDT1(n_var=30), NSGA2(pop_size=pop), storage=f"sqlite:///{tmp}/o.db", name="o", seed=0,
                         device="cpu")
        started = time.perf_counter()
        study.run(pop * generations, progress=False)
        total = time.perf_counter() - started
        c = study.counters()
    return (total - c["evaluation_seconds"]) / (pop * generations)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pop", type=int, default=10_000)
    parser.add_argument("--generations", type=int, default=10)
    args = parser.parse_args()
    pym = pymoo_overhead(args.pop, args.generations)
    opt, _ = optimizer_overhead(args.pop, args.generations)
    full = study_overhead(args.pop, args.generations)
    rows = [
        {"loop": "pymoo 0.6 NSGA-II (minimize)", "us / candidate": pym * 1e6, "speed-up vs pymoo": 1.0},
        {"loop": "workbench NSGA2 ask+tell", "us / candidate": opt * 1e6, "speed-up vs pymoo": pym / opt},
        {"loop": "workbench Study (ask+tell+engine+SQLite)", "us / candidate": full * 1e6, "speed-up vs pymoo": pym / full},
    ]
    print_table(rows, f"NSGA-II loop overhead outside evaluation, ZDT1 (30 var), pop {args.pop}, {args.generations} generations")


if __name__ == "__main__":
    main()
