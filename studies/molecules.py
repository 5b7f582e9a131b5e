"""Reward-guided molecule design: the molecule tasks of SVDD on a masked-diffusion prior over SELFIES tokens.

    python studies/molecules.py --scale gpu                 # the full prior, 640 molecules x 3 seeds per method (GPU)
    python studies/molecules.py --scale full                # the full prior on a CPU: 48 molecules x 3 seeds, 16 steps
    python studies/molecules.py --scale cpu                 # tiny prior, 16 molecules, 8 steps (< 90 s; the test's)
    python studies/molecules.py --scale full --workers 2    # later seeds and the DRAKES studies 2 at a time
    python studies/molecules.py --scale full --score-only   # tables and figures from the stored studies
    workbench run studies/molecules.py --scale cpu          # the same through the CLI

**Tasks** (``domains.molecules.Molecules``, RDKit scores, no structural-alert constraints so that the reward is the
property alone, as in the paper): maximize **QED** (drug-likeness, 0..1) and maximize **SA**, the synthetic
accessibility normalized as the domain defines it, ``(10 - SA) / 9`` (1 = easiest). The prior is the domain's
masked-diffusion model trained on MOSES train (``prior_full.pt``: 8.4M parameters, valid NELBO 0.588 nats/token;
``prior_tiny.pt`` for the cpu scale).

**Methods** (``optimizers.guidance``): pretrained sampling, best-of-N (N = M + 1: the denoiser sequences of
SVDD-PM), SMC (x0_hat rewards as potentials), SVDD-PM, SVDD-MC (value network regressed on prior rollouts), DPS
(the reward gradient of the domain's CNN surrogate, ``Molecules.evaluate_soft``; every reported number is RDKit's),
DRAKES (trajectory KL to the prior), DRAKES with a naturalness budget (``DRAKES(budget=0.03)`` with the default
naturalness, the prior's ELBO log-likelihood of its samples: fine-tuning keeps the sampled molecules' mean
log-likelihood within 3 % of the pretrained model's at 95 % confidence (``confidence=0.95``: the drop's upper
bound, from the standard errors of both means, must be within the budget), rolling back and doubling the KL weight
when a check fails)
and DRAKES without KL (reward hacking).

**Table** (one per task, the SVDD paper's format plus our metrics; mean ± std over seeds of per-study values):
reward median and top-10 % (90th percentile) of the task's RDKit score over the valid molecules, the other
property's median, the seed range (min-max) of the median, validity (share of the stored rows that are molecules:
rows that are no molecule are failed rows of the study, never a crash), uniqueness, novelty (distinct valid
molecules not in MOSES train), internal diversity (1 - mean pairwise Tanimoto, Morgan r = 2), the pretrained prior's
log-likelihood (ELBO in nats per molecule: median; studies.csv adds the mean and its standard error), denoiser and
reward calls and the sequences they processed, wall time (optimizer + evaluation seconds of the study), molecules
per second and the share of the wall time spent in reward calls. The SVDD paper's numbers for reference (its own
prior, 128 steps, SVDD-MC/PM, M = 20): QED median 0.656 (pretrained) -> 0.848 (SVDD); SA median 0.652 -> 0.925.

**Front**: QED against SA against Tanimoto similarity to a lead, ``LEAD``, a real drug-like molecule of the MOSES
test sample (row 76 of the committed ``moses_test_sample.csv.gz``: N-ethyl 4-(3-phenylbutanamido)
benzenesulfonamide, QED 0.81, SA 0.86, no PAINS or Brenk alert). SVDD-PM over the weight vectors ``FRONT_WEIGHTS``
(weighted sums; the pure QED and pure SA corners are the single-task SVDD-PM studies), then the non-dominated
designs (``wb.pareto.is_nondominated``) among all valid molecules of every study (every sampler of both tasks and
the weighted SVDD-PM studies), all three properties from RDKit.

**DRAKES on the full scale (CPU) is under-trained**: 6 iterations of 8 trajectories at lr 1e-3 raise the
surrogate's reward of the relaxed designs (0.77 -> 0.80 QED) but not RDKit's QED of the samples (median 0.56 against
0.64 pretrained, KL 1e-2); without KL the model drifts to cumulenes and annulenes (prior log-likelihood -85 and
-220 nats against -46); with the budget every check failed (the log-likelihood had dropped 17-45 % after 3
iterations), so the weights were rolled back to the prior's and it samples like the pretrained model. The gpu
scale (100 iterations of 32, lr 3e-4) is the setting meant for DRAKES; with the relaxed full surrogate
(``train_surrogate --relaxed``) and the budget checked at 95 % confidence on 2,048 molecules, the budgeted DRAKES
raised the median QED by 0.014 to 0.059 and SA by 0.021 to 0.062 on 3 of 3 fresh GPU seeds, with the samples'
log-likelihood at most 0.8 % below pretrained (``docs/molecules.md``). ``--first-seed``, ``--n``, ``--candidates``,
``--surrogate``, ``--drakes-lr`` and ``--truncate`` run later seeds and other settings in their own ``--out`` folders.

Writes runs/molecules/<scale>/{table_qed.md, table_sa.md (and .csv), studies.csv (one row per study), designs.csv
(one row per molecule), front.csv (the non-dominated molecules), front.png (pairwise scatters), grid.png (the best
molecules per method and task)}.
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
from domains.molecules import Molecules  # noqa: E402
from domains.molecules.metrics import internal_diversity, novelty, uniqueness  # noqa: E402
from domains.molecules.prior import load_prior  # noqa: E402
from domains.molecules.tokens import decode  # noqa: E402
from optimizers.guidance import DPS, DRAKES, SMC, SVDD, BestOfN, Pretrained  # noqa: E402
from optimizers.guidance.drakes import budget_summary  # noqa: E402
from workbench.serialization import unpack  # noqa: E402
from workbench.tables import markdown, mean_over_seeds  # noqa: E402

SCALES = {
    # the paper-sized run (GPU): 64 reverse steps for 47 tokens, 10 SVDD candidates, best-of-11
    "gpu": {"prior": "full", "n": 640, "seeds": 3, "steps": 64, "candidates": 10, "rollouts": 4096,
            "value_epochs": 20, "drakes_iterations": 100, "drakes_batch": 32, "truncate": 16, "kl_samples": 8,
            "drakes_lr": 3e-4, "check_every": 10, "check_batch": 2048, "front_n": 256, "elbo_samples": 16},
    # the full prior on a 2-core CPU shared with other jobs, sized for about 15 minutes for 3 seeds (6-9 ms per
    # sequence and step of the denoiser with one thread; measured: 880 s of studies + 72 s of scoring); DRAKES gets
    # only 6 fine-tuning iterations here, too few to learn (see the module docstring)
    "full": {"prior": "full", "n": 48, "seeds": 3, "steps": 16, "candidates": 4, "rollouts": 64,
             "value_epochs": 4, "drakes_iterations": 6, "drakes_batch": 8, "truncate": 4, "kl_samples": 2,
             "drakes_lr": 1e-3, "check_every": 3, "check_batch": 32, "front_n": 32, "elbo_samples": 4},
    # the tiny prior: every method end to end in well under 90 s (the test's setting)
    "cpu": {"prior": "tiny", "n": 16, "seeds": 1, "steps": 8, "candidates": 2, "rollouts": 16,
            "value_epochs": 2, "drakes_iterations": 2, "drakes_batch": 4, "truncate": 2, "kl_samples": 2,
            "drakes_lr": 1e-3, "check_every": 1, "check_batch": 8, "front_n": 8, "elbo_samples": 2},
}
# per task: SMC's alpha, DPS' step (RMS-normalized tilt of p(x0 | x_t); 3 and 10 degraded both tasks in a probe on the
# full prior, 48 molecules, 16 steps: QED median 0.63 pretrained, 0.68 at 1, 0.49 at 3, 0.35 at 10: the surrogate is
# hacked), DRAKES' KL weight and the weaker starting KL weight of the budgeted DRAKES (the budget governs there)
TASKS = {
    "qed": {"smc_alpha": 0.1, "dps_scale": 1.0, "kl_weight": 1e-2, "budget_kl": 1e-3},
    "sa": {"smc_alpha": 0.1, "dps_scale": 1.0, "kl_weight": 1e-2, "budget_kl": 1e-3},
}
BUDGET = 0.03
#: the budget check's one-sided confidence: a check passes only if the upper 95 % bound of the log-likelihood drop
#: is within BUDGET (per-molecule ELBOs spread by about 14 nats, 3 % is 1.1 nats: see docs/molecules.md)
CONFIDENCE = 0.95
METHOD_NAMES = ("pretrained", "best_of_n", "smc", "svdd_pm", "svdd_mc", "dps", "drakes", "drakes_budget",
                "drakes_no_kl")
#: the front's lead: row 76 of the committed MOSES test sample (see the module docstring)
LEAD = "CCNS(=O)(=O)c1ccc(NC(=O)CC(C)c2ccccc2)cc1"
#: SVDD-PM weights on (QED, SA, similarity) for the front; (1, 0, 0) and (0, 1, 0) are the single-task studies
FRONT_WEIGHTS = [(0.0, 0.0, 1.0), (1.0, 1.0, 1.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, 0.0)]

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="gpu" if torch.cuda.is_available() else "cpu")
parser.add_argument("--seeds", type=int, default=None, help="default: the scale's (3; 1 for cpu)")
parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
parser.add_argument("--n", type=int, default=None, help="override the scale's molecules per study")
parser.add_argument("--surrogate", default="auto",
                    help="surrogate of DPS and DRAKES: full, tiny, auto or a checkpoint path (train_surrogate --out)")
parser.add_argument("--candidates", type=int, default=None,
                    help="override the scale's SVDD candidates M (best-of-N uses N = M + 1; the SVDD paper: 20)")
parser.add_argument("--drakes-lr", type=float, default=None, help="override the scale's DRAKES learning rate")
parser.add_argument("--truncate", type=int, default=None, help="override the scale's DRAKES truncation (steps)")
parser.add_argument("--tasks", default="qed,sa")
parser.add_argument("--methods", default=",".join(METHOD_NAMES))
parser.add_argument("--no-front", action="store_true", help="skip the QED / SA / similarity front")
parser.add_argument("--workers", type=int, default=None,
                    help="studies at once for the seeds after the first and DRAKES (default: $WORKBENCH_WORKERS or 1)")
parser.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: 1 on a CPU, else torch's default)")
parser.add_argument("--out", default="runs/molecules")
parser.add_argument("--score-only", action="store_true", help="score the finished studies without running more")
parser.add_argument("--straight-through", action="store_true",
                    help="DRAKES tunes on hard (one-hot) trajectories and designs, gradients through the relaxation")
args, _ = parser.parse_known_args()
cfg = dict(SCALES[args.scale])
cfg.update({k: v for k, v in {"n": args.n, "drakes_lr": args.drakes_lr, "truncate": args.truncate,
                               "candidates": args.candidates}.items() if v is not None})
n, steps, m = cfg["n"], cfg["steps"], cfg["candidates"]
seeds = cfg["seeds"] if args.seeds is None else args.seeds
tasks = args.tasks.split(",")
chosen = args.methods.split(",")
unknown = sorted(set(chosen) - set(METHOD_NAMES)) + sorted(set(tasks) - set(TASKS))
if unknown:
    raise SystemExit(f"unknown methods or tasks {unknown}; methods: {METHOD_NAMES}, tasks: {sorted(TASKS)}")
DEVICE = wb.resolve_device("auto")
# small batches of a CNN on shared cores: one thread was faster than two here (9 ms against 36 ms per sequence and
# step of the full prior, batch 64, with the two cores shared)
threads = args.threads if args.threads is not None else 1 if DEVICE.type == "cpu" else 0
if threads > 0:
    torch.set_num_threads(threads)


def methods(task: str) -> dict:
    """The samplers of one task."""
    t = TASKS[task]
    common = {"steps": steps, "batch_size": n}
    drakes = {"iterations": cfg["drakes_iterations"], "train_batch": cfg["drakes_batch"], "truncate": cfg["truncate"],
              "lr": cfg["drakes_lr"], "kl_samples": cfg["kl_samples"], "straight_through": args.straight_through,
              **common}
    return {"pretrained": Pretrained(**common),
            "best_of_n": BestOfN(n_samples=m + 1, **common),
            "smc": SMC(alpha=t["smc_alpha"], **common),
            "svdd_pm": SVDD(n_candidates=m, value="pm", **common),
            "svdd_mc": SVDD(n_candidates=m, value="mc", rollouts=cfg["rollouts"], value_epochs=cfg["value_epochs"],
                            **common),
            "dps": DPS(scale=t["dps_scale"], **common),
            "drakes": DRAKES(kl_weight=t["kl_weight"], **drakes),
            "drakes_budget": DRAKES(kl_weight=t["budget_kl"], budget=BUDGET, confidence=CONFIDENCE,
                                    check_every=cfg["check_every"], check_batch=cfg["check_batch"], **drakes),
            "drakes_no_kl": DRAKES(kl_weight=0.0, **drakes)}


def domain(objectives: tuple[str, ...]) -> Molecules:
    return Molecules(objectives=objectives, constraints=(), lead=LEAD if "similarity" in objectives else None,
                     prior=cfg["prior"], device=DEVICE, surrogate=args.surrogate)


out = Path(args.out) / args.scale
storage = f"sqlite:///{out}/molecules.db"
# the first seed of the samplers runs alone (its wall times are the speed figures); later seeds and the DRAKES
# fine-tuning runs may share the machine (--workers)
campaign = wb.Campaign(f"molecules-{args.scale}", storage=storage)
more = wb.Campaign(f"molecules-{args.scale}-seeds", storage=storage)
tuned = wb.Campaign(f"molecules-{args.scale}-drakes", storage=storage)
for seed in range(args.first_seed, args.first_seed + seeds):
    for task in tasks:
        dom, samplers = domain((task,)), methods(task)
        for label in chosen:
            target = tuned if label.startswith("drakes") else campaign if seed == 0 else more
            target.add(dom, samplers[label], seed=seed, budget=n, label=f"{task}/{label}")
front = wb.Campaign(f"molecules-{args.scale}-front", storage=storage)
for w in FRONT_WEIGHTS:
    front.add(domain(("qed", "sa", "similarity")),
              SVDD(n_candidates=m, value="pm", steps=steps, batch_size=cfg["front_n"], weights=list(w)),
              seed=0, budget=cfg["front_n"], label=f"front/svdd_pm_w{w[0]:g}-{w[1]:g}-{w[2]:g}")


def drakes_checks(stored: "wb.StudyResults") -> dict[str, float]:
    """The naturalness-budget checks of a DRAKES study, from its stored optimizer state."""
    snapshot = stored.storage.load_snapshot(stored.record.id)
    return budget_summary(unpack(snapshot[2]) if snapshot is not None else {})


def _or_nan(metric, *a) -> float:
    """A MOSES metric, NaN where it is undefined (too few valid molecules)."""
    try:
        return float(metric(*a))
    except ValueError:
        return math.nan


_NOVELTY_WARNED = []


def _novelty(smiles: list[str]) -> float:
    try:
        return _or_nan(novelty, smiles)
    except ImportError as err:  # MOSES train comes from the optional molsets wheel
        if not _NOVELTY_WARNED:
            print(f"novelty left out: {err}")
            _NOVELTY_WARNED.append(True)
        return math.nan


def score(campaign: wb.Campaign, device: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, torch.Tensor]]:
    """Metrics of every finished study: one row per study, one row per design, and the designs' tokens."""
    judge = Molecules(objectives=("qed", "sa", "similarity"), constraints=("pains", "brenk", "bridgeheads"), lead=LEAD,
                      prior=cfg["prior"])
    prior = load_prior(cfg["prior"], device)
    rows, designs, tokens = [], [], {}
    for name, entry, stored in campaign.finished():
        task, method = entry.label.split("/")
        frame = stored.frame()
        ok = (frame["status"] == "ok").to_numpy()
        x = stored.designs()
        smiles = [s if good else None for s, good in zip(decode(x), ok)]
        valid = [s for s in smiles if s is not None]
        props = judge.score(smiles)  # NaN rows where no molecule
        generator = torch.Generator(device=device).manual_seed(0)
        loglik = prior.log_likelihood(x[torch.tensor(ok)].to(device), samples=cfg["elbo_samples"],
                                      generator=generator).cpu() if ok.any() else torch.full((1,), math.nan)
        counters = stored.counters()
        seconds = counters.get("optimizer_seconds", 0.0) + counters.get("evaluation_seconds", 0.0)
        row = {"study": name, "task": task, "method": method, "seed": entry.seed}
        if task in ("qed", "sa"):
            reward = frame[task].to_numpy()[ok]  # the stored RDKit score of the study's objective
            row.update({"reward_median": float(np.median(reward)) if len(reward) else math.nan,
                        "reward_top10": float(np.quantile(reward, 0.9)) if len(reward) else math.nan})
        row.update({"qed_median": float(props["qed"].median()), "sa_median": float(props["sa"].median()),
                    "validity": float(ok.mean()), "uniqueness": _or_nan(uniqueness, smiles),
                    "novelty": _novelty(smiles), "diversity": _or_nan(internal_diversity, smiles),
                    "log_likelihood": float(loglik.median()), "log_likelihood_mean": float(loglik.mean()),
                    "log_likelihood_se": float(loglik.std() / max(len(loglik), 1) ** 0.5),
                    "pains_free": float((props["pains"][ok] == 0).mean()),
                    "bridged": float((props["bridgeheads"][ok] > 0).mean()),
                    "similarity_median": float(props["similarity"].median()),
                    "denoiser_calls": counters.get("denoiser_calls", 0),
                    "denoiser_sequences": counters.get("denoiser_sequences", 0),
                    "reward_calls": counters.get("reward_calls", 0),
                    "reward_sequences": counters.get("reward_sequences", 0),
                    "seconds": seconds, "molecules_per_second": len(x) / max(seconds, 1e-9),
                    "reward_time_share": counters.get("reward_seconds", 0.0) / max(seconds, 1e-9)})
        if method.startswith("drakes"):
            row.update(drakes_checks(stored))
        rows.append(row)
        designs.append(pd.DataFrame({"study": name, "task": task, "method": method, "seed": entry.seed,
                                     "row": np.arange(len(x)), "valid": ok, "smiles": smiles,
                                     "qed": props["qed"], "sa": props["sa"], "similarity": props["similarity"],
                                     "bridgeheads": props["bridgeheads"], "error": frame["error"].to_numpy()}))
        tokens[name] = x
        print(f"scored {name}: validity {ok.mean():.2f}, {len(valid)} molecules", flush=True)
    return pd.DataFrame(rows), pd.concat(designs, ignore_index=True) if designs else pd.DataFrame(), tokens


PLUS_MINUS = ["reward_median", "reward_top10", "validity", "uniqueness", "novelty", "diversity", "log_likelihood"]
COUNTS = ["denoiser_calls", "denoiser_sequences", "reward_calls", "reward_sequences"]
TENTHS = ["seconds", "molecules_per_second"]


def table(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    """Mean ± std over seeds per method of one task, in the SVDD paper's form plus our metrics."""
    rows = rows[rows.task == task]
    other = "sa_median" if task == "qed" else "qed_median"
    metric_cols = PLUS_MINUS[:2] + [other] + PLUS_MINUS[2:]
    keep = ["method", *metric_cols, *COUNTS, *TENTHS, "reward_time_share"]
    shown = mean_over_seeds(rows[keep], "method", plus_minus=metric_cols, counts=COUNTS, tenths=TENTHS,
                            percents=["reward_time_share"])
    spread = rows.groupby("method", sort=False)["reward_median"].agg(["min", "max"])
    shown.insert(1, "seeds", rows.groupby("method", sort=False).size().to_numpy())
    shown.insert(3, "median_range", [f"{a:.3f}-{b:.3f}" for a, b in zip(spread["min"], spread["max"])])
    return shown[["method", "seeds", "reward_median", "median_range", *metric_cols[1:], *COUNTS, *TENTHS,
                  "reward_time_share"]]


def plot_grid(designs: pd.DataFrame, tokens: dict[str, torch.Tensor], path: Path, per_method: int = 4) -> None:
    """The best distinct valid molecules of each method (over its seeds), one column per task; bridged ring
    systems left out (RDKit accepts them, but as the SELFIES prior writes them they are mostly strained beyond
    existence; their share per study is the ``bridged`` column of studies.csv)."""
    names = [mth for mth in METHOD_NAMES if mth in set(designs["method"])]
    columns = [t for t in tasks if t in set(designs["task"])]
    fig, axes = plt.subplots(len(names), len(columns), figsize=(9.5 * len(columns), 2.75 * len(names)),
                             squeeze=False)
    dom = domain(("qed", "sa"))
    for j, task in enumerate(columns):
        for i, method in enumerate(names):
            ax = axes[i][j]
            here = designs[(designs.task == task) & (designs.method == method) & designs.valid]
            if "bridgeheads" in here:  # designs.csv of earlier runs lacks the column
                here = here[here["bridgeheads"] == 0]
            best = here.sort_values(task, ascending=False, kind="stable").drop_duplicates("smiles").head(per_method)
            if best.empty:
                ax.set_axis_off()
                continue
            x = torch.stack([tokens[s][r] for s, r in zip(best["study"], best["row"])])
            legend = [f"QED {q:.2f}  SA {a:.2f}" for q, a in zip(best["qed"], best["sa"])]
            dom.render(x, ax=ax, legend=legend, per_row=per_method)
            ax.set_title(f"{task.upper()} task: {method}", fontsize=10, loc="left")
    fig.tight_layout()
    wb.save(fig, path)
    plt.close(fig)


def plot_front(designs: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Pairwise scatters of QED, SA and similarity to the lead of every valid molecule; the non-dominated ones
    (over all studies, all three maximized) marked. Returns the non-dominated molecules."""
    valid = designs[designs.valid].drop_duplicates("smiles").reset_index(drop=True)
    points = valid[["qed", "sa", "similarity"]].to_numpy(dtype=np.float64)
    best = wb.pareto.is_nondominated(torch.as_tensor(-points)).numpy()
    valid["nondominated"] = best
    lead = Molecules(objectives=("qed", "sa", "similarity"), constraints=(), lead=LEAD, prior=cfg["prior"])
    lead_values = lead.score([LEAD]).iloc[0]
    pairs = [("qed", "sa"), ("qed", "similarity"), ("sa", "similarity")]
    labels = {"qed": "QED", "sa": "SA, (10 - SA) / 9", "similarity": "Tanimoto similarity to the lead"}
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    single = valid[valid.task != "front"]
    weighted = valid[valid.task == "front"]
    for ax, (a, b) in zip(axes, pairs):
        ax.scatter(single[a], single[b], s=6, color="0.7", alpha=0.5, linewidths=0,
                   label="single-task samplers (QED, SA)")
        for method, group in weighted.groupby("method", sort=False):
            weights = method.removeprefix("svdd_pm_w").replace("-", ", ")
            ax.scatter(group[a], group[b], s=10, alpha=0.7, linewidths=0,
                       label=f"SVDD-PM, weights (QED, SA, similarity) = ({weights})")
        nd = valid[valid.nondominated]
        ax.scatter(nd[a], nd[b], s=28, facecolors="none", edgecolors="black", linewidths=0.9,
                   label="non-dominated (all three)")
        if b != "similarity":
            ax.scatter([lead_values[a]], [lead_values[b]], marker="*", s=260, color="gold", edgecolors="black",
                       zorder=5, label="lead")
        else:  # the lead's similarity is 1, far above every design: its QED or SA as a line instead
            ax.axvline(lead_values[a], color="goldenrod", ls="--", lw=1, label="the lead's QED or SA (similarity 1)")
        ax.set_xlabel(labels[a])
        ax.set_ylabel(labels[b])
    handles, names = axes[0].get_legend_handles_labels()
    more_handles, more_names = axes[1].get_legend_handles_labels()  # the lead's line
    handles, names = handles + more_handles[-1:], names + more_names[-1:]
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"QED, SA and similarity to the lead {LEAD}: {int(best.sum())} non-dominated of {len(valid)} "
                 "distinct molecules", fontsize=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    wb.save(fig, path)
    plt.close(fig)
    return valid[valid.nondominated].drop(columns=["nondominated"]).sort_values("qed", ascending=False)


if __name__ == "__main__":
    out.mkdir(parents=True, exist_ok=True)
    device = str(DEVICE)
    started = time.perf_counter()
    if not args.score_only:  # in order of importance, so a run cut short keeps the most
        campaign.run(workers=1)
        print(f"first seed finished at {time.perf_counter() - started:.0f} s", flush=True)
        if not args.no_front:
            front.run(workers=1)
            print(f"front finished at {time.perf_counter() - started:.0f} s", flush=True)
        tuned.run(workers=args.workers)
        print(f"DRAKES finished at {time.perf_counter() - started:.0f} s", flush=True)
        more.run(workers=args.workers)
        print(f"campaign finished at {time.perf_counter() - started:.0f} s", flush=True)
    scoring = time.perf_counter()
    parts = [score(c, device) for c in (campaign, more, tuned, *(() if args.no_front else (front,)))]
    rows = pd.concat([p[0] for p in parts], ignore_index=True)
    if rows.empty:
        raise SystemExit(f"no finished study in {storage}")
    designs = pd.concat([p[1] for p in parts], ignore_index=True)
    tokens = {k: v for p in parts for k, v in p[2].items()}
    order = {mth: i for i, mth in enumerate(METHOD_NAMES)}
    rows = rows.sort_values(["task", "method", "seed"], key=lambda c: c.map(order).fillna(len(order))
                            if c.name == "method" else c, kind="stable", ignore_index=True)
    rows.to_csv(out / "studies.csv", index=False)
    designs.to_csv(out / "designs.csv", index=False)
    for task in tasks:
        if not (rows.task == task).any():
            continue
        shown = table(rows, task)
        shown.to_csv(out / f"table_{task}.csv", index=False)
        (out / f"table_{task}.md").write_text(markdown(shown))
        print(f"\n{task}\n" + shown.to_string(index=False))
    plot_grid(designs[designs.task != "front"], tokens, out / "grid.png")
    if not args.no_front:
        nondominated = plot_front(designs, out / "front.png")
        nondominated.to_csv(out / "front.csv", index=False)
        sources = nondominated.groupby(["task", "method"]).size().rename("non-dominated").reset_index()
        print("\nnon-dominated molecules by source (first study that made each)\n" + sources.to_string(index=False))
    print(f"\nscored in {time.perf_counter() - scoring:.0f} s; wrote {out}/ in {time.perf_counter() - started:.0f} s")
