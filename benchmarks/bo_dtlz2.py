"""qLogNEHVI vs random search (and NSGA-II) on DTLZ2 with 3 objectives and 100 evaluations.

    python benchmarks/bo_dtlz2.py [--evals 100] [--seeds 5] [--q 4] [--jobs 1]

Hypervolume of all designs each study evaluated, at the standard reference point 1.1 (the
true front's hypervolume is 1.331 - pi/6 = 0.8074) and at 2.0 (where random search also
scores), mean and std over seeds, plus wall time per study. ``--jobs`` runs studies in
parallel processes (each with one torch thread).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

import workbench as wb  # noqa: E402
from domains.benchmarks import DTLZ2  # noqa: E402
from optimizers import NSGA2, QLogNEHVI, RandomSearch  # noqa: E402

LABELS = ["qlognehvi", "random (uniform)", "random (sobol)", "nsga2 (pop 20)"]


def make(label: str, q: int) -> wb.Optimizer:
    return {"qlognehvi": lambda: QLogNEHVI(q=q), "random (uniform)": lambda: RandomSearch(batch_size=q),
            "random (sobol)": lambda: RandomSearch(method="sobol", batch_size=q),
            "nsga2 (pop 20)": lambda: NSGA2(pop_size=20)}[label]()


def one(label: str, seed: int, evals: int, q: int, threads: int) -> tuple[str, int, float, float, float]:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        study = wb.Study(DTLZ2(n_obj=3), make(label, q), storage=f"sqlite:///{tmp}/bo.db", name="s", seed=seed,
                         device="cpu")
        study.run(evals, progress=False)
        wall = time.perf_counter() - started
        result = (label, seed, study.hypervolume([1.1] * 3), study.hypervolume([2.0] * 3), wall)
    print(f"{label} seed {seed}: HV(1.1) {result[2]:.4f}, HV(2.0) {result[3]:.4f} in {wall:.1f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--q", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    tasks = [(label, seed) for label in LABELS for seed in range(args.seeds)]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, *zip(*tasks), *[[v] * len(tasks) for v in (args.evals, args.q, threads)]))
    rows = []
    for label in LABELS:
        r = np.array([res[2:] for res in results if res[0] == label])
        rows.append({"optimizer": label, "HV@1.1 mean": r[:, 0].mean(), "HV@1.1 std": r[:, 0].std(ddof=1),
                     "HV@2.0 mean": r[:, 1].mean(), "HV@2.0 std": r[:, 1].std(ddof=1), "seeds": len(r),
                     "wall s / study": r[:, 2].mean()})
    print_table(rows, f"DTLZ2 (3 objectives, 12 variables), {args.evals} evaluations, q={args.q}")


if __name__ == "__main__":
    main()
