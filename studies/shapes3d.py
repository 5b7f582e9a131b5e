"""Reward-guided 3-D shapes: lower drag at equal volume from the shape prior, and what it costs in realism.

    python studies/shapes3d.py --scale cpu        # tiny prior, 3 seeds, a few minutes on one CPU thread
    python studies/shapes3d.py --scale gpu        # full prior (train it first: see domains/shapes/shape_prior.py)
    workbench run studies/shapes3d.py --scale cpu # the same through the CLI

The task: minimize the **drag at equal volume** of a shape of one family (``--family``, default ``car``; the prior
is conditioned on it): the drag (N) of the design scaled uniformly to hold 1 m^3 at 30 m/s, Newtonian pressure on
the marching-cubes faces plus ITTC flat-plate friction on the wetted area (``domains.shapes.shape_rewards``).
Scaling to a fixed volume is the volume condition: no reward for shrinking, none for flattening into a plate
that holds nothing. Constraints: a watertight surface, one piece, at least 150 solid voxels; the samplers get
the reward ``-0.01 * drag`` (per 100 N) minus 10 per unit of constraint violation.

Methods on one prior: pretrained sampling, best-of-N (N = M + 1, the denoiser cost of SVDD-PM), SVDD-PM (M
candidates per step) and DRAKES (fine-tuning through the last reverse steps on the differentiable drag proxy of
``evaluate_soft``, KL to the prior). Per study (method x seed): drag at equal volume (median over the designs),
the share of feasible designs, the bits per voxel under the pretrained prior (its ELBO: the likelihood side of
the trade-off), and 1-NNA / COV / MMD (Chamfer) against as many held-out test shapes of the family; a "corpus"
row scores real training shapes the same way (what the metrics give for real data). Speed: voxels generated per
second (pretrained sampling), surface points per second (marching cubes + sampling), Chamfer pairs per second.
Writes runs/shapes3d/<scale>/{table.md, studies.csv, designs.csv, grid.png, reward_vs_likelihood.png, speed.json}.
"""

import argparse
import json
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import workbench as wb  # noqa: E402
from domains.shapes.corpus import FAMILIES, load_corpus  # noqa: E402
from domains.shapes.shape_domain import Shapes3D, draw_grids  # noqa: E402
from domains.shapes.shape_metrics import chamfer_matrix, point_clouds, shape_metrics  # noqa: E402
from domains.shapes.shape_prior import load_prior  # noqa: E402
from optimizers.guidance import DRAKES, SVDD, BestOfN, Pretrained  # noqa: E402
from workbench.tables import markdown  # noqa: E402

SCALES = {
    # a CPU setting that runs every method end to end in a few minutes on one thread
    "cpu": {"prior": "tiny", "n": 16, "steps": 12, "candidates": 4, "drakes_iterations": 4, "drakes_batch": 4,
            "truncate": 2, "drakes_lr": 3e-4, "kl_weight": 1e-3, "points": 256, "bpd_samples": 8, "shown": 8,
            "workers": 0},
    # the full prior on a GPU
    "gpu": {"prior": "full", "n": 100, "steps": 50, "candidates": 10, "drakes_iterations": 40, "drakes_batch": 16,
            "truncate": 5, "drakes_lr": 1e-4, "kl_weight": 1e-3, "points": 1024, "bpd_samples": 16, "shown": 8,
            "workers": min(16, os.cpu_count() or 1)},  # processes for the marching cubes of SVDD's candidates
}
METHOD_NAMES = ("pretrained", "best_of_n", "svdd_pm", "drakes")
WEIGHT = 0.01  # reward per newton of drag at equal volume

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="gpu" if torch.cuda.is_available() else "cpu")
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
parser.add_argument("--family", choices=[*FAMILIES, "any"], default="car")
parser.add_argument("--methods", default=",".join(METHOD_NAMES), help=f"any of {','.join(METHOD_NAMES)}")
parser.add_argument("--n", type=int, default=None, help="designs per study (default: the scale's)")
parser.add_argument("--steps", type=int, default=None, help="reverse steps (default: the scale's)")
parser.add_argument("--out", default="runs/shapes3d")
parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
parser.add_argument("--speed-only", action="store_true", help="only measure sampling and metric throughput")
args, _ = parser.parse_known_args()
cfg = dict(SCALES[args.scale])
for key in ("n", "steps"):
    if getattr(args, key) is not None:
        cfg[key] = getattr(args, key)
chosen = args.methods.split(",")
unknown = sorted(set(chosen) - set(METHOD_NAMES))
if unknown:
    raise SystemExit(f"unknown methods {unknown}; choose from {METHOD_NAMES}")
if args.threads:
    torch.set_num_threads(args.threads)
n, steps, m = cfg["n"], cfg["steps"], cfg["candidates"]
family = None if args.family == "any" else args.family
condition = None if family is None else FAMILIES.index(family)


def domain() -> Shapes3D:
    return Shapes3D(objectives=("drag_at_volume",), constraints=("watertight", "pieces", "voxels"),
                    prior=cfg["prior"], workers=cfg["workers"])


def methods() -> dict:
    """The chosen samplers, each with the reward ``-WEIGHT * drag`` and the family's condition."""
    common = {"steps": steps, "batch_size": n, "weights": [WEIGHT], "condition": condition}
    makers = {"pretrained": lambda: Pretrained(**common),
              "best_of_n": lambda: BestOfN(n_samples=m + 1, **common),
              "svdd_pm": lambda: SVDD(n_candidates=m, value="pm", **common),
              "drakes": lambda: DRAKES(iterations=cfg["drakes_iterations"], train_batch=cfg["drakes_batch"],
                                       truncate=min(cfg["truncate"], steps), lr=cfg["drakes_lr"],
                                       kl_weight=cfg["kl_weight"], kl_samples=2, **common)}
    return {label: makers[label]() for label in chosen}


out = Path(args.out) / args.scale / (args.family if family is None else family)
storage = f"sqlite:///{out}/shapes3d.db"
campaign = wb.Campaign(f"shapes3d-{args.scale}-{args.family}", storage=storage)
SEEDS = range(args.first_seed, args.first_seed + args.seeds)
for seed in SEEDS:
    ms = methods()
    for label in chosen:
        campaign.add(domain(), ms[label], seed=seed, budget=n, label=label)


def references(seed: int, k: int) -> torch.Tensor:
    """``k`` held-out test shapes of the family, a different draw per seed."""
    corpus = load_corpus()
    test = corpus.tensor("test", family)
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(1000 + seed))[:k]
    return test[pick]


def score_designs(x: torch.Tensor, dom: Shapes3D, prior, seed: int, device: str) -> tuple[dict, pd.DataFrame]:
    """Drag, feasibility, likelihood and realism of one set of designs ``[k, 1, 32, 32, 32]``."""
    frame, errors = dom.quantities(x)
    frame["failed"] = [e is not None for e in errors]
    frame["feasible"] = (~frame.failed & (frame.watertight >= 1) & (frame.pieces <= 1) & (frame.voxels >= 150))
    generator = torch.Generator(device=device).manual_seed(0)
    cond = None if condition is None else torch.full((len(x),), condition, dtype=torch.long, device=device)
    with torch.no_grad():
        nll = -prior.log_likelihood(x.to(device), cfg["bpd_samples"], generator, 256, condition=cond)
    frame["bits_per_voxel"] = (nll / (x[0].numel() * np.log(2.0))).cpu().numpy()
    ok = torch.as_tensor(~frame.failed.to_numpy())
    k = min(int(ok.sum()), len(load_corpus().select("test", family)))
    if k >= 2:
        metrics = shape_metrics(x[ok][:k], references(seed, k), points=cfg["points"], seed=seed, device=device)
    else:  # fewer than two shapes with a surface: no neighbours to compare
        metrics = dict.fromkeys(("nna", "cov", "mmd", "points_per_second", "pairs_per_second"), float("nan"))
    feasible = frame[frame.feasible]
    row = {"drag_median": float(feasible.drag_at_volume.median()) if len(feasible) else float("nan"),
           "drag_best": float(feasible.drag_at_volume.min()) if len(feasible) else float("nan"),
           "feasible": float(frame.feasible.mean()), "volume_m3": float(frame.volume.median()),
           "bits_per_voxel": float(frame.bits_per_voxel.median()), "nna": metrics["nna"], "cov": metrics["cov"],
           "mmd_x1e3": 1e3 * metrics["mmd"], "metric_shapes": k,
           "points_per_second": metrics["points_per_second"], "pairs_per_second": metrics["pairs_per_second"]}
    return row, frame


def score(device: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, torch.Tensor]]:
    """One row per finished study (and per seed for the corpus), the per-design table and the designs."""
    dom = domain()
    prior = load_prior(cfg["prior"], device)
    rows, frames, designs = [], [], {}
    corpus = load_corpus()
    train = corpus.tensor("train", family)
    for seed in SEEDS:  # real shapes through the same scoring: what the metrics give for real data
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(2000 + seed))[:n]
        row, frame = score_designs(train[pick], dom, prior, seed, device)
        rows.append({"study": f"corpus/{seed}", "method": "corpus", "seed": seed, **row, "denoiser_shapes": 0,
                     "reward_shapes": 0, "seconds": 0.0, "voxels_per_second": float("nan")})
        frames.append(frame.assign(method="corpus", seed=seed))
        designs[f"corpus/{seed}"] = train[pick]
    for name, entry, stored in campaign.finished():
        x = stored.designs().float()
        row, frame = score_designs(x, dom, prior, entry.seed, device)
        counters = stored.counters()
        seconds = counters.get("optimizer_seconds", 0.0) + counters.get("evaluation_seconds", 0.0)
        rows.append({"study": name, "method": entry.label, "seed": entry.seed, **row,
                     "denoiser_shapes": counters.get("denoiser_sequences", 0),
                     "reward_shapes": counters.get("reward_sequences", 0), "seconds": seconds,
                     "voxels_per_second": len(x) * x[0].numel() / max(counters.get("optimizer_seconds", 0.0), 1e-9)})
        frames.append(frame.assign(method=entry.label, seed=entry.seed))
        designs[name] = x
    return pd.DataFrame(rows), pd.concat(frames, ignore_index=True), designs


def spread(values: pd.Series, digits: int) -> str:
    """``mean (min-max)`` over seeds."""
    return f"{values.mean():.{digits}f} ({values.min():.{digits}f}-{values.max():.{digits}f})"


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method: mean and range (min-max) over seeds."""
    out = []
    for method, group in rows.groupby("method", sort=False):
        out.append({"method": method, "seeds": len(group),
                    "drag at 1 m^3, median (N)": spread(group["drag_median"], 1),
                    "best (N)": spread(group["drag_best"], 1), "feasible": spread(100 * group["feasible"], 0) + " %",
                    "bits/voxel": spread(group["bits_per_voxel"], 3), "1-NNA": spread(group["nna"], 2),
                    "COV": spread(group["cov"], 2), "MMD x1e3": spread(group["mmd_x1e3"], 2),
                    "denoiser shapes": f"{int(group['denoiser_shapes'].mean()):,}",
                    "reward shapes": f"{int(group['reward_shapes'].mean()):,}",
                    "seconds": f"{group['seconds'].mean():.1f}"})
    return pd.DataFrame(out)


def plot_grid(rows: pd.DataFrame, frames: pd.DataFrame, designs: dict[str, torch.Tensor], path: Path) -> None:
    """One row of shapes per method (first seed), titled with their drag at equal volume."""
    first = rows[rows.seed == rows.seed.min()]
    k = cfg["shown"]
    shown, titles = [], []
    for _, row in first.iterrows():
        x = designs[row.study][:k]
        drag = frames[(frames.method == row.method) & (frames.seed == row.seed)].drag_at_volume.to_numpy()[:k]
        shown.append(x)
        titles += [f"{row.method}: {d:.0f} N" if np.isfinite(d) else f"{row.method}: failed" for d in drag]
    ax = draw_grids(torch.cat(shown), ncols=k, titles=titles)
    ax.set_title(f"{args.family}: drag at equal volume (1 m^3, 30 m/s), {args.scale} scale, seed {first.seed.min()}",
                 fontsize=9)
    ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(ax.figure)


def plot_tradeoff(frames: pd.DataFrame, path: Path) -> None:
    """Drag at equal volume against bits per voxel under the pretrained prior: every feasible design (small) and
    each method's medians (large). The per-design ELBO is heavy-tailed (its integrand grows without bound near
    t = 0), hence the log axis and the medians."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for k, (method, group) in enumerate(frames[frames.feasible].groupby("method", sort=False)):
        color = f"C{k}"
        ax.scatter(group.bits_per_voxel, group.drag_at_volume, s=9, alpha=0.45, color=color)
        ax.scatter(group.bits_per_voxel.median(), group.drag_at_volume.median(), s=110, color=color,
                   edgecolor="black", zorder=3, label=f"{method} (median)")
    ax.set_xscale("log")
    ax.set_xlabel("bits per voxel under the pretrained prior (ELBO; lower = more natural)")
    ax.set_ylabel("drag at equal volume, 1 m^3 at 30 m/s (N)")
    seeds = f"{args.seeds} seed" + ("s" if args.seeds > 1 else "")
    ax.set_title(f"{args.family}, {args.scale} scale, {seeds}: reward against likelihood", fontsize=10)
    ax.legend(fontsize=8)
    wb.save(fig, path)


def speed(device: str) -> dict:
    """Voxels per second of plain sampling (the prior alone, batch ``n``), on ``device``."""
    prior = load_prior(cfg["prior"], device)
    g = torch.Generator(device=device).manual_seed(0)
    cond = None if condition is None else torch.full((n,), condition, dtype=torch.long, device=device)
    prior.sample(2, 2, g, condition=None if cond is None else cond[:2])  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    x = prior.sample(n, steps, g, condition=cond)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    clouds = point_clouds(x.cpu()[x.flatten(1).amax(1).cpu() > 0.5], cfg["points"])
    surface_seconds = time.perf_counter() - started
    clouds = clouds.to(device)
    chamfer_matrix(clouds[:2], clouds[:2])  # warm-up
    started = time.perf_counter()
    chamfer_matrix(clouds, clouds)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    pair_seconds = time.perf_counter() - started
    return {"device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
            "threads": torch.get_num_threads(), "prior": cfg["prior"], "shapes": n, "steps": steps,
            "sampling_seconds": seconds, "voxels_per_second": n * x[0].numel() / seconds,
            "shapes_per_second": n / seconds, "denoiser_voxels_per_second": n * steps * x[0].numel() / seconds,
            "surface_points_per_second": len(clouds) * cfg["points"] / surface_seconds,
            "chamfer_pairs_per_second": len(clouds) ** 2 / pair_seconds,
            "chamfer_point_pairs_per_second": len(clouds) ** 2 * cfg["points"] ** 2 / pair_seconds}


if __name__ == "__main__":
    out.mkdir(parents=True, exist_ok=True)
    device = str(wb.resolve_device("auto"))
    started = time.perf_counter()
    if args.speed_only:
        fast = speed(device)
        (out / "speed.json").write_text(json.dumps(fast, indent=1))
        print(json.dumps(fast))
        raise SystemExit(0)
    campaign.run()
    print(f"campaign finished at {time.perf_counter() - started:.0f} s", flush=True)
    rows, frames, designs = score(device)
    rows.to_csv(out / "studies.csv", index=False)
    frames.to_csv(out / "designs.csv", index=False)
    shown = table(rows)
    (out / "table.md").write_text(markdown(shown))
    print(shown.to_string(index=False))
    plot_grid(rows, frames, designs, out / "grid.png")
    plot_tradeoff(frames, out / "reward_vs_likelihood.png")
    fast = speed(device)
    (out / "speed.json").write_text(json.dumps(fast, indent=1))
    print(json.dumps(fast))
    print(f"wrote {out}/ in {time.perf_counter() - started:.0f} s")
