"""The evaluation engine: batched, chunked, device-aware scoring with per-row failures."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import torch

from .device import resolve_device
from .domain import Domain, Evaluation, split_outputs


class Evaluator:
    """Scores populations with ``domain.evaluate``, one call per chunk.

    - splits a batch into chunks of ``chunk_size`` rows (all at once when None) and
      moves each to ``device``; on CUDA out-of-memory the chunk size is halved;
    - rows that are not valid designs, rows whose outputs are NaN/inf, and rows on which
      ``evaluate`` raises are marked failed with a message; the others go on (a raising
      chunk is bisected to find the failing rows);
    - repeated designs are served from a cache of up to ``cache_size`` rows.
    """

    def __init__(self, domain: Domain, device: str | torch.device | None = "auto", chunk_size: int | None = None,
                 cache_size: int = 100_000) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.domain = domain
        self.device = resolve_device(device)
        self.chunk_size = chunk_size
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, tuple[list[float], list[float], bool, str | None]] = OrderedDict()
        self.calls = 0  # calls of domain.evaluate

    def __call__(self, x: torch.Tensor) -> Evaluation:
        """Evaluate ``x: [n, *shape]``; returns an :class:`Evaluation` on CPU, float64."""
        space = self.domain.space
        x = space.check_batch(x)
        n, k, c = x.shape[0], self.domain.n_obj, self.domain.n_con
        f = torch.full((n, k), float("nan"), dtype=torch.float64)
        g = torch.full((n, c), float("nan"), dtype=torch.float64)
        ok = torch.zeros(n, dtype=torch.bool)
        errors: list[str | None] = [None] * n
        seconds = torch.zeros(n, dtype=torch.float64)

        for row, reason in space.invalid_rows(x).items():
            errors[row] = f"invalid design: {reason}"
        keys = space.encode_rows(x) if self.cache_size else [b""] * n
        todo: list[int] = []
        hits: list[int] = []
        for i in range(n):
            if errors[i] is not None:
                continue
            if self.cache_size and keys[i] in self._cache:
                hits.append(i)
            else:
                todo.append(i)
        if hits:
            values = [self._cache[keys[i]] for i in hits]
            index = torch.tensor(hits, dtype=torch.long)
            f[index] = torch.tensor([v[0] for v in values], dtype=torch.float64).reshape(len(hits), k)
            g[index] = torch.tensor([v[1] for v in values], dtype=torch.float64).reshape(len(hits), c)
            ok[index] = torch.tensor([v[2] for v in values])
            for i, v in zip(hits, values):
                errors[i] = v[3]

        if todo:
            index = torch.tensor(todo, dtype=torch.long)
            sub = x.index_select(0, index.to(x.device))
            chunk = self.chunk_size or len(todo)
            start = 0
            while start < len(todo):
                stop = min(start + chunk, len(todo))
                try:
                    self._evaluate_rows(sub[start:stop], index[start:stop], f, g, ok, errors, seconds)
                except torch.cuda.OutOfMemoryError:
                    if chunk == 1:
                        raise
                    chunk = max(1, chunk // 2)
                    self.chunk_size = chunk
                    torch.cuda.empty_cache()
                    continue
                start = stop
            if self.cache_size:
                fl, gl, okl = f[index].tolist(), g[index].tolist(), ok[index].tolist()
                for j, i in enumerate(todo):
                    self._remember(keys[i], (fl[j], gl[j], okl[j], errors[i]))
        return Evaluation(objectives=f, constraints=g, ok=ok, errors=errors, seconds=seconds)

    def _evaluate_rows(self, xs: torch.Tensor, rows: torch.Tensor, f: torch.Tensor, g: torch.Tensor,
                       ok: torch.Tensor, errors: list[str | None], seconds: torch.Tensor) -> None:
        """Evaluate one chunk; on an exception, bisect until the failing rows are isolated."""
        started = time.perf_counter()
        try:
            self.calls += 1
            out = self.domain.evaluate(xs.to(self.device))
            fc, gc = split_outputs(self.domain, out, len(xs))
            fc, gc = fc.detach().to("cpu", torch.float64), gc.detach().to("cpu", torch.float64)
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as err:  # noqa: BLE001 - any user error marks rows failed
            if len(xs) == 1:
                errors[int(rows[0])] = f"{type(err).__name__}: {err}"
                seconds[rows] = time.perf_counter() - started
                return
            half = len(xs) // 2
            self._evaluate_rows(xs[:half], rows[:half], f, g, ok, errors, seconds)
            self._evaluate_rows(xs[half:], rows[half:], f, g, ok, errors, seconds)
            return
        seconds[rows] = (time.perf_counter() - started) / len(xs)
        f[rows], g[rows] = fc, gc
        finite = torch.isfinite(fc).all(dim=1) & torch.isfinite(gc).all(dim=1)
        ok[rows] = finite
        for j in torch.nonzero(~finite).flatten().tolist():
            errors[int(rows[j])] = self._nonfinite_message(fc[j], gc[j])

    def _nonfinite_message(self, fr: torch.Tensor, gr: torch.Tensor) -> str:
        for o, v in zip(self.domain.objectives, fr.tolist()):
            if not math.isfinite(v):
                return f"objective {o.name!r} is {v}"
        for cst, v in zip(self.domain.constraints, gr.tolist()):
            if not math.isfinite(v):
                return f"constraint {cst.name!r} is {v}"
        return "non-finite output"

    def _remember(self, key: bytes, value: tuple) -> None:
        self._cache[key] = value
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
