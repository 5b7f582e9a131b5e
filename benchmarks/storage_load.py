"""Storage under load: many writer processes on one database, a ``workbench status`` reader polling it.

    python benchmarks/storage_load.py [--writers 32] [--evaluations 5000] [--batch 50] [--poll 0.2]
                                      [--cost-evaluations 25600] [--cost-batch 256] [--optuna-trials 300]
                                      [--backends sqlite,postgresql]

For each backend (SQLite in WAL mode; PostgreSQL on a throwaway local server started as tests do, with
PostgreSQL's default durability: fsync and synchronous commit on):

1. Cost per evaluation, one writer: a Study of random search (10 variables, 2 objectives, a domain that costs
   nothing) at ``--cost-batch``, its wall time per evaluation and the part spent in the storage
   (``append_batch``: rows + optimizer snapshot, one transaction); beside it Optuna's RDB storage on the same
   backend (``study.optimize`` with a trivial objective, time per trial; PostgreSQL through SQLAlchemy +
   psycopg on the same server).
2. Load: ``--writers`` forked processes each run their own Study to ``--evaluations`` in batches of
   ``--batch``, while one more process runs ``workbench status`` (the CLI's code path) every ``--poll``
   seconds. Afterwards every study must hold exactly indices 0..n-1: the table counts lock errors (any
   exception in a writer or the reader), lost and duplicated rows.

Writers are forked after the parent has closed its SQLite connection (SQLite's locks do not survive a fork);
each opens its own. Everything random is seeded (study i uses seed i).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _table import print_table  # noqa: E402
from pg_server import LocalPostgres  # noqa: E402

import workbench as wb  # noqa: E402
from optimizers import RandomSearch  # noqa: E402
from workbench.cli import main as cli  # noqa: E402
from workbench.storage import open_storage  # noqa: E402


def _domain() -> wb.Domain:
    """10 variables, 2 objectives that cost nothing: the loop's time is the optimizer, the engine and storage."""
    return wb.Domain.from_function(wb.MixedSpace.box(10), lambda x: x[:, :2], objectives=["a", "b"], name="free")


def run_writer(url: str, name: str, seed: int, evaluations: int, batch: int) -> dict[str, Any]:
    """One Study to ``evaluations``; wall seconds, seconds inside ``append_batch``, and any error raised."""
    torch.set_num_threads(1)
    spent = [0.0]
    started = time.perf_counter()
    try:
        study = wb.Study(_domain(), RandomSearch(batch_size=batch), storage=url, name=name, seed=seed, device="cpu")
        append = study.storage.append_batch

        def timed_append(*args: Any, **kwargs: Any) -> None:
            t0 = time.perf_counter()
            append(*args, **kwargs)
            spent[0] += time.perf_counter() - t0

        study.storage.append_batch = timed_append  # this instance only: time the storage's share of the loop
        study.run(evaluations, progress=False)
        error = None
    except Exception as err:  # noqa: BLE001 - a lock error is what this benchmark counts
        error = f"{type(err).__name__}: {err}"
    return {"wall": time.perf_counter() - started, "storage": spent[0], "error": error}


def _writer_process(url: str, name: str, seed: int, evaluations: int, batch: int, results: Any) -> None:
    results.put((name, run_writer(url, name, seed, evaluations, batch)))


def _reader_process(url: str, period: float, stop: Any, results: Any) -> None:
    """``workbench status URL`` every ``period`` s until ``stop``; counts failures and backwards-moving totals."""
    polls, failures, regressions, longest, last_total, errors = 0, 0, 0, 0.0, -1, []
    previous = time.perf_counter()
    while not stop.is_set():
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli(["status", url])
        except Exception as exc:  # noqa: BLE001
            code, errors = 1, errors + [f"{type(exc).__name__}: {exc}"]
        polls += 1
        if code != 0:
            failures += 1
            errors.append(err.getvalue().strip())
        else:
            lines = out.getvalue().splitlines()
            column = lines[0].split().index("evaluations") if lines and "evaluations" in lines[0] else None
            total = sum(int(line.split()[column]) for line in lines[1:]) if column is not None else 0
            regressions += total < last_total
            last_total = max(last_total, total)
        now = time.perf_counter()
        longest, previous = max(longest, now - previous), now
        stop.wait(period)
    results.put(("reader", {"polls": polls, "failures": failures, "regressions": regressions, "longest": longest,
                            "errors": errors[:3]}))


def check_rows(url: str, names: list[str], evaluations: int) -> tuple[int, int, int]:
    """(lost, duplicated, unfinished) over all studies: every study must hold indices 0..evaluations-1 once."""
    storage = open_storage(url, create=False)
    lost = duplicated = unfinished = 0
    known = set(storage.study_names())
    for name in names:
        if name not in known:  # the writer failed before its study existed: all of its evaluations are lost
            lost, unfinished = lost + evaluations, unfinished + 1
            continue
        record = storage.get_study(name)
        idx = storage.load_evaluations(record.id, 2, 0)["idx"]
        distinct = len(set(idx.tolist()))
        lost += len(set(range(evaluations)) - set(idx.tolist()))
        duplicated += len(idx) - distinct + int((idx >= evaluations).sum())
        unfinished += record.state != "finished"
    storage.close()
    return lost, duplicated, unfinished


def load(url: str, writers: int, evaluations: int, batch: int, period: float) -> dict[str, Any]:
    """``writers`` forked Study processes and one status reader on ``url``; the load table's row."""
    open_storage(url).close()  # create the tables once; nothing of SQLite stays open across the forks
    ctx = mp.get_context("fork")
    results, stop = ctx.Queue(), ctx.Event()
    names = [f"load/w{i:02d}" for i in range(writers)]
    reader = ctx.Process(target=_reader_process, args=(url, period, stop, results))
    reader.start()
    started = time.perf_counter()
    procs = [ctx.Process(target=_writer_process, args=(url, n, i, evaluations, batch, results))
             for i, n in enumerate(names)]
    for p in procs:
        p.start()
    outcome = dict(results.get(timeout=3600) for _ in procs)
    wall = time.perf_counter() - started
    stop.set()
    outcome.update([results.get(timeout=60)])
    for p in [*procs, reader]:
        p.join()
    errors = [o["error"] for n, o in outcome.items() if n != "reader" and o["error"]] + outcome["reader"]["errors"]
    for e in errors[:5]:
        print(f"  error: {e}")
    lost, duplicated, unfinished = check_rows(url, names, evaluations)
    total = writers * evaluations
    return {"writers": writers, "evaluations": total, "wall s": wall, "evaluations / s": total / wall,
            "storage ms / evaluation (in writer)": sum(outcome[n]["storage"] for n in names) / total * 1e3,
            "lock errors": len(errors), "lost": lost, "duplicated": duplicated, "unfinished": unfinished,
            "status polls": outcome["reader"]["polls"], "status failures": outcome["reader"]["failures"],
            "longest poll gap s": outcome["reader"]["longest"]}


def optuna_per_trial(url: str, trials: int) -> float:
    """Seconds per trial of Optuna's RDB storage at ``url`` (random sampler, 10 floats, 2 objectives)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=url, directions=["minimize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: Any) -> tuple[float, float]:
        xs = [trial.suggest_float(f"x{i}", 0, 1) for i in range(10)]
        return xs[0], xs[1]

    study.optimize(objective, n_trials=5)  # warm up: schema and caches
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return (time.perf_counter() - started) / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--evaluations", type=int, default=5000, help="per writer")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between two `workbench status` calls")
    parser.add_argument("--cost-evaluations", type=int, default=25_600)
    parser.add_argument("--cost-batch", type=int, default=256)
    parser.add_argument("--optuna-trials", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    torch.set_num_threads(1)
    backends = args.backends.split(",")
    cost, loaded = [], []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        # a running study holds two PostgreSQL connections: its loop's and its storage thread's
        server = stack.enter_context(LocalPostgres(durable=True, max_connections=2 * args.writers + 20)) \
            if "postgresql" in backends else None
        fresh = iter(range(10**6))

        def new_url(backend: str, optuna: bool = False) -> str:
            i = next(fresh)
            if backend == "sqlite":
                return f"sqlite:///{tmp}/{'optuna' if optuna else 'wb'}{i}.db"
            url = server.create_database(f"db{i}")
            return url.replace("postgresql://", "postgresql+psycopg://") if optuna else url

        for backend in backends:
            one = run_writer(new_url(backend), "cost", 0, args.cost_evaluations, args.cost_batch)
            if one["error"]:
                raise SystemExit(f"{backend}: the single writer failed: {one['error']}")
            theirs = optuna_per_trial(new_url(backend, optuna=True), args.optuna_trials)
            ours = one["wall"] / args.cost_evaluations
            cost.append({"backend": backend, "workbench Study loop ms / evaluation": ours * 1e3,
                         "of which storage ms / evaluation": one["storage"] / args.cost_evaluations * 1e3,
                         "optuna RDB ms / trial": theirs * 1e3, "optuna / workbench": theirs / ours})
            print(f"{backend}: cost measured; load with {args.writers} writers ...", flush=True)
            loaded.append({"backend": backend, **load(new_url(backend), args.writers, args.evaluations, args.batch,
                                                       args.poll)})
    import optuna

    print_table(cost, f"cost per persisted evaluation, one writer: workbench batch {args.cost_batch}, "
                      f"{args.cost_evaluations} evaluations (10 variables, 2 objectives); optuna {optuna.__version__} "
                      f"RDB storage, {args.optuna_trials} trials, same backend")
    print_table(loaded, f"{args.writers} writer processes x {args.evaluations} evaluations (batch {args.batch}) on "
                        f"one database, `workbench status` every {args.poll} s")


if __name__ == "__main__":
    main()
