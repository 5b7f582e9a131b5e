"""Protein inverse folding: reward-guided sampling from ProteinMPNN as a masked-diffusion prior (DRAKES' protein task).

    python studies/protein_design.py --scale gpu                # 3 backbones, 128 designs x 3 seeds per method (GPU)
    python studies/protein_design.py --scale cpu                # tiny setting: 1A8O, 8 designs, 6 steps (< 90 s)
    python studies/protein_design.py --scale gpu --workers 4    # later seeds and the DRAKES studies 4 at a time
    python studies/protein_design.py --scale gpu --score-only   # tables and figure from the stored studies
    workbench run studies/protein_design.py --scale cpu         # the same through the CLI

For each backbone (default 1A8O:A, 4CUP:A, 7CFN:N; 1GBT:A with ``--backbones``) the samplers design sequences
for the fixed structure: pretrained sampling, best-of-N (N = M + 1: the denoiser sequences of SVDD-PM), SMC,
SVDD-PM, SVDD-MC, DRAKES, DRAKES with a naturalness budget and DRAKES without KL.

**Reward: fold fit, with the instability index as a constraint.** The reward oracle's fold fit (``soluble_v_48_020``,
mean log-likelihood per residue in nats) is the one objective; the ProtParam instability index is a constraint
``instability <= 40`` (:class:`StableProteinDesign`: ``ProteinDesign`` exposes objectives only, so the study adds
the constraint and its exact, differentiable score). ``optimizers.guidance.Reward`` subtracts ``10 * max(instability
- 40, 0)`` from the fold fit, so an unstable design loses 10 nats per index point (fold fit differences between
designs are below 1 nat): a hard constraint in effect, with a gradient towards feasibility for DRAKES, and no
pull at all once a design is stable. A weighted sum ``fold_fit - w * instability`` was tried first (SVDD-PM, M = 4,
16 designs, 12 steps on 1A8O, CPU): instability is cheap to lower, so w = 0.02 already drove the index to 17 and
w = 0.05 to 12 (far below the threshold) at the cost of fold fit: held-out fold fit -1.84 / -1.97 and success
6 % / 0 %, against -1.64 and 44 % with the constraint (100 / 100 / 94 % stable). The constraint optimizes what
the success criterion asks for. SMC (alpha 0.1) on the same setting: w = 0.02 gave index 8.5, held-out -1.77,
success 12 %, diversity 0.41; the constraint index 29.1, -1.80, 0 %, 0.47 (16 designs: noisy); the penalty of
unstable x0_hat estimates does not collapse SMC's particles.

**Success** (per design): held-out fold fit >= the native sequence's held-out fold fit on its backbone AND
instability index < 40. The success rate is the share of such designs.

**Every reported number** is computed from the stored designs with the held-out checkpoint
(``ProteinDesign(oracle="heldout")``, the CA-only ``ca_v_48_020`` that the optimization never sees) and
``domains.protein.metrics``: native sequence recovery, stable % (instability < 40), held-out fold fit (median, and
the % of designs at or above the native's), instability (median), the pretrained prior's log-likelihood
(ProteinMPNN scoring with ``vanilla_v_48_020``, median), diversity (mean pairwise Hamming distance / L), success
rate, denoiser and reward calls and the sequences they processed, wall time (optimizer + evaluation seconds of the
study), sequences per second and the share of the wall time spent in reward calls. The reward oracle's fold fit
is kept in ``studies.csv`` only (``reward_fold_fit``).

**DRAKES** (temperature 0.5, lr 1e-3) penalizes the trajectory KL to the prior, summed over positions and steps,
with weight 3e-3. On the CPU (1A8O, 30 iterations of batch 4, 20 steps, last 4 relaxed, 16 designs, seed 0;
held-out fold fit / success / diversity): KL weight 0 gave -1.24 / 100 % / 0.15 (collapsed), 1e-3 -1.39 / 81 % /
0.32, 3e-3 -1.66 / 56 % / 0.53, 1e-2 -1.80 / 0 % / 0.62 (pretrained, 12 steps: -2.04 / 0 % / 0.72).

**DRAKES with a budget** (``drakes_budget``): ``DRAKES(kl_weight=1e-3, budget=0.03,
naturalness=PriorLogLikelihood(backbone))`` checks every ``check_every`` iterations that the fine-tuned model's
samples keep their mean ProteinMPNN log-likelihood under the pretrained prior's checkpoint
(``metrics.prior_log_likelihood``, not the default ELBO) within 3 % of the pretrained model's; a check that fails
rolls the weights back and doubles the KL weight. Its checks are summarized in ``studies.csv`` (``budget_checks``,
``budget_checks_within``, ``kl_weight_final``). The reward's fold fit (soluble checkpoint) and the prior's
log-likelihood (vanilla checkpoint) rise together, so this budget rarely binds: in the CPU run above (KL weight 1e-3,
checks every 10 iterations on 16 samples) the prior log-likelihood rose by 27-33 % at every check (-1.45 / 88 % /
0.41). It guards against reward hacking that lowers naturalness, not against the loss of diversity.

Table (DRAKES' protein format plus our cost columns): one row per method, mean ± std over seeds of the per-seed
means over backbones. Writes runs/protein_design/<scale>/{table.md, table.csv (pooled), table_backbones.csv (per
backbone), studies.csv (one row per study), designs.csv (one row per design), fold_fit_vs_instability.png}.
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
from domains.protein import STABLE_BELOW, ProteinDesign, instability, metrics  # noqa: E402
from optimizers.guidance import DRAKES, SMC, SVDD, BestOfN, Pretrained  # noqa: E402
from optimizers.guidance.drakes import budget_summary  # noqa: E402
from workbench.objectives import Constraint, as_constraints  # noqa: E402
from workbench.serialization import unpack  # noqa: E402
from workbench.tables import markdown, mean_over_seeds  # noqa: E402

SCALES = {
    # the paper-sized run (GPU): 50 reverse steps, 8 SVDD candidates, best-of-9 (equal denoiser sequences)
    "gpu": {"backbones": "1A8O:A,4CUP:A,7CFN:N", "n": 128, "seeds": 3, "steps": 50, "candidates": 8,
            "rollouts": 1024, "value_epochs": 8, "drakes_iterations": 50, "drakes_batch": 16, "truncate": 10,
            "kl_samples": 8, "check_every": 10, "check_batch": 64},
    # a tiny CPU setting that still runs every method end to end (the test's)
    "cpu": {"backbones": "1A8O:A", "n": 8, "seeds": 1, "steps": 6, "candidates": 2, "rollouts": 16,
            "value_epochs": 2, "drakes_iterations": 2, "drakes_batch": 4, "truncate": 2, "kl_samples": 2,
            "check_every": 1, "check_batch": 4},
}
# SMC's alpha (rewards in nats per residue); DRAKES: Gumbel-softmax temperature, learning rate, KL weight (on the
# trajectory KL summed over positions and steps; see the module docstring), and with the naturalness budget: the
# budget (relative drop of the prior log-likelihood) and a weaker starting KL weight, so that the budget governs
SMC_ALPHA = 0.1
DRAKES_TEMPERATURE, DRAKES_LR, KL_WEIGHT = 0.5, 1e-3, 3e-3
BUDGET, BUDGET_KL_WEIGHT = 0.03, 1e-3
METHOD_NAMES = ("pretrained", "best_of_n", "smc", "svdd_pm", "svdd_mc", "drakes", "drakes_budget", "drakes_no_kl")

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="gpu" if torch.cuda.is_available() else "cpu")
parser.add_argument("--backbones", default=None, help="comma-separated, e.g. 1A8O:A,4CUP:A,7CFN:N,1GBT:A")
parser.add_argument("--seeds", type=int, default=None, help="default: 3 (gpu), 1 (cpu)")
parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
parser.add_argument("--methods", default=",".join(METHOD_NAMES))
parser.add_argument("--workers", type=int, default=None,
                    help="studies at once for the seeds after the first and DRAKES (default: $WORKBENCH_WORKERS or 1)")
parser.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: 1 for the cpu scale on a CPU, else torch's default)")
parser.add_argument("--out", default="runs/protein_design")
parser.add_argument("--score-only", action="store_true", help="score the finished studies without running more")
parser.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                    help="tables and figure from the studies.csv and designs.csv of earlier runs (e.g. seeds run on "
                         "other machines); a study in a later DIR replaces the same study in an earlier one")
args, _ = parser.parse_known_args()
cfg = SCALES[args.scale]
n, steps, m = cfg["n"], cfg["steps"], cfg["candidates"]
seeds = cfg["seeds"] if args.seeds is None else args.seeds
backbones = (args.backbones or cfg["backbones"]).split(",")
chosen = args.methods.split(",")
unknown = sorted(set(chosen) - set(METHOD_NAMES))
if unknown:
    raise SystemExit(f"unknown methods {unknown}; choose from {METHOD_NAMES}")
DEVICE = wb.resolve_device("auto")
# the cpu scale's batches are small and gain little from more threads, which lose much on shared cores (the cpu
# scale on 2 cores shared with other jobs: 34 s with one thread, 224 s with torch's default of two)
threads = args.threads if args.threads is not None else 1 if args.scale == "cpu" and DEVICE.type == "cpu" else 0
if threads > 0:
    torch.set_num_threads(threads)


class StableProteinDesign(ProteinDesign):
    """``ProteinDesign`` maximizing fold fit under the constraint instability index <= 40 (predicted stable): the
    index is scored exactly (and differentiably for relaxed sequences) beside the objectives."""

    def __init__(self, backbone: str, **kwargs) -> None:
        super().__init__(backbone, objectives=("fold_fit",), **kwargs)
        self.constraints = as_constraints([Constraint("instability", STABLE_BELOW, "<=")])

    def scores(self, probs: torch.Tensor, sequences: list[str] | None = None) -> dict[str, torch.Tensor]:
        out = super().scores(probs, sequences)
        out["instability"] = instability(probs)
        return out


class PriorLogLikelihood:
    """DRAKES' naturalness: the mean ProteinMPNN log-likelihood per residue of designs under the pretrained prior's
    checkpoint (``metrics.prior_log_likelihood``, deterministic), instead of the default ELBO."""

    def __init__(self, backbone: str) -> None:
        self.backbone = backbone
        self._domain = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._domain is None:
            self._domain = ProteinDesign(self.backbone, device=x.device)
        return metrics.prior_log_likelihood(self._domain, x).mean()

    def __repr__(self) -> str:  # recorded with the study's parameters: no memory address, so studies resume
        return f"PriorLogLikelihood({self.backbone!r})"


def methods(backbone: str) -> dict:
    """The samplers of one backbone (only the budget's naturalness measure depends on it)."""
    common = {"steps": steps, "batch_size": n}
    drakes = {"iterations": cfg["drakes_iterations"], "train_batch": cfg["drakes_batch"], "truncate": cfg["truncate"],
              "lr": DRAKES_LR, "temperature": DRAKES_TEMPERATURE, "kl_samples": cfg["kl_samples"], **common}
    return {"pretrained": Pretrained(**common),
            "best_of_n": BestOfN(n_samples=m + 1, **common),
            "smc": SMC(alpha=SMC_ALPHA, **common),
            "svdd_pm": SVDD(n_candidates=m, value="pm", **common),
            "svdd_mc": SVDD(n_candidates=m, value="mc", rollouts=cfg["rollouts"], value_epochs=cfg["value_epochs"],
                            **common),
            "drakes": DRAKES(kl_weight=KL_WEIGHT, **drakes),
            "drakes_budget": DRAKES(kl_weight=BUDGET_KL_WEIGHT, budget=BUDGET, naturalness=PriorLogLikelihood(backbone),
                                    check_every=cfg["check_every"], check_batch=cfg["check_batch"], **drakes),
            "drakes_no_kl": DRAKES(kl_weight=0.0, **drakes)}


out = Path(args.out) / args.scale
storage = f"sqlite:///{out}/protein.db"
# the first seed of the samplers runs alone (its wall times are the speed figures); later seeds and the DRAKES
# fine-tuning runs may share the device (--workers)
campaign = wb.Campaign(f"protein-design-{args.scale}", storage=storage)
more = wb.Campaign(f"protein-design-{args.scale}-seeds", storage=storage)
tuned = wb.Campaign(f"protein-design-{args.scale}-drakes", storage=storage)
for seed in range(args.first_seed, args.first_seed + seeds):
    for backbone in backbones:
        domain = StableProteinDesign(backbone, device=DEVICE)
        samplers = methods(backbone)
        for label in chosen:
            target = tuned if label.startswith("drakes") else campaign if seed == 0 else more
            target.add(domain, samplers[label], seed=seed, budget=n, label=f"{backbone}/{label}")


def drakes_checks(stored: "wb.StudyResults") -> dict[str, float]:
    """The naturalness-budget checks of a DRAKES study, from its stored optimizer state."""
    snapshot = stored.storage.load_snapshot(stored.record.id)
    return budget_summary(unpack(snapshot[2]) if snapshot is not None else {})


_JUDGES: dict[str, tuple[ProteinDesign, float]] = {}


def judge_of(backbone: str, device: str) -> tuple[ProteinDesign, float]:
    """The held-out domain of a backbone and its native sequence's held-out fold fit."""
    if backbone not in _JUDGES:
        judge = ProteinDesign(backbone, oracle="heldout", device=device)
        native = judge.native_tokens()[None].to(device)
        _JUDGES[backbone] = (judge, float(metrics.heldout_log_likelihood(judge, native)[0]))
    return _JUDGES[backbone]


def score(campaign: wb.Campaign, device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held-out metrics of every finished study: one row per study, and one row per design."""
    rows, designs = [], []
    for name, entry, stored in campaign.finished():
        backbone, method = entry.label.split("/")
        judge, native_fit = judge_of(backbone, device)
        x = stored.designs().to(device)
        fit = metrics.heldout_log_likelihood(judge, x).cpu()
        prior_ll = metrics.prior_log_likelihood(judge, x).cpu()
        index = instability(judge.one_hot(x).double()).cpu()
        rec = metrics.recovery(x, judge.native_tokens()).cpu()
        success = (fit >= native_fit) & (index < STABLE_BELOW)
        counters = stored.counters()
        seconds = counters.get("optimizer_seconds", 0.0) + counters.get("evaluation_seconds", 0.0)
        row = {"study": name, "backbone": backbone, "method": method, "seed": entry.seed,
               "heldout_fold_fit": float(fit.median()),
               "above_native": 100 * float((fit >= native_fit).double().mean()), "native_fold_fit": native_fit,
               "instability": float(index.median()),
               "stable": 100 * metrics.stable_fraction(index), "recovery": float(rec.mean()),
               "success": 100 * float(success.double().mean()), "prior_log_lik": float(prior_ll.median()),
               "diversity": metrics.diversity(x), "reward_fold_fit": float(stored.frame()["fold_fit"].median()),
               "denoiser_calls": counters.get("denoiser_calls", 0),
               "denoiser_sequences": counters.get("denoiser_sequences", 0),
               "reward_calls": counters.get("reward_calls", 0), "reward_sequences": counters.get("reward_sequences", 0),
               "seconds": seconds, "sequences_per_second": len(x) / max(seconds, 1e-9),
               "reward_time_share": counters.get("reward_seconds", 0.0) / max(seconds, 1e-9)}
        if method.startswith("drakes"):
            row.update(drakes_checks(stored))
        rows.append(row)
        designs.append(pd.DataFrame({"backbone": backbone, "method": method, "seed": entry.seed,
                                     "heldout_fold_fit": fit.numpy(), "instability": index.numpy(),
                                     "prior_log_lik": prior_ll.numpy(), "recovery": rec.numpy(),
                                     "success": success.numpy(), "sequence": judge.decode(x.cpu())}))
    return pd.DataFrame(rows), pd.concat(designs, ignore_index=True) if designs else pd.DataFrame()


def natives(device: str) -> pd.DataFrame:
    """The native sequence of each backbone as a design row (method "native")."""
    parts = []
    for backbone in backbones:
        judge, fit = judge_of(backbone, device)
        native = judge.native_tokens()[None]
        index = float(instability(judge.one_hot(native).double())[0])
        parts.append({"backbone": backbone, "method": "native", "seed": -1, "heldout_fold_fit": fit,
                      "instability": index,
                      "prior_log_lik": float(metrics.prior_log_likelihood(judge, native.to(device))[0]),
                      "recovery": 1.0, "success": index < STABLE_BELOW, "sequence": judge.native})
    return pd.DataFrame(parts)


PLUS_MINUS = ["heldout_fold_fit", "above_native", "instability", "stable", "recovery", "success", "prior_log_lik",
              "diversity"]
COUNTS = ["denoiser_calls", "denoiser_sequences", "reward_calls", "reward_sequences"]
TENTHS = ["seconds", "sequences_per_second"]


def table(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean ± std over seeds per ``by`` (methods, or backbone and method) of the per-seed means over backbones."""
    columns = PLUS_MINUS + COUNTS + TENTHS + ["reward_time_share"]
    per_seed = rows.groupby([*by, "seed"], sort=False)[columns].mean().reset_index()
    if len(by) > 1:  # keep the backbone in the label so mean_over_seeds can group by one column
        per_seed.insert(0, "group", per_seed[by].astype(str).agg("/".join, axis=1))
    key = by[0] if len(by) == 1 else "group"
    shown = mean_over_seeds(per_seed.drop(columns=["seed", *([] if len(by) == 1 else by)]), key,
                            plus_minus=PLUS_MINUS, counts=COUNTS, tenths=TENTHS, percents=["reward_time_share"])
    shown.insert(1, "seeds", per_seed.groupby(key, sort=False).size().to_numpy())
    if len(by) > 1:
        shown[by] = shown["group"].str.split("/", expand=True).to_numpy()
        shown = shown.drop(columns=["group"])[[*by, "seeds", *columns]]
    return shown


def plot_designs(designs: pd.DataFrame, path: Path) -> None:
    """Held-out fold fit against instability of every design, one panel per backbone, natives marked."""
    from matplotlib.lines import Line2D

    names = list(designs["backbone"].unique())
    fig, axes = plt.subplots(1, len(names), figsize=(4.8 * len(names) + 1.6, 4.4), squeeze=False)
    palette = ["#7f7f7f", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#1f77b4", "#17becf", "#e377c2", "#8c564b"]
    colours = dict(zip(METHOD_NAMES, palette))
    present = [mth for mth in METHOD_NAMES if mth in set(designs["method"])]
    for ax, backbone in zip(axes[0], names):
        here = designs[designs["backbone"] == backbone]
        for method in present:
            group = here[here["method"] == method]
            ax.scatter(group["instability"], group["heldout_fold_fit"], s=8, alpha=0.45, color=colours[method],
                       linewidths=0, rasterized=True)
        native = here[here["method"] == "native"]
        ax.scatter(native["instability"], native["heldout_fold_fit"], marker="*", s=220, color="black",
                   edgecolors="white", linewidths=0.8, zorder=5)
        ax.axvline(STABLE_BELOW, color="black", lw=0.8, ls="--")
        ax.axhline(float(native["heldout_fold_fit"].iloc[0]), color="black", lw=0.8, ls=":")
        ax.margins(y=0.08)
        ax.set_title(backbone, fontsize=10)
        ax.set_xlabel("instability index")
    axes[0][0].set_ylabel("held-out fold fit (ca_v_48_020, nats per residue)")
    handles = [Line2D([], [], ls="", marker="o", markersize=6, color=colours[mth], label=mth) for mth in present]
    handles += [Line2D([], [], ls="", marker="*", markersize=12, color="black", label="native sequence"),
                Line2D([], [], color="black", lw=0.8, ls="--", label="instability 40"),
                Line2D([], [], color="black", lw=0.8, ls=":", label="native's fold fit")]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False,
               title="success: above dotted,\nleft of dashed", title_fontsize=8)
    fig.tight_layout()
    wb.save(fig, path)
    plt.close(fig)


def merged_runs(folders: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-study rows and per-design rows of several runs' output folders; the last folder's version of a
    study wins, and the natives are taken once."""
    rows = pd.concat([pd.read_csv(f / "studies.csv") for f in folders], ignore_index=True)
    rows = rows.drop_duplicates("study", keep="last")
    designs = pd.concat([pd.read_csv(f / "designs.csv").assign(source=i) for i, f in enumerate(folders)],
                        ignore_index=True)
    source = designs.groupby(["backbone", "method", "seed"])["source"].transform("max")
    designs = designs[designs["source"] == source].drop(columns="source")
    designs = designs[(designs["method"] == "native") | designs.set_index(["backbone", "method", "seed"]).index.isin(
        rows.set_index(["backbone", "method", "seed"]).index)]
    natives = designs["method"] == "native"
    return rows, pd.concat([designs[~natives], designs[natives].drop_duplicates("backbone")], ignore_index=True)


if __name__ == "__main__":
    out.mkdir(parents=True, exist_ok=True)
    device = str(DEVICE)
    started = time.perf_counter()
    if not (args.score_only or args.merge):  # in order of importance, so a run cut short keeps the most
        campaign.run(workers=1)
        print(f"first seed finished at {time.perf_counter() - started:.0f} s", flush=True)
        tuned.run(workers=args.workers)
        more.run(workers=args.workers)
        print(f"campaign finished at {time.perf_counter() - started:.0f} s", flush=True)
    if args.merge:
        rows, designs = merged_runs([Path(d) for d in args.merge])
    else:
        parts = [score(c, device) for c in (campaign, more, tuned)]
        rows = pd.concat([p[0] for p in parts], ignore_index=True)
        designs = pd.concat([p[1] for p in parts] + [natives(device)], ignore_index=True)
    if rows.empty:
        raise SystemExit(f"no finished study in {storage}")
    order = {mth: i for i, mth in enumerate(METHOD_NAMES)}
    rows = rows.sort_values(["method", "backbone", "seed"], key=lambda c: c.map(order) if c.name == "method" else c,
                            kind="stable", ignore_index=True)
    rows.to_csv(out / "studies.csv", index=False)
    designs.to_csv(out / "designs.csv", index=False)
    shown = table(rows, ["method"])
    shown.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(markdown(shown))
    by_backbone = rows.iloc[np.argsort(rows["backbone"].map(backbones.index).to_numpy(), kind="stable")]
    table(by_backbone, ["backbone", "method"]).to_csv(out / "table_backbones.csv", index=False)
    print(shown.to_string(index=False))
    plot_designs(designs, out / "fold_fit_vs_instability.png")
    print(f"wrote {out}/ in {time.perf_counter() - started:.0f} s")
