"""Bicycle frames: mass against planar compliance under the safety and validity constraints.

    workbench run studies/bike_pareto.py [--workers 4] [--budget 160] [--seeds 5] [--optimizers nsga2,random]
                                         [--out runs/bike_pareto]

NSGA-II, qLogNEHVI and random search, 5 seeds each, on the FEA surrogate of the BIKED / FRAMED
frames (both safety factors >= 1.5, validity >= 0.5, and the trust constraint mass_spread <= 0.06
that keeps the search where the surrogate is credible; see BikeFrame). Stores the studies in <out>.db and
writes <out>/compare.csv and the hypervolume traces and Pareto fronts of the optimizers (<out>/*.png). The
budget is that of expensive evaluations, where Bayesian optimization is meant to help; the
hypervolume reference point is inferred from all studies together.
"""

import argparse

import workbench as wb
from domains.bicycles import BikeFrame
from optimizers import NSGA2, QLogNEHVI, RandomSearch

parser = argparse.ArgumentParser()
parser.add_argument("--budget", type=int, default=160)
parser.add_argument("--seeds", type=int, default=5)
parser.add_argument("--optimizers", default="nsga2,qlognehvi,random")
parser.add_argument("--out", default="runs/bike_pareto", help="database <out>.db and report folder <out>/")
args, _ = parser.parse_known_args()
optimizers = {"nsga2": NSGA2(pop_size=20), "qlognehvi": QLogNEHVI(q=8, n_init=40, num_restarts=2, raw_samples=128),
              "random": RandomSearch(method="sobol", batch_size=20)}
unknown = set(args.optimizers.split(",")) - set(optimizers)
if unknown:
    raise SystemExit(f"unknown optimizers {sorted(unknown)}; choose from {sorted(optimizers)}")

campaign = wb.Campaign("bike-pareto", storage=f"sqlite:///{args.out}.db")
campaign.grid(BikeFrame(objectives=("mass", "planar_compliance"), bounds="typical", max_spread=0.06),
              {k: v for k, v in optimizers.items() if k in args.optimizers.split(",")},
              seeds=range(args.seeds), budget=args.budget)

if __name__ == "__main__":
    campaign.run()
    print(campaign.compare().to_string(index=False))
    for path in campaign.report(args.out).values():
        print(f"wrote {path}")
