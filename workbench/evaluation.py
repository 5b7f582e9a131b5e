"""The evaluation engine: batched, chunked, device-aware scoring with per-row failures."""

from __future__ import annotations

import math
import time
from typing import Protocol

import numpy as np
import torch

from .device import resolve_device
from .domain import Domain, Evaluation, split_outputs
from .serialization import design_bytes


class EvaluationEngine(Protocol):
    """Scores valid, uncached designs somewhere else (e.g. Ray actors, :mod:`workbench.executors`).

    ``engine(x: [m, *shape])`` returns an :class:`Evaluation` of the ``m`` rows in their order, on CPU,
    float64, with per-row failures marked as the in-process engine marks them.
    """

    def __call__(self, x: torch.Tensor) -> Evaluation: ...


class Evaluator:
    """Scores populations with ``domain.evaluate``, one call per chunk.

    - splits a batch into chunks of ``chunk_size`` rows (all at once when None) and
      moves each to ``device``; on CUDA out-of-memory the chunk size is halved;
    - rows that are not valid designs, rows whose outputs are NaN/inf, and rows on which
      ``evaluate`` raises are marked failed with a message; the others go on (a raising
      chunk is bisected to find the failing rows);
    - repeated designs are served from a cache of up to ``cache_size`` rows (first in, first out), found by
      array operations on the designs' storage bytes;
    - with an ``engine`` (settable at any time), the rows left after validation and the cache are
      scored by it instead of in this process (the chunking above then happens where it runs).
    """

    def __init__(self, domain: Domain, device: str | torch.device | None = "auto", chunk_size: int | None = None,
                 cache_size: int = 100_000, engine: EvaluationEngine | None = None) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.domain = domain
        self.device = resolve_device(device)
        self.chunk_size = chunk_size
        self.cache_size = cache_size
        self._cache = _DesignCache(cache_size)
        self.calls = 0  # calls of domain.evaluate in this process
        self.engine = engine

    def __call__(self, x: torch.Tensor, designs: np.ndarray | None = None) -> Evaluation:
        """Evaluate ``x: [n, *shape]``; returns an :class:`Evaluation` on CPU, float64.

        ``designs``: ``serialization.design_bytes(space, x)`` (``[n, width]`` uint8) where the caller has it
        already (a Study stores the same bytes), so the cache need not encode the batch again. Everything is done
        on whole arrays; Python touches single designs only where they failed.
        """
        space = self.domain.space
        x = space.check_batch(x)
        n, k, c = x.shape[0], self.domain.n_obj, self.domain.n_con
        f = torch.full((n, k), float("nan"), dtype=torch.float64)
        g = torch.full((n, c), float("nan"), dtype=torch.float64)
        ok = torch.zeros(n, dtype=torch.bool)
        errors: list[str | None] = [None] * n
        seconds = torch.zeros(n, dtype=torch.float64)

        valid = np.ones(n, dtype=bool)
        for row, reason in space.invalid_rows(x).items():
            errors[row] = f"invalid design: {reason}"
            valid[row] = False
        todo = np.flatnonzero(valid)
        if self.cache_size:
            self._cache.size = self.cache_size  # settable at any time, as the rows kept are
            keys = design_bytes(space, x) if designs is None else designs
            if keys.shape[0] != n:
                raise ValueError(f"designs has {keys.shape[0]} rows for a batch of {n}")
            hashes = _row_hashes(keys)
            found, slots = self._cache.find(_take(keys, todo, n), _take(hashes, todo, n))
            if found.any():
                hits = todo[found]
                index = torch.from_numpy(hits)
                f[index], g[index], ok[index] = (torch.from_numpy(a) for a in self._cache.values(slots))
                for j, message in self._cache.messages(slots):
                    errors[int(hits[j])] = message
                todo = todo[~found]
        if len(todo):
            index = torch.from_numpy(todo)
            sub = x.index_select(0, index.to(x.device))
            if self.engine is not None:
                self._evaluate_elsewhere(sub, index, f, g, ok, errors, seconds)
            else:
                self._evaluate_here(sub, index, f, g, ok, errors, seconds)
            if self.cache_size:
                messages = [errors[i] for i in todo.tolist()] if errors.count(None) < n else None
                self._cache.add(_take(keys, todo, n), _take(hashes, todo, n), f[index].numpy(), g[index].numpy(),
                                ok[index].numpy(), messages)
        return Evaluation(objectives=f, constraints=g, ok=ok, errors=errors, seconds=seconds)

    def _evaluate_here(self, xs: torch.Tensor, rows: torch.Tensor, f: torch.Tensor, g: torch.Tensor,
                       ok: torch.Tensor, errors: list[str | None], seconds: torch.Tensor) -> None:
        """Score ``xs`` in this process, chunk by chunk; on CUDA out-of-memory the chunk size is halved."""
        chunk = self.chunk_size or len(rows)
        start = 0
        while start < len(rows):
            stop = min(start + chunk, len(rows))
            try:
                self._evaluate_rows(xs[start:stop], rows[start:stop], f, g, ok, errors, seconds)
            except torch.cuda.OutOfMemoryError:
                if chunk == 1:
                    raise
                chunk = max(1, chunk // 2)
                self.chunk_size = chunk
                torch.cuda.empty_cache()
                continue
            start = stop

    def _evaluate_elsewhere(self, xs: torch.Tensor, rows: torch.Tensor, f: torch.Tensor, g: torch.Tensor,
                            ok: torch.Tensor, errors: list[str | None], seconds: torch.Tensor) -> None:
        """Score ``xs`` with the engine and put its rows at ``rows`` of the batch's results."""
        part = self.engine(xs)
        if len(part) != len(rows) or len(part.errors) != len(rows):
            raise RuntimeError(f"evaluation engine {type(self.engine).__name__} returned {len(part)} rows "
                               f"for {len(rows)} designs")
        f[rows] = part.objectives.to("cpu", torch.float64)
        g[rows] = part.constraints.to("cpu", torch.float64)
        ok[rows] = part.ok.to("cpu", torch.bool)
        if part.seconds is not None:
            seconds[rows] = part.seconds.to("cpu", torch.float64)
        for j, i in enumerate(rows.tolist()):
            errors[i] = part.errors[j]

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


def _take(a: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``a[rows]``, without a copy when ``rows`` is every row ``0 .. n - 1``."""
    return a if len(rows) == n else a[rows]


_MULTIPLIERS: dict[int, np.ndarray] = {}


def _row_hashes(keys: np.ndarray) -> np.ndarray:
    """``[n]`` uint64 hashes of the rows of ``keys: [n, width]`` uint8.

    Each row, read as 64-bit words, is summed with fixed odd multipliers (mod 2**64: rows that differ in one word
    never collide) and mixed. Only a hint: the cache compares the bytes of rows whose hashes match.
    """
    n, width = keys.shape
    words = -(-width // 8)
    if width % 8:
        keys = np.concatenate([keys, np.zeros((n, words * 8 - width), dtype=np.uint8)], axis=1)
    if words not in _MULTIPLIERS:
        draws = np.random.Generator(np.random.PCG64(0x5EED)).integers(0, 2**63, size=words, dtype=np.uint64)
        _MULTIPLIERS[words] = draws * np.uint64(2) + np.uint64(1)
    h = (np.ascontiguousarray(keys).view("<u8") * _MULTIPLIERS[words]).sum(axis=1, dtype=np.uint64)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    return h


class _DesignCache:
    """Scores of up to ``size`` designs keyed by their storage bytes, oldest dropped first.

    Lookups are array operations: a binary search of the batch's row hashes among the cached ones' (kept sorted),
    then a byte-for-byte comparison of the rows whose hashes match, so a hash collision is a miss, never a wrong
    score. Messages (failed rows only) are kept per row in an object array.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.keys: np.ndarray | None = None  # [m, width] uint8
        self.hashes = np.empty(0, dtype=np.uint64)  # [m]
        self.f: np.ndarray | None = None  # [m, k]
        self.g: np.ndarray | None = None  # [m, c]
        self.ok = np.empty(0, dtype=bool)  # [m]
        self.errors = np.empty(0, dtype=object)  # [m] message or None
        self._order = np.empty(0, dtype=np.int64)  # slots by increasing hash
        self._sorted = np.empty(0, dtype=np.uint64)  # hashes[_order]

    def __len__(self) -> int:
        return len(self.hashes)

    def find(self, keys: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``[n]`` bool: row cached, ``[hits]`` cache slots of the cached rows, in row order)."""
        if not len(self) or not len(hashes):
            return np.zeros(len(hashes), dtype=bool), np.empty(0, dtype=np.int64)
        if keys.shape[1] != self.keys.shape[1]:
            raise ValueError(f"designs of {keys.shape[1]} bytes; the cache holds designs of {self.keys.shape[1]}")
        pos = np.minimum(np.searchsorted(self._sorted, hashes), len(self) - 1)
        found = self._sorted[pos] == hashes
        slots = self._order[pos]
        if found.any():
            candidates = np.flatnonzero(found)
            same = (self.keys[slots[candidates]] == keys[candidates]).all(axis=1)
            found[candidates[~same]] = False
        return found, slots[found]

    def values(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Objectives ``[h, k]``, constraints ``[h, c]`` and ok flags ``[h]`` of cache slots."""
        return self.f[slots], self.g[slots], self.ok[slots]

    def messages(self, slots: np.ndarray) -> list[tuple[int, str]]:
        """(position in ``slots``, message) of the slots that hold a message."""
        errors = self.errors[slots]
        return [(j, errors[j]) for j in np.flatnonzero(np.not_equal(errors, None)).tolist()]

    def add(self, keys: np.ndarray, hashes: np.ndarray, f: np.ndarray, g: np.ndarray, ok: np.ndarray,
            errors: list[str | None] | None) -> None:
        """Remember rows (``errors``: one entry per row, or None when no row has a message)."""
        new = min(len(hashes), self.size)
        old = min(len(self), self.size - new)
        fresh = np.full(len(hashes), None, dtype=object) if errors is None else _objects(errors)
        parts = {"keys": keys, "hashes": hashes, "f": f, "g": g, "ok": ok, "errors": fresh}
        for name, rows in parts.items():
            before = getattr(self, name)
            rows = rows[len(rows) - new:]
            setattr(self, name, np.concatenate([before[len(before) - old:], rows]) if before is not None and old
                    else np.array(rows, copy=True))
        self._order = np.argsort(self.hashes, kind="stable")
        self._sorted = self.hashes[self._order]


def _objects(values: list) -> np.ndarray:
    """A 1-D object array of ``values`` (``np.array`` would make strings a unicode array)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out

