"""A Study: one optimizer on one domain with one seed, persisted and resumable."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ._version import __version__
from .determinism import deterministic_mode
from .device import resolve_device
from .domain import Domain, split_outputs
from .evaluation import Evaluator
from .optimizer import Optimizer, Problem
from .results import StudyResults
from .serialization import design_bytes, pack, unpack
from .storage import BatchRows, Storage, StorageError, open_storage

# parts of the stored spec that must match when a study is resumed
_IDENTITY = (("domain", "space"), ("domain", "objectives"), ("domain", "constraints"), ("optimizer", "class"),
             ("optimizer", "params"), ("seed",))


_PHASES = ("ask", "evaluate", "rows", "tell", "snapshot", "store_wait", "store")


class _BatchWriter:
    """Stores a study's batches in a thread of its own, in order, one at a time.

    While batch ``b`` is written (its rows and the optimizer state after it, one transaction), the study computes
    batch ``b + 1``; the GIL is released while SQLite or libpq works. At most one batch waits: a process killed
    loses at most that batch and the one being computed, which a resumed study computes again exactly (it resumes
    from the last stored batch and the state stored with it). A write's error is raised by the next ``submit`` or
    by ``close``.
    """

    def __init__(self, storage: Storage, timings: dict[str, float]) -> None:
        self.storage = storage
        self.timings = timings
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[Future, int] | None = None

    def submit(self, n: int, *batch: Any) -> int:
        """Wait for the previous batch, then start storing this one (``append_batch`` arguments) of ``n``
        designs; returns how many designs that wait saw stored."""
        stored = self._wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="workbench-storage")
        self._pending = (self._pool.submit(self._store, *batch), n)
        return stored

    def _store(self, *batch: Any) -> None:
        started = time.perf_counter()
        try:
            self.storage.append_batch(*batch)
        finally:
            self.timings["store"] += time.perf_counter() - started

    def _wait(self) -> int:
        if self._pending is None:
            return 0
        future, n = self._pending
        self._pending = None
        started = time.perf_counter()
        try:
            future.result()
        finally:
            self.timings["store_wait"] += time.perf_counter() - started
        return n

    def close(self) -> int:
        """Wait for the last batch (raising its error) and end the thread; returns the designs it stored."""
        try:
            return self._wait()
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                try:
                    pool.submit(self.storage.end_thread).result()
                finally:
                    pool.shutdown(wait=True)


class Study:
    """Runs ``optimizer`` on ``domain`` and stores every evaluation in ``storage``.

    ``run(budget)`` evaluates designs until the study holds ``budget`` evaluations; if a
    study of this name exists in the storage it resumes from its last stored batch, with
    the optimizer state stored beside it, so a resumed run equals an uninterrupted one.
    Each batch is stored by a thread of the study while the next one is computed; ``run``
    returns once every batch is stored.
    """

    def __init__(self, domain: Domain, optimizer: Optimizer, storage: str | Storage | None = None,
                 name: str | None = None, seed: int = 0, device: str | torch.device | None = "auto",
                 batch_size: int | None = None, chunk_size: int | None = None, campaign: str | None = None,
                 settings: dict[str, Any] | None = None, deterministic: bool = False) -> None:
        if not isinstance(domain, Domain):
            raise TypeError(f"domain must be a workbench Domain, got {type(domain).__name__}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a workbench Optimizer, got {type(optimizer).__name__}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.domain = domain
        self.optimizer = optimizer
        self.storage = storage if isinstance(storage, Storage) else open_storage(storage)
        self.name = name or f"{domain.name}-{optimizer.name}-seed{seed}"
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.campaign = campaign
        self.settings = dict(settings or {})
        self.deterministic = bool(deterministic)  # PyTorch's deterministic kernels only (workbench.determinism)
        self.evaluator = Evaluator(domain, device=self.device, chunk_size=chunk_size)
        # scores designs for an optimizer's own use (a sampler's intermediate rewards); not stored, not cached
        self._scorer = Evaluator(domain, device=self.device, chunk_size=chunk_size, cache_size=0)
        self._record = None
        self._ready = False
        # seconds spent by this object's runs, per phase (not stored): ask, evaluate (with encoding the designs),
        # tell, rows (copies handed to storage), snapshot (state_dict + pack), store_wait (the loop waiting for
        # the storage thread) and store (that thread writing: overlaps the others)
        self.timings: dict[str, float] = dict.fromkeys(_PHASES, 0.0)

    # ------------------------------------------------------------------- setup
    def spec(self) -> dict[str, Any]:
        """What is stored about this study: enough to read it without the domain's code."""
        return {"domain": self.domain.describe(), "optimizer": self.optimizer.describe(), "seed": self.seed,
                "settings": self.settings, "deterministic": self.deterministic, "workbench": __version__}

    def _open(self) -> None:
        if self._ready:
            return
        spec = self.spec()
        record, created = self.storage.get_or_create_study(self.name, spec, self.campaign)
        if not created:
            for path in _IDENTITY:
                stored, ours = record.spec, spec
                for key in path:
                    stored, ours = stored.get(key) if isinstance(stored, dict) else None, ours.get(key)
                if stored != ours:
                    raise StorageError(f"study {self.name!r} already exists in {self.storage.safe_url!r} with a "
                                       f"different {'.'.join(path)} ({stored!r} there, {ours!r} here); "
                                       f"choose another name")
        ref = None
        if all(o.ref is not None for o in self.domain.objectives):
            ref = torch.tensor([o.ref * o.sign for o in self.domain.objectives], dtype=torch.float64, device=self.device)
        self.problem = Problem(space=self.domain.space, objectives=self.domain.objectives,
                               constraints=self.domain.constraints, device=self.device, seed=self.seed, ref_point=ref,
                               hints=self.domain.optimizer_hints(), load_prior=self.domain.prior,
                               evaluate=self._scorer, evaluate_soft=self._score_soft if self._has_soft() else None)
        self.optimizer.setup(self.problem)
        snapshot = self.storage.load_snapshot(record.id)
        self._batch = 0
        self._done = 0
        self._counters: dict[str, Any] = {}
        if snapshot is not None:
            last_batch, n_evals, blob, counters = snapshot
            self.optimizer.load_state_dict(unpack(blob))
            self._batch, self._done, self._counters = last_batch + 1, n_evals, counters
        self._record = record
        self._ready = True

    def _has_soft(self) -> bool:
        return getattr(type(self.domain), "evaluate_soft", None) is not Domain.evaluate_soft

    def _score_soft(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable (objectives, constraints) of soft designs, in the user's directions."""
        out = self.domain.evaluate_soft(x)
        return split_outputs(self.domain, out, int(x.shape[0]), keep_grad=True)

    @property
    def n_evaluations(self) -> int:
        self._open()
        return self._done

    # --------------------------------------------------------------------- run
    def run(self, budget: int, batch_size: int | None = None, progress: bool = True) -> Study:
        """Evaluate until the study holds ``budget`` evaluations (resuming what is stored); with
        ``deterministic=True`` on PyTorch's deterministic kernels only, counted per batch in the counters'
        ``deterministic_batches``."""
        with deterministic_mode(self.deterministic):
            return self._run(budget, batch_size, progress)

    def _run(self, budget: int, batch_size: int | None, progress: bool) -> Study:
        if not isinstance(budget, (int, np.integer)) or isinstance(budget, bool) or budget <= 0:
            raise ValueError(f"budget must be a positive number of evaluations, got {budget!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._open()
        size = batch_size or self.batch_size or self.optimizer.default_batch_size
        self.storage.set_state(self._record.id, "running", budget=int(budget))
        bar = tqdm(total=int(budget), initial=self._done, desc=self.name, disable=not progress, leave=False)
        space, timings = self.domain.space, self.timings
        writer = _BatchWriter(self.storage, timings)
        try:
            while self._done < budget:
                n = min(size, budget - self._done)
                started = time.perf_counter()
                x = self.optimizer.ask(n)
                asked = time.perf_counter()
                designs = design_bytes(space, space.check_batch(x))  # once, for the cache and for storage
                evaluation = self.evaluator(x, designs=designs)
                evaluated = time.perf_counter()
                # what is stored is copied now, before tell: the stored designs are the evaluated ones, and the
                # storage thread reads them while the next batch is computed
                rows = BatchRows(x=designs.copy() if x.device.type == "cpu" else designs,  # on the CPU: a view of x
                                 f=evaluation.objectives.numpy().copy(), g=evaluation.constraints.numpy().copy(),
                                 ok=evaluation.ok.numpy().copy(), errors=list(evaluation.errors),
                                 seconds=evaluation.seconds.numpy().copy())
                copied = time.perf_counter()
                self.optimizer.tell(x, evaluation)
                told = time.perf_counter()
                counters = dict(self._counters)
                counters["evaluate_calls"] = counters.get("evaluate_calls", 0) + 1
                counters["deterministic_batches"] = counters.get("deterministic_batches", 0) + self.deterministic
                optimizer_seconds = (asked - started) + (told - copied)
                counters["optimizer_seconds"] = counters.get("optimizer_seconds", 0.0) + optimizer_seconds
                counters["evaluation_seconds"] = counters.get("evaluation_seconds", 0.0) + (evaluated - asked)
                counters.update(self.optimizer.counters())
                snapshot = pack(self.optimizer.state_dict())
                packed = time.perf_counter()
                bar.update(writer.submit(n, self._record.id, self._batch, self._done, rows, snapshot, counters))
                self._counters = counters
                self._batch += 1
                self._done += n
                for phase, seconds in (("ask", asked - started), ("evaluate", evaluated - asked),
                                       ("rows", copied - evaluated), ("tell", told - copied),
                                       ("snapshot", packed - told)):
                    timings[phase] += seconds
            bar.update(writer.close())
        except BaseException:
            self._ready = False  # the next run reopens the study from what the storage holds
            raise
        finally:
            writer.close()
            bar.close()
        self.storage.set_state(self._record.id, "finished")
        return self

    # ----------------------------------------------------------------- reading
    def _results(self) -> StudyResults:
        self._open()
        results = StudyResults(self.storage, self.storage.get_study(self.name))
        # the live domain's space writes the readable columns (e.g. canonical SMILES beside the SELFIES); the
        # stored spec rebuilds only the generic space, which is what a study opened without its domain shows
        if results.space.to_spec() == self.domain.space.to_spec():
            results.space = self.domain.space
        return results

    def results(self) -> pd.DataFrame:
        """One row per evaluated design (see :meth:`StudyResults.frame`), with the domain's readable columns."""
        return self._results().frame()

    def designs(self) -> torch.Tensor:
        """Every evaluated design as one tensor ``[n, *space.shape]``, in evaluation order."""
        return self._results().designs()

    def pareto_front(self) -> pd.DataFrame:
        """The feasible non-dominated rows of :meth:`results`."""
        return self._results().pareto_front()

    def hypervolume(self, ref: Sequence[float] | None = None) -> float:
        """Hypervolume of the feasible designs, reference point in the user's directions."""
        return self._results().hypervolume(ref)

    def hypervolume_trace(self, ref: Sequence[float] | None = None, points: int = 50) -> pd.DataFrame:
        return self._results().hypervolume_trace(ref, points)

    def counters(self) -> dict[str, Any]:
        """Stored call counters and time split (optimizer vs evaluation seconds)."""
        self._open()
        return dict(self._counters)

    @staticmethod
    def load(storage: str | Storage, name: str) -> StudyResults:
        """Open a stored study read-only, without its domain or optimizer code."""
        return StudyResults.load(storage, name)
