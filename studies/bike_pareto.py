"""Bicycle frames: mass against planar compliance, for frames that are safe and can be built.

    workbench run studies/bike_pareto.py [--budget 4000] [--seeds 5] [--optimizers nsga2,random] [--out runs/bike_pareto]
    workbench run studies/bike_pareto.py --optimizers qlognehvi --budget 160 --seeds 2   # Bayesian optimization, slow

NSGA-II (population 100) and Sobol random search, 5 seeds each, on the FEA surrogate of the FRAMED frames
under: both safety factors >= 1.5, every geometric check of BikeFrame (700c wheels and a road fork:
wheels that clear each other and the tubes, tubes that meet, walls inside their tubes, pedals above the
ground), the trust constraint mass_spread <= 0.06 that keeps the search where the surrogate is
credible, and one rider's fit (``MEDIUM_ROAD_FIT``: a 0.70 m saddle height that the seat tube allows, the stack and
reach of a medium road frame, a road fork's length), so that "lighter" cannot mean "smaller". About a minute on 2 CPU cores; the study prints its own run time. qLogNEHVI is opt-in: it is
meant for budgets of a few hundred expensive evaluations, and costs tens of seconds per batch of 8 on 2
cores here (printed before it starts).

Writes <out>.db, <out>/compare.csv, the hypervolume traces and fronts of the campaign report, and
<out>/front.png: every feasible design of the NSGA-II studies (the front of all seeds bold), infeasible
designs faint, axes scaled to the feasible ones, and 4 frames along the front drawn to scale.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import workbench as wb  # noqa: E402
from domains.bicycles import MEDIUM_ROAD_FIT, BikeFrame  # noqa: E402
from optimizers import NSGA2, QLogNEHVI, RandomSearch  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--budget", type=int, default=4000)
parser.add_argument("--seeds", type=int, default=5)
parser.add_argument("--optimizers", default="nsga2,random")
parser.add_argument("--out", default="runs/bike_pareto", help="database <out>.db and report folder <out>/")
args, _ = parser.parse_known_args()
optimizers = {"nsga2": NSGA2(pop_size=100), "random": RandomSearch(method="sobol", batch_size=100),
              "qlognehvi": QLogNEHVI(q=8, n_init=40, num_restarts=2, raw_samples=128)}
chosen = args.optimizers.split(",")
unknown = set(chosen) - set(optimizers)
if unknown:
    raise SystemExit(f"unknown optimizers {sorted(unknown)}; choose from {sorted(optimizers)}")

DOMAIN = BikeFrame(objectives=("mass", "planar_compliance"), bounds="typical", max_spread=0.06, fit=MEDIUM_ROAD_FIT)
campaign = wb.Campaign("bike-pareto", storage=f"sqlite:///{args.out}.db")
campaign.grid(DOMAIN, {k: optimizers[k] for k in chosen}, seeds=range(args.seeds), budget=args.budget)


def feasible_designs(label: str) -> pd.DataFrame:
    """Every feasible design of the studies of one optimizer, with its objectives."""
    parts = []
    for name, entry in campaign.entries.items():
        if entry.label == label:
            frame = campaign.results(name).frame()
            parts.append(frame[frame["feasible"]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def front_figure(path: Path, label: str = "nsga2") -> int:
    """Scatter of one optimizer's designs with the front of all its seeds, and 4 frames along that front."""
    studies = [campaign.results(n) for n, e in campaign.entries.items() if e.label == label]
    designs = feasible_designs(label)
    fig = plt.figure(figsize=(12, 5.2))
    ax = fig.add_axes([0.06, 0.1, 0.42, 0.8])
    wb.plot_pareto(studies, ax=ax, labels=[f"seed {s}" for s in range(len(studies))], title=None)
    points = designs[["mass", "planar_compliance"]].to_numpy()
    front = designs[wb.pareto.is_nondominated(torch.as_tensor(points)).numpy()].sort_values("mass")
    ax.plot(front["mass"], front["planar_compliance"], "k-", lw=2, label=f"front of all seeds ({len(front)})")
    ax.legend(fontsize="x-small", loc="upper right")
    ax.set_xlim(0.9 * front["mass"].min(), 1.3 * front["mass"].max())  # the front's region
    ax.set_ylim(0.0, 2.5 * front["planar_compliance"].max())
    ax.set_title(f"{label}: {len(designs)} feasible frames, {len(front)} on the front", fontsize=10)
    picks = front.iloc[np.linspace(0, len(front) - 1, 4).round().astype(int)] if len(front) >= 4 else front
    for k, (_, row) in enumerate(picks.iterrows()):
        sub = fig.add_axes([0.52 + 0.24 * (k % 2), 0.52 - 0.45 * (k // 2), 0.23, 0.42])
        DOMAIN.render(row[DOMAIN.space.names].to_frame().T, ax=sub, labels=[""])
        sub.set_title(f"{row['mass']:.2f} kg, compliance {row['planar_compliance']:.2f}, {row['Material']}", fontsize=8)
        ax.annotate(str(k + 1), (row["mass"], row["planar_compliance"]), xytext=(4, 4), textcoords="offset points",
                    fontsize=8, weight="bold")
    wb.save(fig, path)
    return len(front)


if __name__ == "__main__":
    started = time.perf_counter()
    if "qlognehvi" in chosen:
        print(f"qLogNEHVI: {args.seeds} studies of {args.budget} evaluations in batches of 8; about 40 s per batch "
              f"on 2 CPU cores, so roughly {args.seeds * max(args.budget - 40, 0) / 8 * 40 / 60:.0f} minutes")
    campaign.run()
    print(campaign.compare().to_string(index=False))
    out = Path(args.out)
    for path in campaign.report(out).values():
        print(f"wrote {path}")
    if "nsga2" in chosen:
        n_front = front_figure(out / "front.png")
        print(f"wrote {out / 'front.png'} ({n_front} NSGA-II frames on the front)")
    print(f"bike_pareto finished in {time.perf_counter() - started:.1f} s")
