"""The whole Study loop of NSGA-II at a large population, with storage: seconds per generation by phase.

    python benchmarks/study_loop_100k.py [--device cuda] [--pop 100000] [--generations 5]
                                         [--storage sqlite | sqlite:///PATH | postgresql://...] [--threads N]

DTLZ2 with 3 objectives and 30 variables, ``Study.run`` exactly as a user runs it: every evaluation stored (one
block per batch) with the optimizer state after it. The initial population and one generation warm up (CUDA
kernels, Triton's compilation) and are not timed; then ``--generations`` generations are. Phases, in seconds per
generation, from ``Study.timings`` (the device is synchronized at the end of ask and of tell):

- optimizer: ask + tell;
- evaluation engine: encoding the designs once, validation, the design cache, ``domain.evaluate``, failure checks;
  the domain's own cost (``domain.evaluate`` alone on the same batch) is printed beside it;
- storage write: what the loop spends on storage (copies handed to the storage thread, and waiting for it);
  the storage thread's own time, which overlaps the next batch's computation, is its own column;
- snapshot: the optimizer's ``state_dict`` and its packing into bytes.

After the run it checks that every evaluation is stored exactly once (indices 0 .. n - 1, the study's count and
``workbench status``'s count), and that a run stopped and resumed at generation ends, by fresh Study and optimizer
objects as a new process would, stores the same evaluations and ends with the same final population. A
PostgreSQL URL must name an existing database; the benchmark's studies are deleted from it at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

import workbench as wb  # noqa: E402
from domains.benchmarks import DTLZ2  # noqa: E402
from optimizers import NSGA2  # noqa: E402
from workbench.storage import open_storage, parse_url, redact_url  # noqa: E402

STATE = ("x", "f", "cv", "rank", "crowding")  # NSGA-II's population in its state_dict


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _synchronized(fn: Any, device: torch.device) -> Any:
    """``fn`` followed by a device synchronization, so its GPU work is timed as its own."""
    def call(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        _sync(device)
        return out
    return call


def _study(url: str, name: str, pop: int, device: torch.device, deterministic: bool) -> wb.Study:
    study = wb.Study(DTLZ2(n_obj=3, n_var=30), NSGA2(pop_size=pop), storage=url, name=name, seed=0, device=device,
                     deterministic=deterministic)
    study.optimizer.ask = _synchronized(study.optimizer.ask, device)
    study.optimizer.tell = _synchronized(study.optimizer.tell, device)
    return study


def filesystem(path: str) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts; tmpfs is memory, not a disk)."""
    try:
        with open("/proc/mounts") as fh:
            mounts = [line.split()[1:3] for line in fh]
    except OSError:
        return "unknown"
    real = os.path.realpath(path)
    best = max((m for m in mounts if real == m[0] or real.startswith(m[0].rstrip("/") + "/")),
               key=lambda m: len(m[0]), default=None)
    return f"{best[1]} at {best[0]}" if best else "unknown"


def domain_seconds(pop: int, device: torch.device, repeats: int = 5) -> float:
    """Seconds of ``DTLZ2.evaluate`` alone on ``pop`` designs already on the device."""
    domain = DTLZ2(n_obj=3, n_var=30)
    x = domain.space.sample(pop, torch.Generator().manual_seed(0)).to(device)
    domain.evaluate(x)
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        domain.evaluate(x)
    _sync(device)
    return (time.perf_counter() - started) / repeats


def timed_run(url: str, name: str, pop: int, generations: int, device: torch.device,
              deterministic: bool) -> tuple[dict[str, float], wb.Study]:
    """Run the initial population and one generation untimed, then ``generations`` timed; seconds per generation."""
    study = _study(url, name, pop, device, deterministic)
    study.run(2 * pop, progress=False)  # initial population + one warm-up generation
    study.timings.update(dict.fromkeys(study.timings, 0.0))
    _sync(device)
    started = time.perf_counter()
    study.run((2 + generations) * pop, progress=False)
    _sync(device)
    wall = time.perf_counter() - started
    t = {k: v / generations for k, v in study.timings.items()}
    row = {"optimizer (ask + tell)": t["ask"] + t["tell"], "evaluation engine": t["evaluate"],
           "storage write (loop)": t["rows"] + t["store_wait"], "snapshot": t["snapshot"],
           "total s/gen": wall / generations, "storage thread (overlaps)": t["store"]}
    return row, study


def resumed_run(url: str, name: str, pop: int, total_generations: int, device: torch.device,
                deterministic: bool) -> wb.Study:
    """The same study stopped after the initial population and after every second generation, each part run by
    fresh Study and NSGA2 objects (all state comes from the storage, as in a new process)."""
    stops = sorted({pop, *range(3 * pop, total_generations * pop, 2 * pop), total_generations * pop})
    for budget in stops:
        study = _study(url, name, pop, device, deterministic)
        study.run(budget, progress=False)
    return study


def check(url: str, straight: wb.Study, resumed: wb.Study, total: int) -> list[str]:
    """Problems found (an empty list when all checks pass)."""
    problems = []
    storage = open_storage(url, create=False)
    status = {row["study"]: row["evaluations"] for row in storage.summary()}
    raws = {}
    for study in (straight, resumed):
        record = storage.get_study(study.name)
        raw = storage.load_evaluations(record.id, 3, 0)
        raws[study.name] = raw
        if not np.array_equal(raw["idx"], np.arange(total)):
            problems.append(f"{study.name}: stored indices are not 0 .. {total - 1} exactly once "
                            f"({len(raw['idx'])} rows, {len(np.unique(raw['idx']))} distinct)")
        if storage.count(record.id) != total or status.get(study.name) != total:
            problems.append(f"{study.name}: count {storage.count(record.id)}, status {status.get(study.name)}, "
                            f"expected {total}")
        if not np.array_equal(raw["batch"], np.arange(total) // straight.optimizer.pop_size):
            problems.append(f"{study.name}: batch numbers are not one per generation")
    a, b = raws[straight.name], raws[resumed.name]
    if a["x"] != b["x"] or not np.array_equal(a["f"], b["f"], equal_nan=True) or not np.array_equal(a["ok"], b["ok"]):
        problems.append("the resumed run stored other designs or objectives than the uninterrupted one")
    sa, sb = straight.optimizer.state_dict(), resumed.optimizer.state_dict()
    for key in STATE:
        if not torch.equal(sa[key].cpu(), sb[key].cpu()):
            problems.append(f"final population differs between the resumed and the uninterrupted run: {key}")
    if not torch.equal(sa["generator"].cpu(), sb["generator"].cpu()):
        problems.append("final random generator state differs between the resumed and the uninterrupted run")
    storage.close()
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cpu or cuda (default)")
    parser.add_argument("--pop", type=int, default=100_000)
    parser.add_argument("--generations", type=int, default=5, help="timed generations (after 2 untimed)")
    parser.add_argument("--storage", default="sqlite",
                        help="'sqlite' (a temporary file in --tmpdir), a sqlite:///PATH or a postgresql:// URL")
    parser.add_argument("--tmpdir", default="runs", help="folder for the temporary SQLite file (default: runs/, "
                                                         "on disk; /tmp may be memory)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--deterministic", action="store_true",
                        help="run the studies with deterministic=True (PyTorch's deterministic kernels only)")
    parser.add_argument("--no-check", action="store_true", help="skip the stored-once and resume checks")
    args = parser.parse_args()
    if args.pop < 2 or args.generations < 1:
        parser.error("--pop must be >= 2 and --generations >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = wb.resolve_device(args.device)
    tag = f"study-loop-bench-{os.getpid()}-{int(time.time())}"
    Path(args.tmpdir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="study_loop_") as tmp:
        url = f"sqlite:///{tmp}/study_loop.db" if args.storage == "sqlite" else args.storage
        names = [f"{tag}/straight", f"{tag}/resumed"]
        try:
            row, straight = timed_run(url, names[0], args.pop, args.generations, device, args.deterministic)
            own = domain_seconds(args.pop, device)
            rows = [{"device": str(device), "storage": "sqlite" if url.startswith("sqlite") else "postgresql", **row,
                     "DTLZ2 alone": own}]
            print_table(rows, f"Study.run of NSGA-II on DTLZ2 (3 obj, 30 var), population {args.pop}, seconds per "
                              f"generation over {args.generations} generations")
            folder = os.path.dirname(os.path.abspath(parse_url(url))) if url.startswith("sqlite") else None
            where = f" ({filesystem(folder)})" if folder else ""
            print(f"\nstorage {redact_url(url)}{where}; torch threads {torch.get_num_threads()}")
            if args.no_check:
                return
            total = (2 + args.generations) * args.pop
            started = time.perf_counter()
            resumed = resumed_run(url, names[1], args.pop, 2 + args.generations, device, args.deterministic)
            problems = check(url, straight, resumed, total)
            print(f"\nchecks ({time.perf_counter() - started:.1f} s): {total} evaluations per study; ", end="")
            if problems:
                print("FAILED\n" + "\n".join(f"- {p}" for p in problems))
                raise SystemExit(1)
            print("every evaluation stored exactly once; the resumed run equals the uninterrupted one "
                  "(same stored evaluations, same final population and generator state)")
        finally:
            if args.storage != "sqlite":  # the temporary file goes with its folder
                storage = open_storage(url)
                for name in set(names) & set(storage.study_names()):
                    storage.delete_study(name)
                storage.close()


if __name__ == "__main__":
    main()
