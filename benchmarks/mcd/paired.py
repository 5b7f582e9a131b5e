"""Paired comparison of counterfactual quality, workbench against decode-mcd, seed by seed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

# metric -> +1 where lower is better, -1 where higher is better
DIRECTIONS = {"gower": 1.0, "changed": 1.0, "manifold": 1.0, "diversity": -1.0}


def paired_rows(rows: list[dict[str, Any]], ours: str = "workbench", theirs: str = "decode-mcd") -> list[dict[str, Any]]:
    """One row per (problem, metric): mean +- standard error of each tool over the seeds both
    completed, the mean paired difference (ours - theirs) +- its standard error, that difference
    in % of theirs, the paired t-test's two-sided p-value, and on how many seeds ours was no worse."""
    out = []
    for problem in dict.fromkeys(r["problem"] for r in rows):
        by_seed = {side: {r["seed"]: r for r in rows if r["problem"] == problem and r["tool"] == side
                          and isinstance(r.get("gower"), float) and math.isfinite(r["gower"])}
                   for side in (ours, theirs)}
        seeds = sorted(set(by_seed[ours]) & set(by_seed[theirs]))
        if len(seeds) < 2:
            continue
        for metric, sign in DIRECTIONS.items():
            a = np.array([by_seed[ours][s][metric] for s in seeds])
            b = np.array([by_seed[theirs][s][metric] for s in seeds])
            diff = a - b
            se = lambda v: float(v.std(ddof=1) / math.sqrt(len(v)))  # noqa: E731
            p = float(stats.ttest_rel(a, b).pvalue) if diff.std() > 0 else float("nan")
            out.append({"problem": problem, "metric": metric, "seeds": len(seeds),
                        ours: f"{a.mean():.4f} ± {se(a):.4f}", theirs: f"{b.mean():.4f} ± {se(b):.4f}",
                        "diff": f"{diff.mean():+.4f} ± {se(diff):.4f}", "diff %": 100.0 * diff.mean() / b.mean(),
                        "p (paired t)": p, "ours no worse": f"{int((sign * diff <= 0).sum())}/{len(seeds)}"})
    return out
