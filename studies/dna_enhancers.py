"""HepG2 enhancer design: reward-guided sampling from a masked-diffusion prior over 200 bp DNA.

    workbench run studies/dna_enhancers.py --scale gpu        # 640 sequences x 3 seeds per method (GPU)
    workbench run studies/dna_enhancers.py --scale cpu        # small setting: tiny prior, 32 sequences
    workbench run studies/dna_enhancers.py --front            # also: HepG2 vs K562 front over weight vectors
    workbench run studies/dna_enhancers.py --kl-sweep 1e-2,1e-1   # also: DRAKES at other KL weights
    workbench run --workers 4 studies/dna_enhancers.py        # 4 studies at once (they share one GPU)
    python studies/dna_enhancers.py --first-seed 2 --seeds 1 --out runs/seed2   # one seed, e.g. on another machine
    python studies/dna_enhancers.py --merge runs/dna_enhancers/gpu runs/seed2/gpu   # one table from several runs

Pretrained sampling, best-of-N, SMC (alpha 0.1 and 1), SVDD-PM, SVDD-MC, DRAKES and DRAKES without KL maximize the
HepG2 logit of the *reward* oracle (a CNN trained on one half of the chromosomes). Every number in
the table comes from the *held-out* oracle (trained on the other half) and the pretrained prior, in
the DRAKES paper's format: Pred-Activity (median held-out HepG2 logit), ATAC-Acc analogue (% called
HepG2-accessible by the held-out oracle), 3-mer Corr and JASPAR Corr with the top real HepG2
sequences, App-Log-Lik (median ELBO under the pretrained prior), diversity, denoiser and reward
calls (sequences scored), and wall time. Writes runs/dna_enhancers/<scale>/{table.csv, table.md,
spread.md (mean, min and max over seeds), studies.csv, reward_vs_naturalness.png, front.png}.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import workbench as wb  # noqa: E402
from domains.dna import CELL_TYPES, DNAEnhancer, metrics  # noqa: E402
from domains.dna.prior import load_prior  # noqa: E402
from optimizers.guidance import DRAKES, SMC, SVDD, BestOfN, Pretrained  # noqa: E402
from workbench.tables import markdown, mean_over_seeds  # noqa: E402

SCALES = {
    # the paper-sized run (GPU): 128 reverse steps, 20 SVDD candidates, best-of-21 (equal denoiser calls)
    "gpu": {"prior": "full", "n": 640, "steps": 128, "candidates": 20, "rollouts": 4096, "drakes_iterations": 100,
            "drakes_batch": 32, "truncate": 50, "front_n": 128, "value_epochs": 20, "kl_weight": 3e-2,
            "check_every": 10, "check_batch": 256},
    # a CPU setting that still exercises every method end to end
    "cpu": {"prior": "tiny", "n": 32, "steps": 24, "candidates": 6, "rollouts": 128, "drakes_iterations": 20,
            "drakes_batch": 16, "truncate": 8, "front_n": 16, "value_epochs": 3, "kl_weight": 3e-2,
            "check_every": 5, "check_batch": 32},
}

parser = argparse.ArgumentParser()
parser.add_argument("--scale", choices=sorted(SCALES), default="gpu" if torch.cuda.is_available() else "cpu")
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed + seeds - 1")
parser.add_argument("--methods",
                    default="pretrained,best_of_n,smc,smc_alpha1,svdd_pm,svdd_mc,drakes,drakes_budget,drakes_no_kl")
parser.add_argument("--kl-sweep", default="", help="extra DRAKES studies at these KL weights, e.g. 1e-3,3e-2")
parser.add_argument("--sweep-seeds", type=int, default=1, help="seeds per KL weight of --kl-sweep")
parser.add_argument("--front", action="store_true", help="also trace the HepG2 vs K562 front with SVDD-PM")
parser.add_argument("--out", default="runs/dna_enhancers")
parser.add_argument("--score-only", action="store_true", help="score the finished studies without running more")
parser.add_argument("--deterministic", action="store_true",
                    help="PyTorch's deterministic kernels only: the same seed gives the same sequences on a GPU")
parser.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                    help="the table and figure from the studies.csv and designs.csv of earlier runs (e.g. seeds run "
                         "on other machines); a study in a later DIR replaces the same study in an earlier one")
args, _ = parser.parse_known_args()
cfg = SCALES[args.scale]
n, steps, m = cfg["n"], cfg["steps"], cfg["candidates"]

drakes = {"iterations": cfg["drakes_iterations"], "train_batch": cfg["drakes_batch"], "truncate": cfg["truncate"],
          "lr": 5e-4, "temperature": 1.0, "steps": steps, "batch_size": n}


class Naturalness:
    """What DRAKES' naturalness budget watches: (mean ELBO under the prior, 3-mer correlation with the 300 real
    sequences the *reward* oracle rates most HepG2-active); the held-out oracle stays out of the optimization."""

    def __init__(self, prior: str) -> None:
        self.prior_config = prior
        self.reference = None

    def __repr__(self) -> str:  # recorded with the study's parameters: stable across processes
        return f"Naturalness(prior={self.prior_config!r}, measures=(elbo, kmer_corr_top{metrics.TOP_N}_reward_oracle))"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.reference is None:
            domain = DNAEnhancer(objectives=("hepg2",), oracle="reward", device=x.device)
            real = domain.encode(domain.dataset()["sequence"].tolist()).to(x.device)
            hepg2 = torch.cat([domain.logits(chunk)[:, CELL_TYPES.index("HepG2")] for chunk in real.split(4096)])
            self.reference = real[hepg2.argsort(descending=True)[:metrics.TOP_N]]
        prior = load_prior(self.prior_config, x.device)
        generator = torch.Generator(device=x.device).manual_seed(0)
        loglik = prior.log_likelihood(x, samples=8, generator=generator).mean()
        return torch.stack([loglik.cpu(), torch.tensor(metrics.kmer_correlation(x, self.reference))])

METHODS = {
    "pretrained": Pretrained(steps=steps, batch_size=n),
    "best_of_n": BestOfN(n_samples=m + 1, steps=steps, batch_size=n),
    "smc": SMC(alpha=0.1, steps=steps, batch_size=n),
    "smc_alpha1": SMC(alpha=1.0, steps=steps, batch_size=n),
    "svdd_pm": SVDD(n_candidates=m, value="pm", steps=steps, batch_size=n),
    "svdd_mc": SVDD(n_candidates=m, value="mc", rollouts=cfg["rollouts"], value_epochs=cfg["value_epochs"], steps=steps,
                    batch_size=n),
    "drakes": DRAKES(kl_weight=cfg["kl_weight"], **drakes),
    # the same, within 3 % of the pretrained model's log-likelihood and 3-mer correlation at every check
    "drakes_budget": DRAKES(kl_weight=cfg["kl_weight"], budget=0.03, naturalness=Naturalness(cfg["prior"]),
                            check_every=cfg["check_every"], check_batch=cfg["check_batch"], **drakes),
    "drakes_no_kl": DRAKES(kl_weight=0.0, **drakes),
}
chosen = args.methods.split(",")
unknown = sorted(set(chosen) - set(METHODS))
if unknown:
    raise SystemExit(f"unknown methods {unknown}; choose from {sorted(METHODS)}")

out = Path(args.out) / args.scale
campaign = wb.Campaign(f"dna-enhancers-{args.scale}", storage=f"sqlite:///{out}/dna.db",
                       deterministic=args.deterministic)
campaign.grid(DNAEnhancer(objectives=("hepg2",), oracle="reward", prior=cfg["prior"]),
              {k: METHODS[k] for k in chosen}, seeds=range(args.first_seed, args.first_seed + args.seeds), budget=n)
for kl in (float(w) for w in args.kl_sweep.split(",") if w):
    campaign.grid(DNAEnhancer(objectives=("hepg2",), oracle="reward", prior=cfg["prior"]),
                  {f"drakes_kl{kl:g}": DRAKES(kl_weight=kl, **drakes)}, seeds=range(args.sweep_seeds), budget=n)
WEIGHTS = [(1.0, 0.0), (0.8, 0.2), (0.6, 0.4), (0.5, 0.5), (0.4, 0.6), (0.2, 0.8), (0.0, 1.0)]
front = wb.Campaign(f"dna-front-{args.scale}", storage=f"sqlite:///{out}/dna.db")
for w in WEIGHTS:
    front.add(DNAEnhancer(objectives=("hepg2", "k562"), oracle="reward", prior=cfg["prior"]),
              SVDD(n_candidates=m, value="pm", steps=steps, batch_size=cfg["front_n"], weights=w,
                   scalarization="sum"), label=f"svdd_pm_w{w[0]:.1f}", budget=cfg["front_n"])


HEPG2, K562 = CELL_TYPES.index("HepG2"), CELL_TYPES.index("K562")  # columns of the oracle's logits


def tokens_of(frame: pd.DataFrame) -> torch.Tensor:
    return metrics.encode(frame["sequence"].tolist())


def score_studies(campaign: wb.Campaign, device: str) -> pd.DataFrame:
    """Held-out oracle, prior log-likelihood and DRAKES metrics of every study's designs: one row per study."""
    heldout = DNAEnhancer(objectives=("hepg2", "k562"), oracle="heldout", device=device)
    prior = load_prior(cfg["prior"], device)
    reference = tokens_of(metrics.top_real_sequences("HepG2", device=device))
    rows, per_design = [], []
    for name, entry in campaign.entries.items():
        study = campaign.study(name)
        if study.n_evaluations < entry.budget:
            print(f"skipping unfinished study {name} ({study.n_evaluations} of {entry.budget})")
            continue
        results = study.results()
        x = tokens_of(results).to(device)
        logits = heldout.logits(x).cpu()
        loglik = prior.log_likelihood(x, samples=16, generator=torch.Generator(device=device).manual_seed(0)).cpu()
        counters = study.counters()
        summary = metrics.summarize(x.cpu(), reference, logits)
        seconds = counters.get("optimizer_seconds", 0.0) + counters.get("evaluation_seconds", 0.0)
        rows.append({"method": entry.label, "seed": entry.seed,
                     "reward_oracle_median": float(np.median(results["hepg2"])),
                     "pred_activity": summary["median_logit"],
                     "atac_acc": 100.0 * summary["accessible_fraction"],
                     "kmer_corr": summary["kmer_correlation"], "jaspar_corr": summary["motif_correlation"],
                     "app_log_lik": float(loglik.median()), "diversity": summary["diversity"],
                     "denoiser_sequences": counters.get("denoiser_sequences", 0),
                     "reward_sequences": counters.get("reward_sequences", 0),
                     "seconds": seconds, "sequences_per_second": len(x) / max(seconds, 1e-9),
                     "reward_time_share": counters.get("reward_seconds", 0.0) / max(seconds, 1e-9)})
        per_design.append(pd.DataFrame({"method": entry.label, "seed": entry.seed, "hepg2": logits[:, HEPG2].numpy(),
                                        "k562": logits[:, K562].numpy(), "log_likelihood": loglik.numpy()}))
    return pd.DataFrame(rows), pd.concat(per_design, ignore_index=True)


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std over seeds) per method, in the order the methods were given."""
    return mean_over_seeds(rows.drop(columns=["seed"]), "method",
                           plus_minus=["reward_oracle_median", "pred_activity", "atac_acc", "kmer_corr", "jaspar_corr",
                                       "app_log_lik", "diversity"],
                           counts=["denoiser_sequences", "reward_sequences"],
                           tenths=["seconds", "sequences_per_second"], percents=["reward_time_share"])


def spread(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method, the number of seeds and "mean (min to max)" over seeds of the held-out metrics: a threshold such
    as 3-mer Corr >= 0.8 is judged on the worst seed, not on the mean."""
    metrics_shown = {"pred_activity": 2, "atac_acc": 1, "kmer_corr": 3, "jaspar_corr": 3, "app_log_lik": 1,
                     "diversity": 3}
    out = []
    for method, group in rows.groupby("method", sort=False):
        row = {"method": method, "seeds": ", ".join(str(s) for s in sorted(group["seed"]))}
        for col, digits in metrics_shown.items():
            v = group[col]
            row[col] = f"{v.mean():.{digits}f} ({v.min():.{digits}f} to {v.max():.{digits}f})"
        out.append(row)
    return pd.DataFrame(out)


def plot_naturalness(designs: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 5))
    for method, group in designs.groupby("method", sort=False):
        ax.scatter(group["log_likelihood"], group["hepg2"], s=6, alpha=0.4, label=method)
    ax.set_xlabel("log-likelihood under the pretrained prior (ELBO, nats)")
    ax.set_ylabel("HepG2 logit, held-out oracle")
    ax.set_title("Reward against naturalness")
    ax.legend(markerscale=3, fontsize=8)
    wb.save(fig, path)


def plot_front(designs: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 5))
    for method, group in designs.groupby("method", sort=False):
        ax.scatter(group["k562"], group["hepg2"], s=8, alpha=0.5, label=method)
    points = designs[["k562", "hepg2"]].to_numpy()
    mask = wb.pareto.is_nondominated(torch.as_tensor(-points)).numpy()
    best = points[mask]
    best = best[np.argsort(best[:, 0])]
    ax.plot(best[:, 0], best[:, 1], "k-", lw=1.5, label="non-dominated")
    ax.set_xlabel("K562 logit, held-out oracle")
    ax.set_ylabel("HepG2 logit, held-out oracle")
    ax.set_title("SVDD-PM over weight vectors (HepG2, K562)")
    ax.legend(fontsize=7)
    wb.save(fig, path)


def merged_runs(folders: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-study and per-design rows of several runs' output folders; the last folder's version of a
    (method, seed) wins. A folder without designs.csv adds its studies to the tables but not to the figure."""
    rows = pd.concat([pd.read_csv(f / "studies.csv").assign(source=i) for i, f in enumerate(folders)],
                     ignore_index=True)
    designs = [pd.read_csv(f / "designs.csv").assign(source=i) for i, f in enumerate(folders)
               if (f / "designs.csv").exists()]
    designs = pd.concat(designs, ignore_index=True) if designs else pd.DataFrame(
        columns=["method", "seed", "hepg2", "k562", "log_likelihood", "source"])
    rows = rows.drop_duplicates(["method", "seed"], keep="last")
    kept = rows.set_index(["method", "seed", "source"]).index
    designs = designs[designs.set_index(["method", "seed", "source"]).index.isin(kept)]
    return rows.drop(columns="source").reset_index(drop=True), designs.drop(columns="source")


if __name__ == "__main__":
    out.mkdir(parents=True, exist_ok=True)
    device = str(wb.resolve_device("auto"))
    if args.merge:
        rows, designs = merged_runs([Path(d) for d in args.merge])
    else:
        if not args.score_only:
            campaign.run()
        rows, designs = score_studies(campaign, device)
    rows.to_csv(out / "studies.csv", index=False)
    designs.to_csv(out / "designs.csv", index=False)
    shown = table(rows)
    shown.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(markdown(shown))
    (out / "spread.md").write_text(markdown(spread(rows)))
    print(shown.to_string(index=False))
    if len(designs):
        plot_naturalness(designs, out / "reward_vs_naturalness.png")
    print(f"wrote {out / 'table.csv'}, {out / 'spread.md'}" + (f" and {out / 'reward_vs_naturalness.png'}"
                                                                   if len(designs) else " (no designs.csv: no figure)"))
    if args.front:
        if not args.score_only:
            front.run()
        _, front_designs = score_studies(front, device)
        front_designs.to_csv(out / "front.csv", index=False)
        plot_front(front_designs, out / "front.png")
        print(f"wrote {out / 'front.png'}")
