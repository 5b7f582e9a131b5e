"""Page layouts: conditional generation with and without the corrector, and reward-guided layout design.

    python studies/page_layouts.py --scale full      # the full prior at CPU sizes (about 35 minutes)
    python studies/page_layouts.py --scale gpu --device cuda --seeds 3   # 512 layouts per study, DRAKES 150 x 64
    python studies/page_layouts.py --scale cpu       # the tiny prior, every part end to end in about a minute
    python studies/page_layouts.py --scale gpu --device cuda --parts rewards --methods drakes --rewards align_overlap
    python studies/page_layouts.py --scale gpu --device cuda --parts rewards --methods drakes --drakes lr=3e-4
    workbench run studies/page_layouts.py --scale cpu

Part 1, generation quality on the test split, per task (unconditional, classes given ``c_to_sp``, classes and sizes
given ``cs_to_p``, completion from the first 20 % of the elements, refinement of layouts with box noise of 0.02),
the prior's plain sampling against the same sampling with the corrector at equal denoiser steps: FID (the layout
encoder of ``train_fid``) against the test pages, Alignment and Overlap (LayoutGAN++, x 100), Max IoU against the
conditioning test pages (unconditional: against all test pages), validity.

Part 2, reward-guided sampling on the unconditional task: best-of-N (N = M + 1), SMC, SVDD-PM and DRAKES
against the plain samples, on the rewards of ``REWARDS``: "layout" ``-(10 alignment + overlap + 10 coverage)``
(alignment values are about ten times smaller than overlap values), "overlap" ``-(overlap + 3 coverage)`` and
"align_overlap" ``-(100 alignment + overlap)`` (DRAKES'; the gpu scale runs the first two). The
coverage error (union area of the boxes outside 0.2-0.5 of the page) is there because alignment and overlap alone
are zero on an empty page: without it every method removed elements (first run, see ``docs/layouts.md``). FID,
Alignment, Overlap and the element count of their designs. DRAKES (straight-through, exact swap gains,
``--drakes estimator=relaxed`` for the reward's own gradient) needs the gpu scale's 150 iterations of 64
trajectories; with the full scale's 30 of 16 (CPU) the overlap rose (28 -> 51 on seed 0, relaxed, docs/layouts.md).

Part 3, a front: SVDD-PM at weight vectors (w_alignment, w_overlap, 10), overlap against FID and against
alignment.

Every study is stored (SQLite) and resumable. Writes runs/page_layouts/<scale>/{generation.csv, generation.md,
rewards.csv, rewards.md, front.csv, front.png, pages.png, tasks.png}.
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import workbench as wb  # noqa: E402
from domains.layouts import metrics  # noqa: E402
from domains.layouts.data import load_split  # noqa: E402
from domains.layouts.domain import PageLayouts  # noqa: E402
from domains.layouts.fid import frechet_distance, layout_features  # noqa: E402
from domains.layouts.prior import load_corrector, load_prior  # noqa: E402
from domains.layouts.render import draw_comparison  # noqa: E402
from optimizers.guidance import DRAKES, SMC, SVDD, BestOfN, Pretrained  # noqa: E402
from workbench.generative import Correction  # noqa: E402
from workbench.tables import markdown  # noqa: E402

SCALES = {
    # the corrector's threshold was chosen on the valid split (FID against valid pages, unconditional and
    # completion, thresholds 0.1-0.5): 0.2 for the GPU-trained full prior, whose elements 0.3 and above remove
    "full": {"prior": "full", "n": 128, "steps": 50, "candidates": 8, "drakes_iterations": 30, "drakes_batch": 16,
             "truncate": 10, "drakes_lr": 1e-3, "front_n": 64, "corrector_threshold": 0.2, "rewards": "layout"},
    # the full prior at the sizes a GPU affords: DRAKES tuned for 150 iterations of 64 trajectories (docs/layouts.md)
    "gpu": {"prior": "full", "n": 512, "steps": 50, "candidates": 8, "drakes_iterations": 150, "drakes_batch": 64,
            "truncate": 10, "drakes_lr": 1e-4, "front_n": 256, "corrector_threshold": 0.2,
            "rewards": "layout,overlap"},
    "cpu": {"prior": "tiny", "n": 16, "steps": 10, "candidates": 2, "drakes_iterations": 2, "drakes_batch": 4,
            "truncate": 2, "drakes_lr": 1e-3, "front_n": 8, "corrector_threshold": 0.5, "rewards": "layout,overlap"},
}
TASKS = ("unconditional", "c_to_sp", "cs_to_p", "completion", "refinement")
REWARD_METHODS = ("pretrained", "best_of_n", "smc", "svdd_pm", "drakes")
REWARD_OBJECTIVES = ("alignment", "overlap", "coverage")
# weights on the three errors: "layout" is the shared reward of every method; "overlap" has a lighter coverage guard
# that keeps the selecting samplers' pages from emptying; "align_overlap" is DRAKES' (with its exact swap gains it
# lowers both errors on every seed; the coverage term pulls against the overlap, and DRAKES, which moves boxes
# but never drops them, keeps its pages' elements without it; docs/layouts.md)
REWARDS = {"layout": (10.0, 1.0, 10.0), "overlap": (0.0, 1.0, 3.0), "align_overlap": (100.0, 1.0, 0.0)}
FRONT = [(0.0, 1.0, 10.0), (1.0, 1.0, 10.0), (10.0, 1.0, 10.0), (30.0, 1.0, 10.0), (10.0, 0.0, 10.0)]
CORRECTOR_TIMES = (0.8, 0.6, 0.4, 0.2)  # chosen on the valid split (docs/layouts.md)
NOISE = 0.02  # box noise of the refinement task, as in LayoutDM

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="full")
parser.add_argument("--seeds", type=int, default=1)
parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
parser.add_argument("--n", type=int, default=None, help="layouts per study (default: the scale's)")
parser.add_argument("--out", default="runs/page_layouts")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--corrector-threshold", type=float, default=None, help="default: the scale's")
parser.add_argument("--device", default="cpu", help="where the prior and the samplers run, e.g. cuda")
parser.add_argument("--parts", default="generation,rewards,front", help="which parts to run (comma-separated)")
parser.add_argument("--methods", default=",".join(REWARD_METHODS), help="the reward-guided methods of part 2")
parser.add_argument("--rewards", default=None, help=f"the rewards of part 2: names from {sorted(REWARDS)} or "
                    "weights on alignment/overlap/coverage such as 0/1/0 (default: the scale's)")
parser.add_argument("--drakes", default="", metavar="KEY=VALUE,...",
                    help="override DRAKES settings, e.g. lr=3e-4,kl_weight=1e-3,iterations=100")
args, _ = parser.parse_known_args()
cfg = dict(SCALES[args.scale], **({} if args.n is None else {"n": args.n}))
n, steps, m = cfg["n"], cfg["steps"], cfg["candidates"]
torch.set_num_threads(args.threads)
out = Path(args.out) / args.scale
storage = f"sqlite:///{out}/layouts.db"
parts = set(args.parts.split(","))
seeds = range(args.first_seed, args.first_seed + args.seeds)
methods = args.methods.split(",")
if unknown := (parts - {"generation", "rewards", "front"}) | (set(methods) - set(REWARD_METHODS)):
    raise SystemExit(f"unknown parts or methods {sorted(unknown)}")


def reward_weights(name: str) -> tuple[float, ...]:
    """A named reward of ``REWARDS``, or weights on (alignment, overlap, coverage) written ``a/o/c``."""
    if name in REWARDS:
        return REWARDS[name]
    try:
        weights = tuple(float(v) for v in name.split("/"))
    except ValueError:
        weights = ()
    if len(weights) != 3 or min(weights) < 0 or sum(weights) <= 0:
        raise SystemExit(f"unknown reward {name!r}: choose from {sorted(REWARDS)} or give weights a/o/c, e.g. 0/1/0")
    return weights


reward_table = {name: reward_weights(name) for name in (args.rewards or cfg["rewards"]).split(",")}
DRAKES_SETTINGS = {"iterations": cfg["drakes_iterations"], "train_batch": cfg["drakes_batch"],
                   "truncate": cfg["truncate"], "kl_weight": 1e-2, "lr": cfg["drakes_lr"], "temperature": 0.5,
                   "straight_through": True, "estimator": "swaps"}
for item in filter(None, args.drakes.split(",")):
    key, _, value = item.partition("=")
    if key not in DRAKES_SETTINGS:
        raise SystemExit(f"unknown DRAKES setting {key!r}; choose from {sorted(DRAKES_SETTINGS)}")
    kind = type(DRAKES_SETTINGS[key])
    DRAKES_SETTINGS[key] = value if kind is str else kind(float(value))


def test_pages(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` test pages (at most 20 per PDF), drawn with ``seed``: the conditions of the conditional tasks.
    Beyond the 495 pages each page is drawn again (a new order each round), so every page conditions alike."""
    classes, boxes = load_split("test")
    g = torch.Generator().manual_seed(seed)
    rounds = -(-count // len(classes))
    pick = torch.cat([torch.randperm(len(classes), generator=g) for _ in range(rounds)])[:count]
    return classes[pick], boxes[pick]


def correction(prior_config: str) -> Correction:
    threshold = cfg["corrector_threshold"] if args.corrector_threshold is None else args.corrector_threshold
    return Correction(load_corrector(prior_config), times=CORRECTOR_TIMES, threshold=threshold)


def generation_campaign(dom: PageLayouts, seed: int) -> tuple[wb.Campaign, dict]:
    """Per task and seed: the prior's sampling with and without the corrector (refinement runs outside a Study:
    it starts from the noisy layouts, see ``refine``)."""
    camp = wb.Campaign(f"layouts-{args.scale}-generation", storage=storage)
    classes, boxes = test_pages(n, seed)
    fixed = {task: dom.partial(task, classes, boxes) for task in ("c_to_sp", "cs_to_p", "completion")}
    for task in TASKS[:-1]:
        partial = fixed.get(task)
        for corrected in (False, True):
            sampler = Pretrained(steps=steps, batch_size=n, partial=partial,
                                 corrector=correction(cfg["prior"]) if corrected else None)
            camp.add(dom, sampler, seed=seed, budget=n, label=f"{task}/{'corrector' if corrected else 'prior'}")
    return camp, {"classes": classes, "boxes": boxes}


def refine(dom: PageLayouts, classes: torch.Tensor, boxes: torch.Tensor, corrected: bool,
           seed: int) -> tuple[torch.Tensor, dict]:
    """Refinement: the noisy test layouts' tokens, classes fixed, half re-noised (t = 0.5) and denoised; returns
    the layouts and the corrector's counts."""
    g = torch.Generator().manual_seed(seed)
    noisy = (boxes + NOISE * torch.randn(boxes.shape, generator=g)).clamp(0.0, 1.0) * (classes >= 0).unsqueeze(-1)
    partial = dom.partial("c_to_sp", classes, noisy)
    prior = load_prior(cfg["prior"], args.device)
    fix = correction(cfg["prior"]) if corrected else None
    start = dom.encode(classes, noisy).to(args.device)
    sampling = torch.Generator(args.device).manual_seed(seed + 1)  # on the prior's device; the noise above: CPU
    with prior.correcting(fix):
        x = prior.refine(start, start=0.5, steps=steps // 2, generator=sampling, partial=partial).cpu()
    counts = {"corrector_calls": fix.model.calls if fix else 0, "remasked_per_layout": fix.remasked / n if fix else 0}
    return x, counts


def reward_campaign(dom: PageLayouts, seeds: range) -> wb.Campaign:
    """Each method, reward and seed; labels ``reward/method`` (the plain samples, ``pretrained``, are the same for
    every reward and run once per seed)."""
    camp = wb.Campaign(f"layouts-{args.scale}-guided", storage=storage)
    for seed in seeds:
        for i, (reward, weights) in enumerate(reward_table.items()):
            common = {"steps": steps, "batch_size": n, "weights": list(weights)}
            samplers = {"pretrained": Pretrained(**common), "best_of_n": BestOfN(n_samples=m + 1, **common),
                        "smc": SMC(alpha=0.1, **common), "svdd_pm": SVDD(n_candidates=m, value="pm", **common),
                        "drakes": DRAKES(**DRAKES_SETTINGS, swap_tokens=dom.tokenizer.moves, **common)}
            for label in methods:
                if label != "pretrained" or i == 0:
                    camp.add(dom, samplers[label], seed=seed, budget=n,
                             label="pretrained" if label == "pretrained" else f"{reward}/{label}")
    return camp


def front_campaign(dom: PageLayouts) -> wb.Campaign:
    camp = wb.Campaign(f"layouts-{args.scale}-guided-front", storage=storage)
    for w in FRONT:
        camp.add(dom, SVDD(n_candidates=m, value="pm", steps=steps, batch_size=cfg["front_n"], weights=list(w)),
                 seed=0, budget=cfg["front_n"], label=f"svdd_pm_w{w[0]:g}-{w[1]:g}-{w[2]:g}")
    return camp


def quality(dom: PageLayouts, x: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor],
            test_features: torch.Tensor) -> dict[str, float]:
    """FID against the test pages, Alignment and Overlap (x 100), Max IoU against ``reference``, validity."""
    classes, boxes = dom.decode_tensors(x)
    valid = metrics.validity(classes, boxes)
    feats = layout_features(classes, boxes)
    return {"fid": float(frechet_distance(feats, test_features)),
            "alignment": 100 * float(metrics.alignment(classes, boxes).mean()),
            "overlap": 100 * float(metrics.overlap(classes, boxes).mean()),
            "max_iou": float(metrics.max_iou((classes, boxes), reference)), "validity": float(valid.float().mean()),
            "elements": float((classes >= 0).sum(1).float().mean())}


def stored(camp: wb.Campaign) -> list[tuple]:
    """(label, entry, designs, counters) of each finished study."""
    return [(entry.label, entry, res.designs(), res.counters()) for _, entry, res in camp.finished()]


def plot_front(front_table: pd.DataFrame, pretrained: pd.DataFrame, path: Path) -> None:
    """Overlap against FID and against alignment, one point per weight vector, the plain samples' mean as a
    star (when ``pretrained`` has rows)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, other in zip(axes, ("fid", "alignment")):
        # one colour and marker per weight vector, named in the legend (labels beside close points overprint)
        for i, (_, r) in enumerate(front_table.iterrows()):
            ax.plot([r[other]], [r["overlap"]], "osD^v"[i % 5], color=f"C{i % 10}", alpha=0.8,
                    label="SVDD-PM (" + r["weights"].removeprefix("svdd_pm_w").replace("-", ", ") + ")")
        ax.set_ylim(bottom=-4)
        if len(pretrained):
            ax.scatter([pretrained[other].mean()], [pretrained["overlap"].mean()], marker="*", s=150,
                       color="black", label="pretrained")
        ax.set_xlabel("FID against test pages" if other == "fid" else "Alignment x 100")
        ax.set_ylabel("Overlap x 100")
    axes[0].legend(fontsize=8, title="weights on (alignment, overlap, coverage)", title_fontsize=8, loc="upper center")
    fig.tight_layout()
    wb.save(fig, path)
    plt.close(fig)


if __name__ == "__main__":
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dom = PageLayouts(objectives=("alignment", "overlap"), prior=cfg["prior"], device=args.device)
    test = load_split("test")
    test_features = layout_features(*test)
    rows, drawings = [], {"real test pages": test_pages(12, 99)}
    if "generation" in parts:
        for seed in seeds:
            camp, cond = generation_campaign(dom, seed)
            camp.run(workers=1)
            for label, entry, x, counters in stored(camp):
                task, variant = label.split("/")
                if entry.seed != seed:
                    continue
                ref = test if task == "unconditional" else (cond["classes"], cond["boxes"])
                rows.append({"task": task, "sampler": variant, "seed": seed, **quality(dom, x, ref, test_features),
                             "denoiser_calls": counters.get("denoiser_calls", 0),
                             "corrector_calls": counters.get("corrector_calls", 0),
                             "remasked_per_layout": counters.get("corrector_remasked", 0) / n})
                if seed == seeds[0] and task in ("unconditional", "c_to_sp"):
                    drawings[f"{task}: {variant}"] = dom.decode_tensors(x[:12])
            for corrected in (False, True):
                x, counts = refine(dom, cond["classes"], cond["boxes"], corrected, seed)
                rows.append({"task": "refinement", "sampler": "corrector" if corrected else "prior", "seed": seed,
                             **quality(dom, x, (cond["classes"], cond["boxes"]), test_features),
                             "denoiser_calls": steps // 2, **counts})
        generation = pd.DataFrame(rows)
        generation.to_csv(out / "generation.csv", index=False)
        shown = generation.groupby(["task", "sampler"], sort=False).mean(numeric_only=True).drop(columns="seed")
        (out / "generation.md").write_text(markdown(shown.reset_index().round(4)))
        print(shown.round(4).to_string(), flush=True)

    guided = PageLayouts(objectives=REWARD_OBJECTIVES, prior=cfg["prior"], device=args.device)
    rewards_table = pd.DataFrame({"method": []})
    if "rewards" in parts:
        rewards_camp = reward_campaign(guided, seeds)
        rewards_camp.run(workers=1)
        reward_rows = []
        for label, entry, x, counters in stored(rewards_camp):
            reward, _, method = label.rpartition("/")
            reward_rows.append({"reward": reward or "-", "method": method, "seed": entry.seed,
                                **quality(dom, x, test, test_features),
                                "denoiser_sequences": counters.get("denoiser_sequences", 0),
                                "reward_sequences": counters.get("reward_sequences", 0)})
            if entry.seed == seeds[0] and (reward in ("", "layout") or method == "drakes"):
                drawings[f"reward: {label}"] = dom.decode_tensors(x[:12])
        rewards_table = pd.DataFrame(reward_rows)
        rewards_table.to_csv(out / "rewards.csv", index=False)
        summary = rewards_table.groupby(["reward", "method"], sort=False).agg(["mean", "min", "max"]).drop(
            columns="seed")
        (out / "rewards.md").write_text(markdown(summary.reset_index().round(4)))
        print(summary.round(4).to_string(), flush=True)
    elif (out / "rewards.csv").exists():  # an earlier run's rows: the front's pretrained reference
        rewards_table = pd.read_csv(out / "rewards.csv")

    if "front" in parts:
        front_camp = front_campaign(guided)
        front_camp.run(workers=1)
        front_rows = [{"weights": label, **quality(dom, x, test, test_features)}
                      for label, entry, x, _ in stored(front_camp)]
        front_table = pd.DataFrame(front_rows)
        front_table.to_csv(out / "front.csv", index=False)
        plot_front(front_table, rewards_table[rewards_table.method == "pretrained"], out / "front.png")
    if len(drawings) > 1:  # pages were sampled besides the real ones (not by the front alone)
        draw_comparison(drawings, out / "pages.png", per_group=8)
    print(f"wrote {out}/ in {time.perf_counter() - started:.0f} s")
