"""Airfoils under NeuralFoil: search on the Kulfan parameters against reward-guided sampling of a diffusion prior.

    python studies/airfoils.py --scale cpu            # 3 seeds, a few minutes on 1-2 CPU cores
    python studies/airfoils.py --scale full           # 5 seeds, bigger budgets (GPU, or a longer CPU run)
    workbench run studies/airfoils.py --scale cpu     # the same through the CLI

One task: maximize L/D and max thickness of a section trimmed to CL 0.6 at Re 5e5 (``Airfoil``), subject to
thickness >= 8% chord, a spar area (15-50% chord) >= 0.02 c^2, no crossing surfaces, NeuralFoil confidence
>= 0.9, the trim reaching the lift (|CL - 0.6| <= 0.01) and CM >= -0.15. NeuralFoil "xsmall" is the reward;
every number reported comes from "xxxlarge" (held-out), including feasibility.

Methods, each on ``--seeds`` seeds; "evaluations" are NeuralFoil reward-model calls per design (the samplers'
intermediate rewards included), the same for the methods of one budget:
  - on the 18 Kulfan parameters (box: the database's mean +- 4 std): ``nsga2`` at the samplers' evaluations,
    ``nsga2_near`` the same with a constraint that keeps designs near the database (distance to the nearest
    training airfoil, standardized, at most the held-out airfoils' 99th percentile); ``qlognehvi`` and
    ``nsga2_small`` at a budget Bayesian optimization can afford (``svdd_small``: SVDD-PM at that budget too);
  - on the prior (standardized parameters): ``best_of_n`` (N = M T + 1 draws per design), ``svdd`` (SVDD-PM, M
    candidates per step), ``drakes`` (fine-tuning whose reward calls match), ``pretrained`` (plain samples, no
    reward: the prior's own quality).
"Airfoil-like" (``like_from_table``): surfaces that do not cross, thickness within the database's range, xxxlarge
confident (>= 0.9) and near the database as above.
Writes runs/airfoils/<scale>/: airfoils.db (SQLite), studies.csv, designs.csv (every design with reward and
held-out scores), table.md (ranges over seeds), classics.md, front.png, outlines.png, heldout.png.
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
from domains.shapes.airfoil_data import CLASSICS, load_database  # noqa: E402
from domains.shapes.airfoil_prior import near_threshold  # noqa: E402
from domains.shapes.airfoils import HELDOUT_MODEL, Airfoil, draw_sections, like_from_table  # noqa: E402
from domains.shapes.sections import contour  # noqa: E402
from optimizers import NSGA2, QLogNEHVI  # noqa: E402
from optimizers.guidance import DRAKES, SVDD, BestOfN, Pretrained  # noqa: E402
from workbench.tables import markdown  # noqa: E402

SCALES = {
    # n designs per sampler study, T denoising steps, M SVDD candidates: the samplers and nsga2 get n (M T + 1)
    # evaluations; qLogNEHVI (bo_* settings) and nsga2_small get bo_budget, svdd_small (n, M, T) = bo_svdd: about
    # as many, n (M T + 1)
    "cpu": {"seeds": 3, "n": 16, "steps": 20, "candidates": 8, "pop": 64, "drakes_batch": 64, "truncate": 5,
            "bo_budget": 32, "bo_q": 8, "bo_init": 16, "bo_restarts": 1, "bo_raw": 32, "bo_mc": 32,
            "bo_svdd": (1, 3, 10)},
    "full": {"seeds": 5, "n": 64, "steps": 50, "candidates": 16, "pop": 200, "drakes_batch": 128, "truncate": 10,
             "bo_budget": 160, "bo_q": 8, "bo_init": 40, "bo_restarts": 2, "bo_raw": 128, "bo_mc": 64,
             "bo_svdd": (2, 4, 20)},
    # the tests' setting: every method end to end in seconds
    "tiny": {"seeds": 1, "n": 4, "steps": 4, "candidates": 2, "pop": 12, "drakes_batch": 4, "truncate": 2,
             "bo_budget": 8, "bo_q": 2, "bo_init": 6, "bo_restarts": 1, "bo_raw": 16, "bo_mc": 16,
             "bo_svdd": (1, 2, 3)},
}
WEIGHTS = [0.01, 2.0]  # sampler reward: L/D / 100 + 2 x thickness (constraint penalties: the Reward's 10 x violation)
METHODS = ("nsga2", "nsga2_near", "nsga2_small", "qlognehvi", "pretrained", "best_of_n", "svdd", "svdd_small",
           "drakes")
SETTINGS = {"cl": 0.6, "Re": 5e5}
MIN_THICKNESS = 0.08
HV_REF = (-40.0, -MIN_THICKNESS)  # minimized (-L/D, -thickness): L/D 40 at 8% chord

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
parser.add_argument("--seeds", type=int, default=None, help="default: the scale's")
parser.add_argument("--methods", default=",".join(METHODS))
parser.add_argument("--out", default="runs/airfoils")
parser.add_argument("--score-only", action="store_true", help="score the stored studies without running more")
args, _ = parser.parse_known_args()
cfg = SCALES[args.scale]
seeds = range(cfg["seeds"] if args.seeds is None else args.seeds)
chosen = args.methods.split(",")
unknown = sorted(set(chosen) - set(METHODS))
if unknown:
    raise SystemExit(f"unknown methods {unknown}; choose from {METHODS}")
n, steps, m = cfg["n"], cfg["steps"], cfg["candidates"]
evaluations = n * (m * steps + 1)  # SVDD-PM: M candidates scored at each of T steps, plus the stored design
small_evaluations = cfg["bo_svdd"][0] * (cfg["bo_svdd"][1] * cfg["bo_svdd"][2] + 1)

PARAMETERS = Airfoil(encoding="parameters", min_thickness=MIN_THICKNESS, **SETTINGS)
PRIOR = Airfoil(encoding="standardized", min_thickness=MIN_THICKNESS, **SETTINGS)
# NSGA-II kept near the data: distance to the nearest training airfoil <= the held-out airfoils' 99th percentile
NEAR = Airfoil(encoding="parameters", min_thickness=MIN_THICKNESS, near_database=near_threshold(), **SETTINGS)
HELDOUT = PARAMETERS.with_model(HELDOUT_MODEL)
HELDOUT.device = str(wb.resolve_device("auto"))  # held-out scoring of every design: on the GPU if there is one


def methods() -> dict[str, tuple[Airfoil, object, int]]:
    """label -> (domain, optimizer, stored designs)."""
    common = {"steps": steps, "batch_size": n, "weights": WEIGHTS}
    iterations = max(1, round((evaluations - n) / cfg["drakes_batch"]))
    small_n, small_m, small_steps = cfg["bo_svdd"]
    return {
        "nsga2": (PARAMETERS, NSGA2(pop_size=cfg["pop"]), evaluations),
        "nsga2_near": (NEAR, NSGA2(pop_size=cfg["pop"]), evaluations),
        "nsga2_small": (PARAMETERS, NSGA2(pop_size=cfg["bo_q"] * 2), cfg["bo_budget"]),
        "qlognehvi": (PARAMETERS, QLogNEHVI(q=cfg["bo_q"], n_init=cfg["bo_init"], num_restarts=cfg["bo_restarts"],
                                                  raw_samples=cfg["bo_raw"], mc_samples=cfg["bo_mc"]),
                      cfg["bo_budget"]),
        "pretrained": (PRIOR, Pretrained(**common), n),
        "best_of_n": (PRIOR, BestOfN(n_samples=m * steps, **common), n),
        "svdd": (PRIOR, SVDD(n_candidates=m, value="pm", **common), n),
        "svdd_small": (PRIOR, SVDD(n_candidates=small_m, value="pm", steps=small_steps, batch_size=small_n,
                                   weights=WEIGHTS), small_n),
        "drakes": (PRIOR, DRAKES(iterations=iterations, train_batch=cfg["drakes_batch"], truncate=cfg["truncate"],
                                 kl_weight=1e-2, lr=1e-3, kl_samples=4, **common), n),
    }


out = Path(args.out) / args.scale
campaign = wb.Campaign(f"airfoils-{args.scale}", storage=f"sqlite:///{out}/airfoils.db")
for seed in seeds:
    for label, (dom, opt, budget) in methods().items():
        if label in chosen:
            campaign.add(dom, opt, seed=seed, budget=budget, label=label)


# ------------------------------------------------------------------------------------------------ scoring
def score() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per study (one row each) and per design (reward-model and held-out scores) tables."""
    studies, parts = [], []
    for name, entry, stored in campaign.finished():
        x = stored.designs()
        v = entry.domain.sections(x).numpy()
        frame = stored.frame().reset_index(drop=True)
        held = HELDOUT.table(v)
        like = like_from_table(held)
        designs = pd.DataFrame({"study": name, "method": entry.label, "seed": entry.seed, "batch": frame["batch"],
                                "reward_ld": frame["ld"], "reward_feasible": frame["feasible"],
                                "ld": held["ld"], "thickness": held["thickness"], "cm": held["cm"],
                                "confidence": held["confidence"], "feasible": held["feasible"],
                                "airfoil_like": like["airfoil_like"]})
        designs[[f"v{i}" for i in range(v.shape[1])]] = v
        parts.append(designs)
        feas = designs[designs.feasible]
        points = -feas[["ld", "thickness"]].to_numpy()
        hv = wb.pareto.hypervolume(points, list(HV_REF)) if len(points) else 0.0
        front = designs[designs.reward_feasible]
        if len(front):
            mask = wb.pareto.is_nondominated(torch.as_tensor(-front[["reward_ld", "thickness"]].to_numpy())).numpy()
            front = front[mask]
        counters = stored.counters()
        last = designs[designs.batch == designs.batch.max()]
        studies.append({
            "study": name, "method": entry.label, "seed": entry.seed,
            "evaluations": int(counters.get("reward_sequences", 0)) + len(designs),
            "denoiser_rows": int(counters.get("denoiser_sequences", 0)),
            "best_ld": feas["ld"].max() if len(feas) else np.nan,
            "best_ld_t12": feas[feas.thickness >= 0.12]["ld"].max() if (feas.thickness >= 0.12).any() else np.nan,
            "hypervolume": hv, "feasible": designs.feasible.mean(), "airfoil_like": designs.airfoil_like.mean(),
            "airfoil_like_last": last.airfoil_like.mean(),
            "reward_gap": float((front["reward_ld"] - front["ld"]).mean()) if len(front) else np.nan,
            "seconds": counters.get("optimizer_seconds", 0.0) + counters.get("evaluation_seconds", 0.0)})
    return pd.DataFrame(studies), pd.concat(parts, ignore_index=True)


def ranges(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method: the mean and the [min, max] over seeds of each metric."""
    cols = {"best_ld": 1, "best_ld_t12": 1, "hypervolume": 2, "feasible": "%", "airfoil_like": "%",
            "airfoil_like_last": "%", "reward_gap": 1, "seconds": 1}
    out = []
    for method, group in rows.groupby("method", sort=False):
        row = {"method": method, "seeds": len(group), "evaluations": int(group.evaluations.mean()),
               "denoiser_rows": int(group.denoiser_rows.mean())}
        for col, digits in cols.items():
            vals = group[col].dropna()
            if not len(vals):
                row[col] = "-"
            elif digits == "%":
                row[col] = f"{vals.mean():.0%} [{vals.min():.0%}, {vals.max():.0%}]"
            else:
                row[col] = f"{vals.mean():.{digits}f} [{vals.min():.{digits}f}, {vals.max():.{digits}f}]"
            if len(vals) < len(group) and len(vals):
                row[col] += f" ({len(vals)} seeds)"
        out.append(row)
    return pd.DataFrame(out)


def classics_table(designs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The classic airfoils (held-out) beside each method's best held-out-feasible design at least as thick,
    as a range over seeds; and the classics' own scores."""
    db = load_database()
    v = np.stack([db.vector(c) for c in CLASSICS])
    classic = HELDOUT.table(v).assign(name=list(CLASSICS))
    rows = []
    for _, c in classic.iterrows():
        row = {"airfoil": c["name"], "thickness": f"{c.thickness:.1%}", "L/D": f"{c.ld:.1f}",
               "CM": f"{c.cm:.3f}", "feasible": bool(c.feasible)}
        for method, group in designs.groupby("method", sort=False):
            best = [g[(g.feasible) & (g.thickness >= c.thickness)]["ld"].max() for _, g in group.groupby("seed")]
            best = [b for b in best if np.isfinite(b)]
            row[method] = f"{min(best):.1f}-{max(best):.1f} ({len(best)})" if best else "-"
        rows.append(row)
    return pd.DataFrame(rows), classic


# ------------------------------------------------------------------------------------------------ figures
def plot_front(designs: pd.DataFrame, classic: pd.DataFrame, path: Path) -> None:
    """Held-out L/D against thickness: every held-out-feasible design, the front of each method over all seeds,
    and the classics; the right panel zooms on the classics' region."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), width_ratios=[1.15, 1])
    for ax, zoom in zip(axes, (False, True)):
        for k, (method, group) in enumerate(designs.groupby("method", sort=False)):
            feas = group[group.feasible]
            if not len(feas):
                continue
            many = len(feas) > 500
            ax.scatter(feas.thickness, feas.ld, s=3 if many else 7, alpha=0.12 if many else 0.4, color=f"C{k}",
                       zorder=1 if many else 2)
            mask = wb.pareto.is_nondominated(torch.as_tensor(-feas[["ld", "thickness"]].to_numpy())).numpy()
            front = feas[mask].sort_values("thickness")
            ax.plot(front.thickness, front.ld, "-o", ms=3, lw=1.6, color=f"C{k}", zorder=3,
                    label=f"{method} ({len(feas)})")
        for _, c in classic.iterrows():
            ax.scatter([c.thickness], [c.ld], marker="*", s=170, color="k", zorder=5)
            ax.annotate(c["name"], (c.thickness, c.ld), xytext=(6, -12), textcoords="offset points", fontsize=8)
        ax.set_xlabel("max thickness / chord")
        if zoom:
            ax.set_xlim(MIN_THICKNESS - 0.005, 0.2)
            top = designs[designs.feasible].ld.max()
            ax.set_ylim(50, (top if np.isfinite(top) else 100) + 5)
            ax.set_title("zoom on the classics' region", fontsize=9)
        else:
            ax.set_ylabel(f"L/D at CL {SETTINGS['cl']}, Re {SETTINGS['Re']:.0e} (NeuralFoil {HELDOUT_MODEL}, held-out)")
            ax.set_title("held-out-feasible designs, all seeds (count per method); lines: each method's front",
                         fontsize=9)
            ax.legend(fontsize=7, loc="lower left")
    wb.save(fig, path)


def best_rows(designs: pd.DataFrame, min_thickness: float = MIN_THICKNESS) -> pd.DataFrame:
    """Per method, the seed-0 held-out-feasible design of best held-out L/D at thickness >= ``min_thickness``."""
    first = designs[designs.seed == designs.seed.min()]
    picks = []
    for method, group in first.groupby("method", sort=False):
        ok = group[group.feasible & (group.thickness >= min_thickness)]
        if len(ok):
            picks.append(ok.loc[ok.ld.idxmax()])
    return pd.DataFrame(picks)


def plot_outlines(designs: pd.DataFrame, classic: pd.DataFrame, path: Path) -> None:
    """Outlines (true to scale) of each method's best design (left) and best at >= 12% thickness (right), seed 0,
    above the classics."""
    cols = [f"v{i}" for i in range(18)]
    classic_v = np.stack([load_database().vector(c) for c in CLASSICS])
    classic_labels = [f"{c['name']}: L/D {c.ld:.1f}, t {c.thickness:.1%}" for _, c in classic.iterrows()]
    panels = []
    for floor, title in ((MIN_THICKNESS, "best L/D"), (0.12, "best L/D at >= 12% thickness")):
        picks = best_rows(designs, floor)
        v = np.concatenate([picks[cols].to_numpy().reshape(-1, 18), classic_v])
        labels = [f"{r.method}: L/D {r.ld:.1f}, t {r.thickness:.1%}" for r in picks.itertuples()] + classic_labels
        panels.append((v, labels, title))
    rows = max(len(p[0]) for p in panels)
    spacing = max(0.2, 1.25 * max(float(np.ptp(contour(p[0])[..., 1], axis=1).max()) for p in panels))
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.2 * spacing * rows + 0.7))
    for ax, (v, labels, title) in zip(axes, panels):
        draw_sections(v, ax=ax, labels=labels, spacing=spacing)
        ax.set_ylim(-(rows - 0.5) * spacing, 0.5 * spacing)
        ax.set_title(f"{title}: held-out-feasible, seed 0 (L/D held-out); the classics below", fontsize=9)
    wb.save(fig, path)


def plot_heldout(designs: pd.DataFrame, path: Path) -> None:
    """Reward-model L/D against held-out L/D of the reward-feasible designs."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ok = designs[designs.reward_feasible]
    for k, (method, group) in enumerate(designs.groupby("method", sort=False)):
        g = ok[ok.method == method]
        ax.scatter(g.reward_ld, g.ld, s=6, alpha=0.4, color=f"C{k}", label=method)
    if len(ok):
        lo, hi = np.nanmin(ok[["reward_ld", "ld"]].to_numpy()), np.nanmax(ok[["reward_ld", "ld"]].to_numpy())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("L/D, NeuralFoil xsmall (reward)")
    ax.set_ylabel(f"L/D, NeuralFoil {HELDOUT_MODEL} (held-out)")
    ax.set_title("reward-feasible designs: reward model against held-out", fontsize=9)
    ax.legend(fontsize=7)
    wb.save(fig, path)


def report(out_dir: Path) -> pd.DataFrame:
    """Score the stored studies and write the tables and figures; returns the ranges table."""
    rows, designs = score()
    rows.to_csv(out_dir / "studies.csv", index=False)
    designs.to_csv(out_dir / "designs.csv", index=False)
    shown = ranges(rows)
    (out_dir / "table.md").write_text(markdown(shown))
    side, classic = classics_table(designs)
    (out_dir / "classics.md").write_text(markdown(side))
    plot_front(designs, classic, out_dir / "front.png")
    plot_outlines(designs, classic, out_dir / "outlines.png")
    plot_heldout(designs, out_dir / "heldout.png")
    print(shown.to_string(index=False))
    print(side.to_string(index=False))
    return shown


if __name__ == "__main__":
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not args.score_only:
        print(f"{args.scale}: {len(list(seeds))} seeds, {evaluations} evaluations per method (qLogNEHVI and "
              f"nsga2_small: {cfg['bo_budget']}, svdd_small: {small_evaluations})", flush=True)
        campaign.run()
        print(f"campaign finished at {time.perf_counter() - started:.0f} s", flush=True)
    report(out)
    print(f"wrote {out}/ in {time.perf_counter() - started:.0f} s")
