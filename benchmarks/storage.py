"""Storage cost: time per persisted evaluation with SQLite, ours at batch 256 vs Optuna's RDB storage.

    python benchmarks/storage.py [--rows 25600] [--optuna-trials 300]

Ours is measured twice: the storage call alone (``append_batch`` of 256 rows with the
optimizer snapshot), and a whole Study of random search whose domain costs nothing, so
all of its time is loop + storage. Optuna: ``study.optimize`` with a trivial objective
and ``sqlite:///`` storage, time per trial.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import print_table  # noqa: E402

import workbench as wb  # noqa: E402
from optimizers import RandomSearch  # noqa: E402
from workbench.serialization import pack  # noqa: E402
from workbench.storage import BatchRows, open_storage  # noqa: E402


def append_only(tmp: str, rows: int, batch: int) -> float:
    storage = open_storage(f"sqlite:///{tmp}/append.db")
    space = wb.MixedSpace.box(10)
    record, _ = storage.get_or_create_study("a", {"domain": {}, "optimizer": {}})
    gen = torch.Generator().manual_seed(0)
    state = pack({"generator": gen.get_state()})
    x = space.sample(batch, gen)
    f = np.random.default_rng(0).random((batch, 2))
    started = time.perf_counter()
    for b in range(rows // batch):
        data = BatchRows(x=space.encode_rows(x), f=f, g=np.empty((batch, 0)), ok=np.ones(batch, bool),
                         errors=[None] * batch, seconds=np.zeros(batch))
        storage.append_batch(record.id, b, b * batch, data, state, {})
    return (time.perf_counter() - started) / (rows // batch * batch)


def study_loop(tmp: str, rows: int, batch: int) -> float:
    dom = wb.Domain.from_function(wb.MixedSpace.box(10), lambda x: x[:, :2], objectives=["a", "b"])
    study = wb.Study(dom, RandomSearch(batch_size=batch), storage=f"sqlite:///{tmp}/study.db", name="s", device="cpu")
    started = time.perf_counter()
    study.run(rows, progress=False)
    return (time.perf_counter() - started) / rows


def optuna_trial(tmp: str, trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{tmp}/optuna.db", directions=["minimize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        xs = [trial.suggest_float(f"x{i}", 0, 1) for i in range(10)]
        return xs[0], xs[1]

    study.optimize(objective, n_trials=5)  # warm up: schema creation
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return (time.perf_counter() - started) / trials


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=25_600)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--optuna-trials", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours_append = append_only(tmp, args.rows, args.batch)
        ours_study = study_loop(tmp, args.rows, args.batch)
        theirs = optuna_trial(tmp, args.optuna_trials)
    rows = [
        {"what": f"optuna {__import__('optuna').__version__} RDB sqlite, per trial", "ms / evaluation": theirs * 1e3,
         "vs optuna": 1.0},
        {"what": f"workbench append_batch, batch {args.batch}", "ms / evaluation": ours_append * 1e3,
         "vs optuna": theirs / ours_append},
        {"what": f"workbench Study loop (random search), batch {args.batch}", "ms / evaluation": ours_study * 1e3,
         "vs optuna": theirs / ours_study},
    ]
    print_table(rows, f"time per persisted evaluation, SQLite, {args.rows} rows (10 variables, 2 objectives)")


if __name__ == "__main__":
    main()
