"""The MCD paper's frame case: counterfactuals for a real frame that misses its targets.

    workbench run studies/bike_counterfactuals.py [--device cuda] [--pop 100] [--generations 100]

Query: the first frame of the test split whose predicted planar or eccentric safety factor is
below 1.5. Targets: at least 20% lighter than the query, both safety factors >= 1.5, a valid
geometry (probability >= 0.5) and a credible prediction (ensemble spread of the mass <= 6%, see
BikeFrame), with the material frozen. Writes
runs/bike_counterfactuals/counterfactuals.csv and counterfactuals.png (the query and the
counterfactuals drawn side by side with their mass and safety factors).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import workbench as wb  # noqa: E402
from domains.bicycles import BikeFrame, load_structure  # noqa: E402

OUT = Path("runs/bike_counterfactuals")


def typical_frames(domain: BikeFrame, frames):
    """The frames that lie inside the domain's (typical) bounds."""
    bad = domain.space.invalid_rows(domain.space.from_frame(frames))
    return frames.drop(index=frames.index[list(bad)])


def pick_query(domain: BikeFrame):
    """First typical test frame whose predicted safety factors miss 1.5."""
    test_x = typical_frames(domain, load_structure("test")[0])
    predicted = domain.predict(test_x)
    misses = (predicted["planar_safety_factor"] < 1.5) | (predicted["eccentric_safety_factor"] < 1.5)
    row = int(misses.to_numpy().nonzero()[0][0])
    return test_x.iloc[row], predicted.iloc[row]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pop", type=int, default=100)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # typical bounds: the data's far outliers (a stack of 500 m) would otherwise set the Gower ranges,
    # and large geometric changes would count as small ones
    domain = BikeFrame(objectives=("mass",), max_spread=0.06, bounds="typical")
    query, predicted = pick_query(domain)
    targets = {"mass": (None, 0.8 * float(predicted["mass"])), "planar_safety_factor": (1.5, None),
               "eccentric_safety_factor": (1.5, None), "validity": (0.5, None), "mass_spread": (None, 0.06)}
    print(f"query frame {query.name}: {query['Material']}, mass {predicted['mass']:.2f} kg, safety factors "
          f"{predicted['planar_safety_factor']:.2f} / {predicted['eccentric_safety_factor']:.2f}")
    cfs = wb.counterfactuals(domain, query, targets, n=args.n, freeze=["Material"], pop_size=args.pop,
                             generations=args.generations, seed=args.seed, device=args.device,
                             dataset=typical_frames(domain, domain.dataset()))
    print(cfs.attrs["message"])
    OUT.mkdir(parents=True, exist_ok=True)
    cfs.to_csv(OUT / "counterfactuals.csv", index=False)
    if len(cfs) == 0:
        return
    shown = ["mass", "planar_safety_factor", "eccentric_safety_factor", "validity", "gower", "changed", "manifold"]
    print(cfs[shown].round(3).to_string())

    designs = [query.to_frame().T] + [cfs.iloc[[i]] for i in range(len(cfs))]
    labels = [f"query: {predicted['mass']:.2f} kg\nSF {predicted['planar_safety_factor']:.2f} / "
              f"{predicted['eccentric_safety_factor']:.2f}"]
    labels += [f"#{i + 1}: {r.mass:.2f} kg, {int(r.changed)} changed\nSF {r.planar_safety_factor:.2f} / "
               f"{r.eccentric_safety_factor:.2f}" for i, r in enumerate(cfs.itertuples())]
    cols = 4
    rows = -(-len(designs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, design, label in zip(axes.flat, designs, labels):
        domain.render(design[domain.space.names], ax=ax, labels=[""])
        ax.set_title(label, fontsize=8)
    fig.suptitle(f"Counterfactuals for frame {query.name}: >= 20% lighter, safety factors >= 1.5, material frozen",
                 fontsize=10)
    path = wb.save(fig, OUT / "counterfactuals.png")
    print(f"wrote {path} and {OUT / 'counterfactuals.csv'}")


if __name__ == "__main__":
    main()
