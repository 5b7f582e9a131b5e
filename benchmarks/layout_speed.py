"""Layouts per second of each layout sampler, through ``Study.run`` (the user's path: sampler, evaluation engine,
SQLite storage), at batch 512 on the full prior.

    python benchmarks/layout_speed.py --device cuda            # the issue's setting: batch 512 on a GPU
    python benchmarks/layout_speed.py --device cpu --n 32 --threads 2

Per method: wall seconds of ``Study.run(n)`` with ``batch_size=n``, layouts per second, the denoiser sequences it ran
and the share of the wall time spent in reward calls (the rest is the denoiser, the evaluation of the final designs and
storage). DRAKES' row includes its fine-tuning (``--drakes-iterations`` of ``--drakes-batch`` trajectories, 10 relaxed
steps, straight-through, ``--drakes-estimator``: the study's gpu setting); its sampling alone is the row "DRAKES (tuned,
sampling only)". The prior is loaded and run once before timing, so no row pays for start-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _table import print_table  # noqa: E402

import workbench as wb  # noqa: E402
from domains.layouts import PageLayouts, load_corrector  # noqa: E402
from optimizers.guidance import DRAKES, SMC, SVDD, BestOfN, Pretrained  # noqa: E402
from workbench.generative import Correction  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n", type=int, default=512, help="layouts per study, all in one batch")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=8, help="SVDD-PM's M; best-of-N uses N = M + 1")
    parser.add_argument("--drakes-iterations", type=int, default=150)
    parser.add_argument("--drakes-batch", type=int, default=64)
    parser.add_argument("--drakes-estimator", choices=("relaxed", "swaps"), default="swaps")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n, dev = args.n, args.device
    dom = PageLayouts(objectives=("alignment", "overlap", "coverage"), prior="full", device=dev)
    common = {"steps": args.steps, "batch_size": n, "weights": [10.0, 1.0, 10.0]}
    fix = Correction(load_corrector("full", dev), times=(0.8, 0.6, 0.4, 0.2), threshold=0.2)
    drakes = DRAKES(iterations=args.drakes_iterations, train_batch=args.drakes_batch, truncate=min(10, args.steps),
                    kl_weight=1e-2, lr=1e-4, temperature=0.5, straight_through=True,
                    estimator=args.drakes_estimator, swap_tokens=dom.tokenizer.moves, **common)
    methods = {"pretrained": Pretrained(**common), "pretrained + corrector": Pretrained(corrector=fix, **common),
               f"best-of-{args.candidates + 1}": BestOfN(n_samples=args.candidates + 1, **common),
               "SMC": SMC(alpha=0.1, **common), f"SVDD-PM (M = {args.candidates})":
                   SVDD(n_candidates=args.candidates, value="pm", **common),
               f"DRAKES ({args.drakes_iterations} x {args.drakes_batch} fine-tuning, {args.drakes_estimator}, "
               "+ sampling)": drakes}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{tmp}/speed.db"
        wb.Study(dom, Pretrained(steps=4, batch_size=n), storage=storage, name="warm-up", device=dev).run(n)
        for label, opt in methods.items():
            study = wb.Study(dom, opt, storage=storage, name=label, seed=0, device=dev)
            _sync(dev)
            started = time.perf_counter()
            study.run(n, progress=False)
            _sync(dev)
            wall = time.perf_counter() - started
            c = study.counters()
            rows.append({"method": label, "layouts": n, "wall s": wall, "layouts / s": n / wall,
                         "denoiser seqs": int(c.get("denoiser_sequences", 0)),
                         "reward share %": 100 * c.get("reward_seconds", 0.0) / wall})
        generator = torch.Generator(dev).manual_seed(1)
        _sync(dev)
        started = time.perf_counter()
        drakes.tuned.sample(n, args.steps, generator)
        _sync(dev)
        wall = time.perf_counter() - started
        rows.append({"method": "DRAKES (tuned, sampling only)", "layouts": n, "wall s": wall, "layouts / s": n / wall,
                     "denoiser seqs": n * args.steps, "reward share %": 0.0})
    print_table(rows, f"layout samplers through Study.run, batch {n}, {args.steps} steps, {dev}")


if __name__ == "__main__":
    main()
