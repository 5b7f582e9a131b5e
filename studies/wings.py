"""3-D wings: drag against structural mass against fuel volume at a fixed lift (issue 12, part 2).

    python studies/wings.py --scale cpu          # 3 seeds each of NSGA-II and qLogNEHVI; a few minutes on 2 cores
    python studies/wings.py --scale full         # 5 seeds, NSGA-II 3,000 and qLogNEHVI 120 evaluations (hours)
    workbench run studies/wings.py --scale cpu   # the same through the CLI

The domain (``domains.shapes.wings.Wing``): a light aircraft's wing (1100 kg, cruise 60 m/s at 2000 m, clean
stall at most 31 m/s) with 12 design variables: planform and root / tip sections blended from the NACA
65(2)-415 and LS(1)-0417 database airfoils, scaled in thickness and camber. Objectives: drag (N, vortex lattice +
NeuralFoil at the trimmed cruise angle), skin mass (kg) and internal volume (fuel, L); constraints: span <= 12 m
and a non-negative stall margin. Every design is lofted into a closed trimesh mesh.

Writes into <out>/ (default runs/wings): the campaign database <out>.db, ``compare.csv`` (final hypervolume per
optimizer: mean, std, min, max over seeds, and both at qLogNEHVI's budget), ``hypervolume.png`` (mean and
min-max range over seeds), ``pareto.png`` (the feasible designs and the front of all studies, three
projections), ``renders.png`` (3-D views of three front designs: lowest drag, a balanced one, most fuel),
``front.csv`` (every quantity of the front's designs, and drag, stall margin and maximum lift again with
NeuralFoil's largest network, xxxlarge, as a held-out check of the xlarge network the search used),
``meshes/`` (``--export`` front designs spread over the front, default 24, 0 for all, as STL and GLB, each loaded
back with trimesh and checked closed) and ``timing.csv``
(milliseconds per design of each evaluation stage on ``--timing`` Sobol designs).
"""

import argparse
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import workbench as wb  # noqa: E402
from domains.shapes.loft import load_mesh  # noqa: E402
from domains.shapes.wings import Wing  # noqa: E402
from optimizers import NSGA2, QLogNEHVI  # noqa: E402
from workbench.pareto import is_nondominated  # noqa: E402

SCALES = {  # seeds, NSGA-II population and budget, qLogNEHVI initial designs, batch size and budget
    "cpu": dict(seeds=3, pop=32, nsga2_budget=320, bo_init=16, bo_q=4, bo_budget=32, mc=32, raw=64, restarts=2),
    "full": dict(seeds=5, pop=64, nsga2_budget=3008, bo_init=24, bo_q=4, bo_budget=120, mc=64, raw=256, restarts=4),
    "tiny": dict(seeds=1, pop=8, nsga2_budget=16, bo_init=6, bo_q=2, bo_budget=8, mc=16, raw=16, restarts=1),
}
REF = (500.0, 200.0, 500.0)  # hypervolume reference: drag (N), structural mass (kg), fuel volume (L)

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
parser.add_argument("--seeds", type=int, default=None, help="override the scale's number of seeds")
parser.add_argument("--out", default="runs/wings", help="database <out>.db and report folder <out>/")
parser.add_argument("--export", type=int, default=24,
                    help="front designs to export as meshes, spread over the front (0: every front design)")
parser.add_argument("--timing", type=int, default=64, help="random designs whose evaluation is timed by stage")
args, _ = parser.parse_known_args()
scale = dict(SCALES[args.scale])
if args.seeds is not None:
    scale["seeds"] = args.seeds
torch.set_num_threads(1)

DOMAIN = Wing()
campaign = wb.Campaign("wings", storage=f"sqlite:///{args.out}.db")
for seed in range(scale["seeds"]):
    campaign.add(DOMAIN, NSGA2(pop_size=scale["pop"]), seed=seed, budget=scale["nsga2_budget"], label="nsga2")
    campaign.add(DOMAIN, QLogNEHVI(q=scale["bo_q"], n_init=scale["bo_init"], ref_point=list(REF),
                                   mc_samples=scale["mc"], raw_samples=scale["raw"], num_restarts=scale["restarts"]),
                 seed=seed, budget=scale["bo_budget"], label="qlognehvi")
OBJ = [o.name for o in DOMAIN.objectives]


def studies(label: str | None = None) -> list[tuple[str, wb.StudyResults]]:
    """(label, results) of every stored study, or of one optimizer."""
    return [(e.label, campaign.results(n)) for n, e in campaign.entries.items() if label in (None, e.label)]


def compare_table() -> pd.DataFrame:
    """Final hypervolume per optimizer over seeds (mean, std, min, max), and at qLogNEHVI's budget."""
    rows = []
    for label, res in studies():
        trace = res.hypervolume_trace(REF, points=10_000)
        at = trace[trace["evaluations"] <= scale["bo_budget"]]["hypervolume"]
        c = res.counters()
        rows.append({"optimizer": label, "evaluations": len(res), "hypervolume": res.hypervolume(REF),
                     f"hv_at_{scale['bo_budget']}": float(at.iloc[-1]) if len(at) else 0.0,
                     "feasible": float(res.feasible_mask().mean()),
                     "failed": int((res.frame()["status"] != "ok").sum()),
                     "eval_s_per_design": c.get("evaluation_seconds", np.nan) / max(len(res), 1),
                     "optimizer_s": c.get("optimizer_seconds", np.nan)})
    table = pd.DataFrame(rows)
    hv_at = f"hv_at_{scale['bo_budget']}"
    return table.groupby("optimizer", sort=False).agg(
        seeds=("hypervolume", "count"), evaluations=("evaluations", "mean"), hv_mean=("hypervolume", "mean"),
        hv_std=("hypervolume", "std"), hv_min=("hypervolume", "min"), hv_max=("hypervolume", "max"),
        **{f"{hv_at}_mean": (hv_at, "mean"), f"{hv_at}_min": (hv_at, "min"), f"{hv_at}_max": (hv_at, "max")},
        feasible_share=("feasible", "mean"), failed=("failed", "sum"), eval_s_per_design=("eval_s_per_design", "mean"),
        optimizer_s_per_study=("optimizer_s", "mean")).reset_index()


def hypervolume_figure(path: Path) -> None:
    """Mean hypervolume over seeds with the min-max range, per optimizer; log-scaled evaluations."""
    traces = campaign.traces(REF, points=200)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    wb.plot_hypervolume(traces, ax=ax, band="minmax")
    ax.set_xscale("log")
    ax.set_title(f"wings: hypervolume (mean, min-max over seeds), ref {REF}", fontsize=9)
    wb.save(fig, path)
    plt.close(fig)


def all_feasible() -> pd.DataFrame:
    """Every feasible design of every study, with its optimizer and seed."""
    parts = []
    for (name, e), (_, res) in zip(campaign.entries.items(), studies()):
        frame = res.frame()
        frame = frame[frame["feasible"]].copy()
        frame["optimizer"], frame["seed"] = e.label, e.seed
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def front_of(designs: pd.DataFrame) -> pd.DataFrame:
    """The non-dominated rows (drag and mass minimized, fuel maximized), without repeated designs."""
    signs = np.array([o.sign for o in DOMAIN.objectives])
    pts = designs[OBJ].to_numpy() * signs
    front = designs[is_nondominated(torch.as_tensor(pts)).numpy()]
    return front.drop_duplicates(subset=OBJ).sort_values("drag").reset_index(drop=True)


def pareto_figure(designs: pd.DataFrame, front: pd.DataFrame, picks: pd.DataFrame, path: Path) -> None:
    """Three projections of the feasible designs (faint, by optimizer) and the front of all studies (bold)."""
    pairs = [("drag", "structural_mass"), ("drag", "fuel_volume"), ("structural_mass", "fuel_volume")]
    units = {"drag": "drag (N)", "structural_mass": "skin mass (kg)", "fuel_volume": "fuel volume (L)"}
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    for ax, (a, b) in zip(axes, pairs):
        for i, (label, sub) in enumerate(designs.groupby("optimizer", sort=False)):
            ax.scatter(sub[a], sub[b], s=6, alpha=0.25, color=f"C{i}", label=f"{label} ({len(sub)} feasible)")
        sc = ax.scatter(front[a], front[b], s=18, c=front["fuel_volume" if b != "fuel_volume" else "structural_mass"],
                        cmap="viridis", edgecolors="k", linewidths=0.4, label=f"front of all studies ({len(front)})")
        for k, (_, row) in enumerate(picks.iterrows()):
            ax.annotate(str(k + 1), (row[a], row[b]), xytext=(5, 5), textcoords="offset points", fontsize=9,
                        weight="bold", color="crimson")
        ax.set_xlabel(units[a])
        ax.set_ylabel(units[b])
        ax.set_xlim(designs[a].quantile(0.0) * 0.97, min(designs[a].max(), designs[a].quantile(0.98) * 1.1))
        fig.colorbar(sc, ax=ax, fraction=0.04, pad=0.01).set_label(
            units["fuel_volume" if b != "fuel_volume" else "structural_mass"], fontsize=8)
        ax.grid(True, color="0.92", linewidth=0.6)
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"wings at {DOMAIN.condition.mass:.0f} kg, {DOMAIN.condition.speed:g} m/s: feasible designs and the "
                 f"front (span <= {DOMAIN.max_span:g} m, stall <= {DOMAIN.condition.stall_speed:g} m/s)", fontsize=10)
    wb.save(fig, path)
    plt.close(fig)


def pick_three(front: pd.DataFrame) -> pd.DataFrame:
    """Lowest drag, most fuel, and the balanced design nearest the ideal point in range-normalized objectives."""
    signs = np.array([o.sign for o in DOMAIN.objectives])
    pts = front[OBJ].to_numpy() * signs
    unit = (pts - pts.min(axis=0)) / np.maximum(np.ptp(pts, axis=0), 1e-12)
    idx = [int(front["drag"].idxmin()), int(np.argmin(np.linalg.norm(unit, axis=1))),
           int(front["fuel_volume"].idxmax())]
    seen: list[int] = []
    for i in idx:
        if i not in seen:
            seen.append(i)
    return front.loc[seen]


def renders_figure(picks: pd.DataFrame, table: pd.DataFrame, path: Path) -> None:
    """3-D view and top view of each picked design, with its numbers."""
    import domains.shapes.render3d as r3

    fig = plt.figure(figsize=(5.2 * len(picks), 6.0))
    grid = fig.add_gridspec(2, len(picks), height_ratios=[1.25, 1.0], hspace=0.02, wspace=0.05)
    names = ["lowest drag", "balanced", "most fuel"]
    for k, (_, row) in enumerate(table.iterrows()):
        mesh = DOMAIN.mesh(picks.iloc[k][DOMAIN.space.names].to_numpy(dtype=np.float64))
        title = (f"{k + 1}: {names[k] if len(picks) == 3 else ''}\n"
                 f"span {row['span']:.1f} m, AR {row['aspect_ratio']:.1f}, "
                 f"sweep {row['sweep']:.0f} deg, t/c {row['root_thickness']:.2f}/{row['tip_thickness']:.2f}\n"
                 f"drag {row['drag']:.0f} N (L/D {row['L_over_D']:.1f}), skin {row['structural_mass']:.0f} kg, "
                 f"fuel {row['fuel_volume']:.0f} L")
        ax = fig.add_subplot(grid[0, k], projection="3d")
        r3.draw_mesh(mesh, ax=ax, title=title, elev=30, azim=200, zoom=1.25)
        top = fig.add_subplot(grid[1, k], projection="3d")
        r3.draw_mesh(mesh, ax=top, elev=90, azim=0, axes=False, zoom=1.3, title="top view (flight direction up)")
    wb.save(fig, path)
    plt.close(fig)


def spread(front: pd.DataFrame, picks: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` front designs spread over the front: the picks, then farthest-point sampling in range-normalized
    objectives (all of them when ``n`` is 0 or the front is smaller)."""
    if n <= 0 or n >= len(front):
        return front
    pts = front[OBJ].to_numpy()
    unit = (pts - pts.min(axis=0)) / np.maximum(np.ptp(pts, axis=0), 1e-12)
    chosen = [front.index.get_loc(i) for i in picks.index]
    dist = np.min(np.linalg.norm(unit[:, None, :] - unit[chosen][None, :, :], axis=2), axis=1)
    while len(chosen) < n:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(unit - unit[nxt], axis=1))
    return front.iloc[sorted(chosen)]


def export_front(designs: pd.DataFrame, folder: Path) -> int:
    """Each design as STL and GLB (named by its row in front.csv); every file loaded back with trimesh and
    checked closed, consistently wound and of the same volume as the design's mesh."""
    x = designs[DOMAIN.space.names].to_numpy(dtype=np.float64)
    names = [f"front{i:03d}" for i in designs.index]
    paths = DOMAIN.export(x, folder, names=names)
    for p in paths:
        mesh = load_mesh(p)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0, p
    return len(paths)


def time_stages(n: int) -> pd.DataFrame:
    """Wall and CPU (process) milliseconds per design of each stage of an evaluation, on ``n`` Sobol designs
    evaluated as one batch. CPU time is the honest number on a shared machine: wall time grows with the load."""
    from domains.shapes.loft import check_mesh, loft, measures
    from domains.shapes.wing_aero import cruise

    x = DOMAIN.space.from_unit(torch.quasirandom.SobolEngine(DOMAIN.space.dim, scramble=True, seed=0).draw(n).double())
    arr = x.numpy()
    ok = [i for i in range(n) if i not in DOMAIN._shapes(arr, check=False).problems()]
    shape = DOMAIN._shapes(arr[ok], check=True)
    held: dict[str, Any] = {}

    def stage_loft() -> None:
        held["loft"] = loft(shape, DOMAIN.n_span, DOMAIN.n_points)
        measures(held["loft"])

    def stage_checks() -> None:
        for i in range(len(held["loft"])):
            check_mesh(held["loft"].mesh(i, check=False))

    def stage_whole() -> None:
        DOMAIN._memo.clear()
        DOMAIN.analyze(arr[ok])

    stages = {"loft + volume + areas": stage_loft,
              "trimesh checks (watertight, winding, volume)": stage_checks,
              "aerodynamics (2 lattice solves, NeuralFoil polars, trim, stall)":
                  lambda: cruise(shape, DOMAIN.condition, DOMAIN.n_span, DOMAIN.n_chord, DOMAIN.model_size),
              "whole evaluation (Wing.analyze)": stage_whole}
    rows = []
    for name, fn in stages.items():
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        rows.append({"stage": name, "wall_ms_per_design": 1000 * (time.perf_counter() - wall) / len(ok),
                     "cpu_ms_per_design": 1000 * (time.process_time() - cpu) / len(ok), "designs": len(ok)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    started = time.perf_counter()
    print(f"wings, scale {args.scale}: {scale['seeds']} seeds of NSGA-II ({scale['nsga2_budget']} evaluations) and "
          f"qLogNEHVI ({scale['bo_budget']})")
    campaign.run()
    run_s = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = compare_table()
    table.to_csv(out / "compare.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    hypervolume_figure(out / "hypervolume.png")
    designs = all_feasible()
    front = front_of(designs)
    picks = pick_three(front)
    pareto_figure(designs, front, picks, out / "pareto.png")
    analysis = DOMAIN.analyze(front[DOMAIN.space.names].to_numpy(dtype=np.float64))
    analysis.insert(0, "optimizer", front["optimizer"].to_numpy())
    analysis.insert(1, "seed", front["seed"].to_numpy())
    held_out = Wing(model_size="xxxlarge").analyze(front[DOMAIN.space.names].to_numpy(dtype=np.float64))
    for col in ("drag", "stall_margin", "CL_max"):
        analysis[f"{col}_xxxlarge"] = held_out[col].to_numpy()
    analysis.to_csv(out / "front.csv", index=False)
    change = (analysis["drag_xxxlarge"] / analysis["drag"] - 1).abs()
    still = (analysis["stall_margin_xxxlarge"] >= DOMAIN.min_stall_margin).mean()
    print(f"held-out NeuralFoil (xxxlarge) on the {len(front)} front designs: drag changes by "
          f"{100 * change.median():.2f} % "
          f"(median; max {100 * change.max():.2f} %), {100 * still:.0f} % keep a non-negative stall margin")
    picked = analysis.loc[picks.index]
    renders_figure(picks, picked, out / "renders.png")
    exported = spread(front, picks, args.export)
    n_files = export_front(exported, out / "meshes")
    cols = ["span", "aspect_ratio", "sweep", "root_thickness", "drag", "L_over_D", "CL", "CDi", "CD", "structural_mass",
            "fuel_volume", "stall_speed"]
    print(picked[cols].to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"front: {len(front)} designs; wrote {n_files} mesh files of {len(exported)} of them to {out / 'meshes'} "
          f"(all loaded back closed)")
    if args.timing > 0:
        timing = time_stages(args.timing)
        timing.to_csv(out / "timing.csv", index=False)
        print(timing.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    for name in ("compare.csv", "hypervolume.png", "pareto.png", "renders.png", "front.csv", "timing.csv"):
        print(f"wrote {out / name}")
    print(f"campaign {run_s:.0f} s, wings study finished in {time.perf_counter() - started:.0f} s")
