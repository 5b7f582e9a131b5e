"""Demo campaign: NSGA-II against Sobol random search on ZDT1 and DTLZ2, 3 seeds each.

    workbench run studies/demo.py [--workers 2]

Writes runs/demo.db (resumable: run it again and nothing is recomputed) and, in
runs/demo/, the hypervolume comparison (compare.csv), hypervolume traces and Pareto
front plots per problem.
"""

import workbench as wb
from domains.benchmarks import DTLZ2, ZDT1
from optimizers import NSGA2, RandomSearch

campaign = wb.Campaign("demo", storage="sqlite:///runs/demo.db")
optimizers = {"nsga2": NSGA2(pop_size=100), "random": RandomSearch(method="sobol", batch_size=100)}
campaign.grid(ZDT1(n_var=30), optimizers, seeds=range(3), budget=5000)
campaign.grid(DTLZ2(n_obj=3), optimizers, seeds=range(3), budget=5000)

if __name__ == "__main__":
    campaign.run()
    print(campaign.compare().to_string(index=False))
    for path in campaign.report("runs/demo").values():
        print(f"wrote {path}")
