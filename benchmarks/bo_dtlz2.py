"""qLogNEHVI vs random search (and NSGA-II) on DTLZ2 with 3 objectives and 100 evaluations.

    python benchmarks/bo_dtlz2.py [--evals 100] [--seeds 5] [--q 4] [--device cpu|cuda]

Hypervolume (ref 1.1 each, the true front's hypervolume is 1.331 - pi/6 = 0.8074) of
all feasible designs each study evaluated, mean and std over seeds, plus wall time.
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
from domains.benchmarks import DTLZ2  # noqa: E402
from optimizers import NSGA2, QLogNEHVI, RandomSearch  # noqa: E402

REF = [1.1, 1.1, 1.1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--q", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    makers = {
        "qlognehvi": lambda: QLogNEHVI(q=args.q),
        "random (uniform)": lambda: RandomSearch(batch_size=args.q),
        "random (sobol)": lambda: RandomSearch(method="sobol", batch_size=args.q),
        "nsga2 (pop 20)": lambda: NSGA2(pop_size=20),
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in makers.items():
            hvs, walls = [], []
            for seed in range(args.seeds):
                started = time.perf_counter()
                study = wb.Study(DTLZ2(n_obj=3), make(), storage=f"sqlite:///{tmp}/bo.db", name=f"{label}-{seed}",
                                 seed=seed, device=args.device)
                study.run(args.evals, progress=False)
                walls.append(time.perf_counter() - started)
                hvs.append(study.hypervolume(REF))
                print(f"{label} seed {seed}: HV {hvs[-1]:.4f} in {walls[-1]:.1f} s", flush=True)
            rows.append({"optimizer": label, "HV mean": float(np.mean(hvs)), "HV std": float(np.std(hvs, ddof=1)),
                         "seeds": args.seeds, "wall s / study": float(np.mean(walls))})
    print_table(rows, f"DTLZ2 (3 objectives, 12 variables), {args.evals} evaluations, q={args.q}, ref 1.1")


if __name__ == "__main__":
    main()
