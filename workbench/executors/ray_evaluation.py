"""An evaluation engine that spreads each batch over Ray actors, one per GPU (or per CPU slot without GPUs).

Each actor receives the domain once (one ``ray.put``) and keeps it, with whatever models the domain loads,
for the life of the engine; it scores its chunk with the in-process :class:`~workbench.evaluation.Evaluator`
(device chunking, per-row failures). The driver keeps the cache and the storage, so a study's storage and
resume semantics do not change: a batch is stored only once every chunk is back, in order. An actor that
dies is replaced and its chunk sent again, up to ``max_retries`` times per chunk.

    with spread(study):                # one actor per GPU of the cluster, or per free CPU
        study.run(100_000)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..domain import Domain, Evaluation
from ..evaluation import Evaluator
from .ray_session import connect, import_ray

if TYPE_CHECKING:
    from ..study import Study


class EvaluationActor:
    """Runs inside a Ray actor: the domain, held once, scores chunks of designs."""

    def __init__(self, domain: Domain, device: str, chunk_size: int | None, threads: int) -> None:
        torch.set_num_threads(max(1, threads))
        self.evaluator = Evaluator(domain, device=device, chunk_size=chunk_size, cache_size=0)

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list, torch.Tensor]:
        """Scores of ``x: [m, *shape]``: objectives ``[m, k]``, constraints ``[m, c]``, ok ``[m]``, errors,
        seconds ``[m]`` (CPU tensors)."""
        e = self.evaluator(x)
        return e.objectives, e.constraints, e.ok, e.errors, e.seconds

    def where(self) -> tuple[int, str, list]:
        """(process id, device, the GPU ids Ray gave it) of this actor."""
        import ray

        return os.getpid(), str(self.evaluator.device), [str(g) for g in ray.get_gpu_ids()]


class RayEvaluation:
    """Evaluation engine for :class:`~workbench.evaluation.Evaluator` (its ``engine``): each batch is cut into
    one contiguous chunk per actor and the results are joined in the batch's order.

    actors: how many (default: one per GPU the cluster has free, else one per free CPU slot);
    num_gpus / num_cpus: per actor (default: 1 GPU and no CPU reservation when the cluster has GPUs, else 1 CPU);
    device: where an actor evaluates (default: "cuda" for GPU actors, else "cpu");
    chunk_size: rows per ``domain.evaluate`` call inside an actor (None: its whole chunk);
    address: the Ray cluster (see :func:`~workbench.executors.ray_session.connect`);
    max_retries: how often one chunk may be sent again after its actor died;
    start_timeout: seconds to wait for the actors to start before giving up with a clear error.
    """

    def __init__(self, domain: Domain, actors: int | None = None, num_gpus: float | None = None,
                 num_cpus: float | None = None, device: str | None = None, chunk_size: int | None = None,
                 address: str | None = None, max_retries: int = 3, start_timeout: float = 300.0) -> None:
        if actors is not None and (not isinstance(actors, int) or actors < 1):
            raise ValueError(f"actors must be a positive integer, got {actors!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        for what, value in (("num_gpus", num_gpus), ("num_cpus", num_cpus)):
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{what} must be a non-negative number, got {value!r}")
        self.ray = import_ray()
        self.max_retries = max_retries
        self.calls = 0  # chunks sent to actors
        self.restarts = 0  # actors replaced after dying
        self.actors: list[Any] = []
        self._started = connect(address)
        try:
            self._setup(domain, actors, num_gpus, num_cpus, device, chunk_size, start_timeout)
        except BaseException:
            self.close()
            raise

    def _setup(self, domain: Domain, actors: int | None, num_gpus: float | None, num_cpus: float | None,
               device: str | None, chunk_size: int | None, start_timeout: float) -> None:
        ray = self.ray
        total, free = ray.cluster_resources(), ray.available_resources()
        gpus = float(num_gpus) if num_gpus is not None else (1.0 if total.get("GPU", 0) >= 1 else 0.0)
        cpus = float(num_cpus) if num_cpus is not None else (0.0 if gpus else 1.0)
        if actors is None:
            fits = [free.get(key, 0.0) // need for key, need in (("GPU", gpus), ("CPU", cpus)) if need > 0]
            actors = max(1, int(min(fits)) if fits else 1)
        for key, need in (("GPU", gpus), ("CPU", cpus)):
            if need * actors > total.get(key, 0.0) + 1e-9:
                raise ValueError(f"{actors} evaluation actors with {need:g} {key} each need {need * actors:g} {key}; "
                                 f"the Ray cluster has {total.get(key, 0.0):g}")
        self._options = {"num_gpus": gpus, "num_cpus": cpus, "max_restarts": 0}
        self._args = (ray.put(domain), device or ("cuda" if gpus else "cpu"), chunk_size, max(1, int(cpus)))
        self._cls = ray.remote(EvaluationActor)
        self.actors = [self._spawn() for _ in range(actors)]
        try:
            self.placement = ray.get([a.where.remote() for a in self.actors], timeout=start_timeout)
        except ray.exceptions.GetTimeoutError:
            raise TimeoutError(f"{actors} evaluation actors ({gpus:g} GPU, {cpus:g} CPU each) did not start within "
                               f"{start_timeout:g} s; free now: {_cpus_gpus(ray.available_resources())} of "
                               f"{_cpus_gpus(total)}") from None
        except ray.exceptions.RayActorError as err:
            raise RuntimeError(f"an evaluation actor could not be created: {_last_line(err)}") from None

    def _spawn(self) -> Any:
        return self._cls.options(**self._options).remote(*self._args)

    def __call__(self, x: torch.Tensor) -> Evaluation:
        """Scores of ``x: [n, *shape]`` (valid designs) as an :class:`Evaluation` on CPU, rows in order."""
        if not self.actors:
            raise RuntimeError("this RayEvaluation is closed")
        ray = self.ray
        x = x.detach().to("cpu")
        n = int(x.shape[0])
        bounds = np.linspace(0, n, min(len(self.actors), max(n, 1)) + 1).astype(int)
        chunks = [x[a:b].clone() for a, b in zip(bounds[:-1], bounds[1:])]  # a clone: a view would ship all of x
        refs = [self.actors[i].evaluate.remote(c) for i, c in enumerate(chunks)]
        self.calls += len(chunks)
        parts = []
        for i, chunk in enumerate(chunks):
            failures = 0
            while True:
                try:
                    parts.append(ray.get(refs[i]))
                    break
                except ray.exceptions.RayActorError as err:
                    failures += 1
                    if failures > self.max_retries or getattr(err, "actor_init_failed", False):
                        raise RuntimeError(f"evaluation actor {i} died {failures} times on one chunk "
                                           f"(max_retries={self.max_retries}): {_last_line(err)}") from None
                    self._replace(i)
                    refs[i] = self.actors[i].evaluate.remote(chunk)
                    self.calls += 1
        f, g, ok, errors, seconds = zip(*parts) if parts else ((), (), (), (), ())
        return Evaluation(objectives=torch.cat(f), constraints=torch.cat(g), ok=torch.cat(ok),
                          errors=[e for part in errors for e in part], seconds=torch.cat(seconds))

    def _replace(self, i: int) -> None:
        """A new actor in slot ``i`` (the dead one is killed for certain first)."""
        try:
            self.ray.kill(self.actors[i])
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.actors[i] = self._spawn()
        self.restarts += 1

    def close(self) -> None:
        """Stop the actors (and the local Ray, when this engine started it)."""
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        self.actors = []
        if self._started:
            self.ray.shutdown()
            self._started = False

    def __enter__(self) -> RayEvaluation:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _cpus_gpus(resources: dict[str, float]) -> str:
    return f"{resources.get('CPU', 0.0):g} CPU, {resources.get('GPU', 0.0):g} GPU"


def _last_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


@contextmanager
def spread(study: Study, **options: Any) -> Iterator[RayEvaluation]:
    """Evaluate ``study``'s batches on Ray actors inside the ``with`` block (options: see :class:`RayEvaluation`);
    the study's own in-process engine is put back afterwards."""
    engine = RayEvaluation(study.domain, **options)
    previous = study.evaluator.engine
    study.evaluator.engine = engine
    try:
        yield engine
    finally:
        study.evaluator.engine = previous
        engine.close()
