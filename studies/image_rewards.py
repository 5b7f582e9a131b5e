"""Reward-guided sampling of MNIST digit images: the image tasks of SVDD on a Gaussian-diffusion prior.

    python studies/image_rewards.py --scale gpu --front      # 256 images x 3 seeds per method and task (GPU)
    python studies/image_rewards.py --scale cpu              # small setting: tiny 14 px prior, 16 images
    workbench run studies/image_rewards.py --scale cpu       # the same through the CLI

Two tasks on one unconditional prior (the class-conditional U-Net sampled without a label):
  - **compressibility**: maximize minus the JPEG size in bytes (Pillow, quality 95; not differentiable:
    DPS and DRAKES follow a DCT proxy of it, every number below is the true JPEG size);
  - **digit**: maximize the reward classifier's probability of digit ``TARGET``; every number reported
    comes from the held-out classifier (trained on the other half of the training images).
Methods: pretrained sampling, best-of-N (N = M + 1, the denoiser cost of SVDD-PM), SMC, DPS, SVDD-PM,
SVDD-MC, DRAKES and DRAKES without KL. Per study: reward median and top-10% (90th percentile), held-out
accuracy (digit), an FID analogue (Frechet distance in the held-out classifier's features against the real
test images), diversity (mean pairwise feature distance), bits per dimension under the pretrained prior,
denoiser and reward calls (images), wall time. Writes runs/image_rewards/<scale>/{table_compressibility.md,
table_digit.md, studies.csv, grid.png, front.png}.
"""

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import workbench as wb  # noqa: E402
from domains.images import MNISTDigits, jpeg_bytes, load_classifier, load_mnist, reference_features  # noqa: E402
from domains.images.metrics import classify, diversity, frechet_distance  # noqa: E402
from domains.images.prior import load_prior  # noqa: E402
from optimizers.guidance import DPS, DRAKES, SMC, SVDD, BestOfN, Pretrained  # noqa: E402
from workbench.tables import markdown, mean_over_seeds  # noqa: E402

TARGET = 3
SCALES = {
    # the paper-sized run (GPU): 50 ancestral steps, 10 SVDD candidates, best-of-11 (equal denoiser calls)
    "gpu": {"prior": "full", "resolution": 28, "n": 256, "steps": 50, "candidates": 10, "rollouts": 1024,
            "value_epochs": 8, "drakes_iterations": 40, "drakes_batch": 64, "truncate": 5, "drakes_lr": 3e-4,
            "front_n": 128, "budget_iterations": 80, "check_batch": 256},
    # a CPU setting that still runs every method end to end
    "cpu": {"prior": "tiny", "resolution": 14, "n": 16, "steps": 12, "candidates": 4, "rollouts": 64,
            "value_epochs": 2, "drakes_iterations": 6, "drakes_batch": 8, "truncate": 3, "drakes_lr": 3e-4,
            "front_n": 8, "budget_iterations": 6, "check_batch": 32},
}
# per task: the reward's weight (compressibility in units of 100 bytes), SMC's alpha, DPS's step, DRAKES' KL weight;
# DRAKES with a naturalness budget: the measure ("fid": minus the FID analogue in the reward classifier's
# features against its own training images, at most 2x the pretrained model's; "loglik": the prior's
# ELBO, at most 15 % below), its starting KL weight, and the number of reparameterized last steps (the digit is
# decided early)
TASKS = {
    "compressibility": {"objectives": ("compressibility",), "weight": 0.01, "smc_alpha": 0.5, "dps_scale": 0.1,
                        "kl_weight": 1e-3, "naturalness": "fid", "budget": 1.0, "budget_kl": 1e-3, "budget_truncate": 5},
    "digit": {"objectives": ("digit",), "weight": 1.0, "smc_alpha": 0.1, "dps_scale": 0.1, "kl_weight": 1e-3,
              "naturalness": "loglik", "budget": 0.15, "budget_kl": 1e-4, "budget_truncate": 15},
}
METHOD_NAMES = ("pretrained", "best_of_n", "smc", "dps", "dps_small", "svdd_pm", "svdd_mc", "drakes", "drakes_budget",
                "drakes_no_kl")
DEFAULT_METHODS = ("pretrained", "best_of_n", "smc", "dps", "svdd_pm", "svdd_mc", "drakes_budget", "drakes_no_kl")

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="gpu" if torch.cuda.is_available() else "cpu")
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--tasks", default="compressibility,digit")
parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"any of {','.join(METHOD_NAMES)}")
parser.add_argument("--front", action="store_true", help="also trace compressibility against the digit over weights")
parser.add_argument("--kl-sweep", default="", help="extra DRAKES studies (first seed) at these KL weights, e.g. 3e-4,1e-2")
parser.add_argument("--workers", type=int, default=1, help="studies at once for the seeds after the first")
parser.add_argument("--out", default="runs/image_rewards")
parser.add_argument("--score-only", action="store_true", help="score the finished studies without running more")
args, _ = parser.parse_known_args()
cfg = SCALES[args.scale]
n, steps, m = cfg["n"], cfg["steps"], cfg["candidates"]
tasks = args.tasks.split(",")
chosen = args.methods.split(",")
unknown = sorted(set(chosen) - set(METHOD_NAMES)) + sorted(set(tasks) - set(TASKS))
if unknown:
    raise SystemExit(f"unknown methods or tasks {unknown}; methods: {METHOD_NAMES}, tasks: {sorted(TASKS)}")


class FIDNaturalness:
    """Minus the FID analogue of images in the reward classifier's features against 10,000 of its own training
    images (the held-out classifier and the test images stay out of the optimization)."""

    def __init__(self) -> None:
        self.reference = None

    def __repr__(self) -> str:  # recorded with the study's parameters: stable across processes
        return f"FIDNaturalness(reward classifier, train_a[:10000], {cfg['resolution']} px)"

    def __call__(self, x: torch.Tensor) -> float:
        classifier = load_classifier("reward", cfg["resolution"], x.device)
        if self.reference is None:
            real, _ = load_mnist("train_a", cfg["resolution"])
            self.reference = classify(classifier, real[:10_000].to(x.device))[1]
        return -frechet_distance(classify(classifier, x.float())[1], self.reference)


def methods(task: str, kl_weight: float | None = None) -> dict:
    """The samplers of one task, with the task's reward scale."""
    t = TASKS[task]
    common = {"steps": steps, "batch_size": n, "weights": [t["weight"]]}
    drakes = {"iterations": cfg["drakes_iterations"], "train_batch": cfg["drakes_batch"], "truncate": cfg["truncate"],
              "lr": cfg["drakes_lr"], "kl_samples": 4, **common}
    naturalness = FIDNaturalness() if t["naturalness"] == "fid" else None
    truncate = max(cfg["truncate"], round(t["budget_truncate"] * steps / 50))  # the same share of the steps
    budgeted = {**drakes, "iterations": cfg["budget_iterations"], "truncate": truncate,
                "budget": t["budget"], "naturalness": naturalness, "check_batch": cfg["check_batch"]}
    return {"pretrained": Pretrained(**common),
            "best_of_n": BestOfN(n_samples=m + 1, **common),
            "smc": SMC(alpha=t["smc_alpha"], **common),
            "dps": DPS(scale=t["dps_scale"], **common),
            "dps_small": DPS(scale=t["dps_scale"] / 3, **common),
            "svdd_pm": SVDD(n_candidates=m, value="pm", **common),
            "svdd_mc": SVDD(n_candidates=m, value="mc", rollouts=cfg["rollouts"], value_epochs=cfg["value_epochs"],
                            **common),
            "drakes": DRAKES(kl_weight=t["kl_weight"] if kl_weight is None else kl_weight, **drakes),
            "drakes_budget": DRAKES(kl_weight=t["budget_kl"], **budgeted),
            "drakes_no_kl": DRAKES(kl_weight=0.0, **drakes)}


def domain(task: str, oracle: str = "reward") -> MNISTDigits:
    return MNISTDigits(objectives=TASKS[task]["objectives"], target=TARGET, oracle=oracle,
                       resolution=cfg["resolution"], prior=cfg["prior"])


out = Path(args.out) / args.scale
storage = f"sqlite:///{out}/images.db"
# the first seed of the samplers runs alone (its wall times are the speed figures); later seeds and the
# DRAKES fine-tuning runs may share the device (--workers)
campaign = wb.Campaign(f"image-rewards-{args.scale}", storage=storage)
more = wb.Campaign(f"image-rewards-{args.scale}-seeds", storage=storage)
tuned = wb.Campaign(f"image-rewards-{args.scale}-drakes", storage=storage)
for seed in range(args.seeds):
    for task in tasks:
        ms = methods(task)
        for label in chosen:
            target = tuned if label.startswith("drakes") else campaign if seed == 0 else more
            target.add(domain(task), ms[label], seed=seed, budget=n, label=f"{task}/{label}")
sweep = wb.Campaign(f"image-rewards-{args.scale}-kl", storage=storage)
for kl in (float(w) for w in args.kl_sweep.split(",") if w):
    for task in tasks:
        sweep.add(domain(task), methods(task, kl)["drakes"], seed=0, budget=n, label=f"{task}/drakes_kl{kl:g}")
WEIGHTS = [(1.0, 0.0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.15, 0.85), (0.1, 0.9), (0.05, 0.95), (0.02, 0.98),
           (0.0, 1.0)]
front = wb.Campaign(f"image-front-{args.scale}", storage=f"sqlite:///{out}/images.db")
for w in WEIGHTS:  # compressibility in 100s of bytes against the digit probability
    front.add(MNISTDigits(objectives=("compressibility", "digit"), target=TARGET, resolution=cfg["resolution"],
                          prior=cfg["prior"]),
              SVDD(n_candidates=m, value="pm", steps=steps, batch_size=cfg["front_n"], weights=[w[0] * 0.01, w[1]]),
              label=f"svdd_pm_w{w[0]:.2f}", budget=cfg["front_n"])


def score(campaign: wb.Campaign, device: str) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """Reward, held-out and prior metrics of every finished study: one row per study, and its images."""
    heldout = load_classifier("heldout", cfg["resolution"], device)
    # the FID analogue's reference: all real test digits, or only those of the target digit for the digit task
    references = {"compressibility": reference_features(cfg["resolution"], device),
                  "digit": reference_features(cfg["resolution"], device, digit=TARGET)}
    prior = load_prior(cfg["prior"], device)
    rows, images = [], {}
    for name, entry, stored in campaign.finished():
        x = stored.designs().float().to(device)
        logits, feats = classify(heldout, x)
        probability = logits.softmax(dim=1)[:, TARGET].double().cpu()
        size = jpeg_bytes(x.cpu())
        generator = torch.Generator(device=device).manual_seed(0)
        bpd = prior.bits_per_dim(x, samples=8, generator=generator, batch_size=512).cpu()
        counters = stored.counters()
        seconds = counters.get("optimizer_seconds", 0.0) + counters.get("evaluation_seconds", 0.0)
        reward = -size.double() if "compressibility" in entry.label else probability
        rows.append({"study": name, "method": entry.label, "seed": entry.seed,
                     "reward_median": float(reward.median()), "reward_top10": float(np.quantile(reward.numpy(), 0.9)),
                     "jpeg_bytes_median": float(size.median()), "digit_probability": float(probability.mean()),
                     "accuracy": float((logits.argmax(1) == TARGET).double().mean()),
                     "fid": frechet_distance(feats, references[entry.label.split("/")[0]])
                     if entry.label.split("/")[0] in references else math.nan, "diversity": diversity(feats),
                     "bits_per_dim": float(bpd.median()),
                     "denoiser_images": counters.get("denoiser_sequences", 0),
                     "reward_images": counters.get("reward_sequences", 0), "seconds": seconds,
                     "images_per_second": len(x) / max(seconds, 1e-9),
                     "reward_time_share": counters.get("reward_seconds", 0.0) / max(seconds, 1e-9)})
        images[name] = x.cpu()
    return pd.DataFrame(rows), images


def table(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    """Mean ± std over seeds per method of one task, in the SVDD paper's form plus our metrics."""
    rows = rows[rows.method.str.startswith(task + "/")].assign(method=lambda f: f.method.str.split("/").str[1])
    metric_cols = ["reward_median", "reward_top10", "fid", "diversity", "bits_per_dim"]
    if task == "digit":
        metric_cols.insert(2, "accuracy")
    counts, tenths = ["denoiser_images", "reward_images"], ["seconds", "images_per_second"]
    shown = mean_over_seeds(rows.drop(columns=["study", "seed"]), "method", plus_minus=metric_cols, counts=counts,
                            tenths=tenths, percents=["reward_time_share"])
    shown.insert(1, "seeds", rows.groupby("method", sort=False).size().to_numpy())
    return shown[["method", "seeds", *metric_cols, *counts, *tenths, "reward_time_share"]]


def plot_grid(rows: pd.DataFrame, images: dict[str, torch.Tensor], path: Path, per_method: int = 8) -> None:
    """One row of images per (task, method), seed 0."""
    first = rows[rows.seed == rows.seed.min()]
    fig, axes = plt.subplots(len(first), 1, figsize=(per_method * 0.9, len(first) * 1.25), constrained_layout=True)
    dom = domain(tasks[0])
    for ax, (_, row) in zip(np.atleast_1d(axes), first.iterrows()):
        dom.render(images[row.study][:per_method], ax=ax, ncols=per_method)
        ax.set_title(row.method, fontsize=7, loc="left")
    wb.save(fig, path)


def plot_front(images: dict[str, torch.Tensor], device: str, path: Path) -> pd.DataFrame:
    """True JPEG bytes against the held-out digit probability of the front studies' images."""
    heldout = load_classifier("heldout", cfg["resolution"], device)
    parts = []
    for name, x in images.items():
        logits, _ = classify(heldout, x.to(device))
        parts.append(pd.DataFrame({"study": name, "jpeg_bytes": jpeg_bytes(x).numpy(),
                                   "digit": logits.softmax(1)[:, TARGET].cpu().numpy()}))
    designs = pd.concat(parts, ignore_index=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, group in designs.groupby("study", sort=False):
        ax.scatter(group["jpeg_bytes"], group["digit"], s=8, alpha=0.5, label=name.split("/")[-2])
    points = designs[["jpeg_bytes", "digit"]].to_numpy()
    best = points[wb.pareto.is_nondominated(torch.as_tensor(points * [1.0, -1.0])).numpy()]
    best = best[np.argsort(best[:, 0])]
    ax.step(best[:, 0], best[:, 1], "k-", where="post", lw=1.5, label="non-dominated")
    ax.set_xlabel("JPEG size (bytes, lower = more compressible)")
    ax.set_ylabel(f"P(digit {TARGET}), held-out classifier")
    ax.set_title("SVDD-PM over weight vectors")
    ax.legend(fontsize=7)
    wb.save(fig, path)
    return designs


if __name__ == "__main__":
    out.mkdir(parents=True, exist_ok=True)
    device = str(wb.resolve_device("auto"))
    started = time.perf_counter()
    if not args.score_only:  # in order of importance, so a run cut short keeps the most
        campaign.run()
        print(f"first seed finished at {time.perf_counter() - started:.0f} s", flush=True)
        if args.front:
            front.run()
        tuned.run(workers=args.workers)
        more.run(workers=args.workers)
        sweep.run(workers=args.workers)
        print(f"campaign finished at {time.perf_counter() - started:.0f} s", flush=True)
    parts = [score(c, device) for c in (campaign, more, tuned, sweep)]
    rows = pd.concat([p[0] for p in parts], ignore_index=True)
    images = {k: v for p in parts for k, v in p[1].items()}
    rows.to_csv(out / "studies.csv", index=False)
    for task in tasks:
        shown = table(rows, task)
        (out / f"table_{task}.md").write_text(markdown(shown))
        print(f"\n{task}\n" + shown.to_string(index=False))
    plot_grid(rows, images, out / "grid.png")
    if args.front:
        _, front_images = score(front, device)
        plot_front(front_images, device, out / "front.png").to_csv(out / "front.csv", index=False)
        print(f"wrote {out / 'front.png'}")
    print(f"wrote {out}/ in {time.perf_counter() - started:.0f} s")
