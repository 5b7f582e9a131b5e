"""NSGA-II quality: ours vs pymoo on ZDT1 (30 variables), same budget, same seeds, one run.

    python benchmarks/nsga2_quality.py [--evals 10000] [--seeds 5]

Hypervolume (ref 1.1, 1.1) of the final population, and of every design evaluated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

import workbench as wb  # noqa: E402
from domains.benchmarks import ZDT1  # noqa: E402
from optimizers import NSGA2  # noqa: E402
from workbench.pareto import hypervolume  # noqa: E402

REF = [1.1, 1.1]


def ours(seed: int, evals: int, pop: int, db: str) -> tuple[float, float, float]:
    started = time.perf_counter()
    study = wb.Study(ZDT1(n_var=30), NSGA2(pop_size=pop), storage=db, name=f"zdt1-{seed}", seed=seed, device="cpu")
    study.run(evals, progress=False)
    wall = time.perf_counter() - started
    final = hypervolume(study.optimizer.f, REF)
    return final, study.hypervolume(REF), wall


def pymoo(seed: int, evals: int, pop: int) -> tuple[float, float, float]:
    from pymoo.algorithms.moo.nsga2 import NSGA2 as PymooNSGA2
    from pymoo.core.callback import Callback
    from pymoo.optimize import minimize
    from pymoo.problems import get_problem

    class Collect(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.all: list[np.ndarray] = []

        def notify(self, algorithm) -> None:
            self.all.append(algorithm.off.get("F") if algorithm.off is not None else algorithm.pop.get("F"))

    cb = Collect()
    started = time.perf_counter()
    res = minimize(get_problem("zdt1", n_var=30), PymooNSGA2(pop_size=pop), ("n_evals", evals), seed=seed,
                   callback=cb, verbose=False)
    wall = time.perf_counter() - started
    return hypervolume(res.pop.get("F"), REF), hypervolume(np.vstack(cb.all), REF), wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--evals", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pop", type=int, default=100)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/bench.db"
        results = {"workbench": [ours(s, args.evals, args.pop, db) for s in range(args.seeds)],
                   "pymoo 0.6": [pymoo(s, args.evals, args.pop) for s in range(args.seeds)]}
    for name, res in results.items():
        arr = np.array(res)
        rows.append({"optimizer": name, "HV final pop (mean)": arr[:, 0].mean(), "std": arr[:, 0].std(ddof=1),
                     "HV all evaluated (mean)": arr[:, 1].mean(), "wall s / run": arr[:, 2].mean()})
    gap = rows[0]["HV final pop (mean)"] / rows[1]["HV final pop (mean)"] - 1
    print_table(rows, f"NSGA-II on ZDT1 (30 var), {args.evals} evaluations, pop {args.pop}, {args.seeds} seeds, ref (1.1, 1.1)")
    print(f"\nworkbench vs pymoo, final-population hypervolume: {100 * gap:+.2f}%")


if __name__ == "__main__":
    main()
