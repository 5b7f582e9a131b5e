"""NSGA-II generations at a large population on GPU vs CPU: DTLZ2, 3 objectives, 30 variables.

    python benchmarks/gpu_nsga2.py [--pop 100000] [--generations 5] [--devices cuda,cpu]

Per generation: ask (selection + variation), evaluation (through the evaluation engine:
validation, chunked evaluation, failure checks), tell (feasibility-first non-dominated
sorting of parents + children and crowding), each timed with the device synchronized.
On CUDA the sorting runs in torch; on the CPU it uses moocore's C sort.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

import workbench as wb  # noqa: E402
from domains.benchmarks import DTLZ2  # noqa: E402
from optimizers import NSGA2  # noqa: E402
from workbench.pareto import hypervolume  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(device_name: str, pop: int, generations: int) -> dict[str, float | str]:
    device = torch.device(device_name)
    domain = DTLZ2(n_obj=3, n_var=30)
    opt = NSGA2(pop_size=pop)
    opt.setup(wb.Problem(domain.space, domain.objectives, domain.constraints, device, seed=0))
    evaluator = wb.Evaluator(domain, device=device, cache_size=0)
    x = opt.ask(pop)
    opt.tell(x, evaluator(x))  # initial population, not timed
    t_ask = t_eval = t_tell = 0.0
    for _ in range(generations):
        _sync(device)
        t0 = time.perf_counter()
        x = opt.ask(pop)
        _sync(device)
        t1 = time.perf_counter()
        ev = evaluator(x)
        _sync(device)
        t2 = time.perf_counter()
        opt.tell(x, ev)
        _sync(device)
        t3 = time.perf_counter()
        t_ask, t_eval, t_tell = t_ask + t1 - t0, t_eval + t2 - t1, t_tell + t3 - t2
    g = generations
    return {"device": str(device), "ask s/gen": t_ask / g, "evaluate s/gen": t_eval / g, "tell (sort) s/gen": t_tell / g,
            "total s/gen": (t_ask + t_eval + t_tell) / g, "HV final pop": hypervolume(opt.f.cpu(), [1.1] * 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pop", type=int, default=100_000)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--devices", default="cuda,cpu")
    args = parser.parse_args()
    rows = [run(d, args.pop, args.generations) for d in args.devices.split(",")]
    print_table(rows, f"NSGA-II on DTLZ2 (3 obj, 30 var), population {args.pop}, {args.generations} generations")
    if len(rows) == 2:
        print(f"\nspeed-up {rows[0]['device']} over {rows[1]['device']}: {rows[1]['total s/gen'] / rows[0]['total s/gen']:.1f}x")


if __name__ == "__main__":
    main()
