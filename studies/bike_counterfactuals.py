"""The MCD paper's frame cases: counterfactuals for a real frame, that can be built and still fit its rider.

    workbench run studies/bike_counterfactuals.py [--device cuda] [--pop 100] [--generations 100] [--out DIR]

Two queries, as in Regenwetter et al. ("Counterfactuals for Design"), on buildable test frames:

- **lighter**: the first frame of the test split whose predicted planar or eccentric safety factor is
  below 1.5; targets: at least 20% lighter, both safety factors >= 1.5;
- **stiffer**: the first test frame with a planar compliance above the test frames' median that the surrogate
  predicts confidently (ensemble spread below 5%); targets: planar compliance at least 20% lower at no more
  mass, both safety factors >= 1.5, and a compliance spread <= 8% (the 90th percentile of real frames:
  without it the search finds "stiffer" frames where the ensemble disagrees, from a 1 mm change).

Both also require a credible prediction (ensemble spread of the mass <= 6%, see BikeFrame), every geometric
check of BikeFrame (wheels that clear each other and the tubes, tubes that meet, walls inside their tubes,
pedals above the ground; 700c road wheels), and the query's rider fit: stack and reach within 10 mm, and a
saddle-height range that still holds the query's (within 20 mm), so that "lighter" cannot mean "smaller".
The material is frozen. Every returned design is then checked independently: its axles are at least two
wheel radii plus 10 mm apart and its front tyre clears the down tube. Writes <out>/<query>.csv and
<out>/<query>.png (the counterfactuals drawn over the query, faint).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import workbench as wb  # noqa: E402
from domains.bicycles import CHECKS, BikeFrame, frame_points, load_structure  # noqa: E402

FIT_TOLERANCE = {"stack": 0.01, "reach": 0.01, "saddle": 0.02}  # metres


def typical_frames(domain: BikeFrame, frames):
    """The frames that lie inside the domain's (typical) bounds and pass its geometric checks."""
    bad = domain.space.invalid_rows(domain.space.from_frame(frames))
    frames = frames.drop(index=frames.index[list(bad)])
    return frames[domain.geometry(frames)["buildable"].to_numpy()]


def pick_query(kind: str, domain: BikeFrame):
    """(query row, its predicted properties) for the ``lighter`` or ``stiffer`` case."""
    test_x = typical_frames(domain, load_structure("test")[0])
    predicted = domain.predict(test_x)
    if kind == "lighter":
        hits = (predicted["planar_safety_factor"] < 1.5) | (predicted["eccentric_safety_factor"] < 1.5)
    else:
        spread = predicted["planar_compliance_std"] / predicted["planar_compliance"]
        hits = ((predicted["planar_compliance"] > predicted["planar_compliance"].median()) & (spread < 0.05)
                & (predicted["planar_safety_factor"] >= 1.5) & (predicted["eccentric_safety_factor"] >= 1.5))
    row = int(hits.to_numpy().nonzero()[0][0])
    return test_x.iloc[row], predicted.iloc[row]


def fit_bounds(domain: BikeFrame, query) -> dict:
    """The query's rider fit, with the tolerance a rider would not notice."""
    geo = domain.geometry(query.to_frame().T).iloc[0]
    t = FIT_TOLERANCE
    return {"stack": (geo["stack"] - t["stack"], geo["stack"] + t["stack"]),
            "reach": (geo["reach"] - t["reach"], geo["reach"] + t["reach"]),
            "saddle_height_min": (None, geo["saddle_height_min"] + t["saddle"]),
            "saddle_height_max": (geo["saddle_height_max"] - t["saddle"], None)}


def independent_check(domain: BikeFrame, designs) -> np.ndarray:
    """Per design: axles at least 2 wheel radii + 10 mm apart, and the front tyre clears the down tube
    (distance from the front axle to the down tube's segment >= radius + half its diameter)."""
    params = domain.parameters_of(designs)
    pts = frame_points(params, domain.build)
    r = domain.build.radius
    axles = (pts["front_axle"] - pts["rear_axle"]).norm(dim=1) >= 2 * r + 0.010
    a, b, p = pts["bb"], pts["dt_top"], pts["front_axle"]
    t = (((p - a) * (b - a)).sum(1) / ((b - a) ** 2).sum(1)).clamp(0, 1)
    gap = (p - (a + t[:, None] * (b - a))).norm(dim=1) - r - params["DT OD"] / 2
    return (axles & (gap >= 0)).numpy()


def run_case(kind: str, args: argparse.Namespace, out: Path) -> None:
    objectives = ("mass",) if kind == "lighter" else ("mass", "planar_compliance")
    spreads = {"mass": 0.06} if kind == "lighter" else {"mass": 0.06, "planar_compliance": 0.08}
    # typical bounds: the data's far outliers (a stack of 500 m) would otherwise set the Gower ranges,
    # and large geometric changes would count as small ones
    probe = BikeFrame(objectives=objectives, max_spread=spreads, bounds="typical")
    query, predicted = pick_query(kind, probe)
    fit = fit_bounds(probe, query)
    domain = BikeFrame(objectives=objectives, max_spread=spreads, bounds="typical", fit=fit)
    targets = {"planar_safety_factor": (1.5, None), "eccentric_safety_factor": (1.5, None),
               **{f"{p}_spread": (None, limit) for p, limit in spreads.items()}, **{name: (None, 0.0) for name in CHECKS},
               **{name if hi is not None else f"min_{name}": (lo, hi) for name, (lo, hi) in fit.items()}}
    if kind == "lighter":
        targets["mass"] = (None, 0.8 * float(predicted["mass"]))
        goal = ">= 20% lighter"
    else:
        targets["planar_compliance"] = (None, 0.8 * float(predicted["planar_compliance"]))
        targets["mass"] = (None, float(predicted["mass"]))
        goal = ">= 20% stiffer (planar), no heavier"
    print(f"{kind}: query frame {query.name}: {query['Material']}, mass {predicted['mass']:.2f} kg, planar compliance "
          f"{predicted['planar_compliance']:.3f}, safety factors {predicted['planar_safety_factor']:.2f} / "
          f"{predicted['eccentric_safety_factor']:.2f}")
    cfs = wb.counterfactuals(domain, query, targets, n=args.n, freeze=["Material"], pop_size=args.pop,
                             generations=args.generations, seed=args.seed, device=args.device,
                             dataset=typical_frames(domain, domain.dataset()))
    print(cfs.attrs["message"])
    cfs.to_csv(out / f"{kind}.csv", index=False)
    if len(cfs) == 0:
        return
    passed = independent_check(domain, cfs[domain.space.names])
    print(f"independent check (axles >= 2 radii + 10 mm apart, front tyre clears the down tube): "
          f"{int(passed.sum())} of {len(cfs)} pass")
    shown = ["mass", "planar_compliance", "planar_safety_factor", "eccentric_safety_factor", "gower", "changed"]
    print(cfs[[c for c in shown if c in cfs]].round(3).to_string())

    designs = [query.to_frame().T] + [cfs.iloc[[i]] for i in range(len(cfs))]
    props = domain.predict(query.to_frame().T[domain.space.names]).iloc[0]
    labels = [f"query: {props['mass']:.2f} kg, compl. {props['planar_compliance']:.2f}\nSF "
              f"{props['planar_safety_factor']:.2f} / {props['eccentric_safety_factor']:.2f}"]
    compliance = domain.predict(cfs[domain.space.names])["planar_compliance"].to_numpy()
    labels += [f"#{i + 1}: {r.mass:.2f} kg, compl. {compliance[i]:.2f}, {int(r.changed)} changed\n"
               f"SF {r.planar_safety_factor:.2f} / {r.eccentric_safety_factor:.2f}" for i, r in enumerate(cfs.itertuples())]
    cols = 4
    rows = -(-len(designs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows))
    for ax in np.atleast_1d(axes).flat:
        ax.axis("off")
    for i, (ax, design, label) in enumerate(zip(np.atleast_1d(axes).flat, designs, labels)):
        ghost = None if i == 0 else query.to_frame().T[domain.space.names]
        domain.render(design[domain.space.names], ax=ax, labels=[""], ghost=ghost)
        ax.set_title(label, fontsize=8)
    fig.suptitle(f"Counterfactuals for frame {query.name} (grey: the query): {goal}, safety factors >= 1.5, "
                 "buildable, same fit, material frozen", fontsize=9)
    path = wb.save(fig, out / f"{kind}.png")
    print(f"wrote {path} and {out / f'{kind}.csv'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pop", type=int, default=100)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default="lighter,stiffer")
    parser.add_argument("--out", default="runs/bike_counterfactuals")
    args, _ = parser.parse_known_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for kind in args.cases.split(","):
        if kind not in ("lighter", "stiffer"):
            raise SystemExit(f"unknown case {kind!r}; choose from lighter, stiffer")
        run_case(kind, args, out)


if __name__ == "__main__":
    main()
