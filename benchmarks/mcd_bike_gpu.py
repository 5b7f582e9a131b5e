"""Counterfactuals on the bike frame case with a large population, on CUDA and on the CPU.

    python benchmarks/mcd_bike_gpu.py [--pop 10000] [--generations 20] [--devices cuda,cpu]

The "lighter" case of studies/bike_counterfactuals.py (>= 20% lighter, safety factors >= 1.5, every
geometric check, the query's rider fit, material frozen) with population 10,000: wall time, evaluations,
feasible designs found and the quality of the 10 returned counterfactuals.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))
from _table import print_table  # noqa: E402
from bike_counterfactuals import fit_bounds, pick_query, typical_frames  # noqa: E402

import workbench as wb  # noqa: E402
from domains.bicycles import CHECKS, BikeFrame  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pop", type=int, default=10_000)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--devices", default="cuda,cpu")
    args = parser.parse_args()
    rows = []
    for device in args.devices.split(","):
        probe = BikeFrame(objectives=("mass",), max_spread=0.06, bounds="typical")
        query, predicted = pick_query("lighter", probe)
        fit = fit_bounds(probe, query)
        domain = BikeFrame(objectives=("mass",), max_spread=0.06, bounds="typical", fit=fit)
        targets = {"mass": (None, 0.8 * float(predicted["mass"])), "planar_safety_factor": (1.5, None),
                   "eccentric_safety_factor": (1.5, None), "mass_spread": (None, 0.06),
                   **{name: (None, 0.0) for name in CHECKS},
                   **{name if hi is not None else f"min_{name}": (lo, hi) for name, (lo, hi) in fit.items()}}
        started = time.perf_counter()
        cfs = wb.counterfactuals(domain, query, targets, n=10, freeze=["Material"], pop_size=args.pop,
                                 generations=args.generations, seed=0, device=device,
                                 dataset=typical_frames(domain, domain.dataset()))
        wall = time.perf_counter() - started
        ok = cfs.filter(like="_satisfied").all(axis=1)
        rows.append({"device": device, "pop": args.pop, "generations": args.generations, "wall s": wall,
                     "evaluations": cfs.attrs["evaluations"], "feasible found": cfs.attrs["feasible"],
                     "returned": len(cfs), "valid": int(ok.sum()), "gower": float(cfs["gower"].mean()),
                     "changed": float(cfs["changed"].mean()), "manifold": float(cfs["manifold"].mean()),
                     "diversity": cfs.attrs["diversity"]})
        print(rows[-1], flush=True)
    print_table(rows, "bike frame counterfactuals at a large population")


if __name__ == "__main__":
    main()
