"""Demo campaign: bicycle frames, mass against planar compliance, NSGA-II against Sobol random search, 3 seeds each.

    workbench run studies/demo.py [--workers 2]

The frame domain of ``studies/bike_pareto.py`` (the FEA surrogate of the FRAMED frames, safety factors >= 1.5,
every buildability check, one rider's fit), at 4,000 evaluations per study: under a minute on 2 CPU cores.
Writes runs/demo.db (resumable: run it again and nothing is recomputed) and, in runs/demo/, the hypervolume
comparison (compare.csv), hypervolume traces and Pareto front plots, and report.html: one self-contained page with
the tables, interactive fronts and drawings of the best frames (open it in a browser; it needs no network).
"""

import workbench as wb
from domains.bicycles import MEDIUM_ROAD_FIT, BikeFrame
from optimizers import NSGA2, RandomSearch

campaign = wb.Campaign("demo", storage="sqlite:///runs/demo.db")
frames = BikeFrame(objectives=("mass", "planar_compliance"), bounds="typical", max_spread=0.06, fit=MEDIUM_ROAD_FIT)
campaign.grid(frames, {"nsga2": NSGA2(pop_size=100), "random": RandomSearch(method="sobol", batch_size=100)},
              seeds=range(3), budget=4000)

if __name__ == "__main__":
    campaign.run()
    print(campaign.compare().to_string(index=False))
    written = {**campaign.report("runs/demo"), **campaign.report("runs/demo/report.html", format="html")}
    for path in written.values():
        print(f"wrote {path}")
