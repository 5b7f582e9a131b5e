"""Counterfactual benchmark problems in plain numpy, shared by both sides of the comparison
(decode-mcd's environment has no torch): data, predictor, query and targets."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class McdProblemSpec:
    name: str
    x: np.ndarray  # [m, d] data set
    low: np.ndarray  # [d]
    high: np.ndarray  # [d]
    predict: Callable[[np.ndarray], np.ndarray]  # [n, d] -> [n, p]
    properties: list[str]
    query: np.ndarray  # [d]
    targets: dict[str, tuple[float, float]]  # property -> (lower, upper)

    def valid(self, designs: np.ndarray) -> np.ndarray:
        """``[n]`` bool: every target range met on re-evaluation."""
        if len(designs) == 0:
            return np.zeros(0, dtype=bool)
        y = self.predict(designs)
        ok = np.ones(len(designs), dtype=bool)
        for j, name in enumerate(self.properties):
            if name in self.targets:
                lo, hi = self.targets[name]
                ok &= (y[:, j] >= lo) & (y[:, j] <= hi)
        return ok


_W = np.linspace(1.0, 0.1, 10)


def _synthetic_predict(x: np.ndarray) -> np.ndarray:
    p1 = x @ _W / _W.sum()
    p2 = np.sin(3.0 * x[:, ::2]).mean(axis=1) + 0.3 * x[:, 1] * x[:, 3]
    return np.stack([p1, p2], axis=1)


def synthetic10(rows: int = 1000, seed: int = 0) -> McdProblemSpec:
    """10 continuous features in [0, 1], two smooth predicted properties, two range targets
    that the query (row 0) misses and about 3% of the data meets."""
    x = np.random.default_rng(seed).random((rows, 10))
    y = _synthetic_predict(x)
    targets = {"p1": (float(np.quantile(y[:, 0], 0.75)), float(np.quantile(y[:, 0], 0.95))),
               "p2": (float(np.quantile(y[:, 1], 0.05)), float(np.quantile(y[:, 1], 0.35)))}
    query = np.full(10, 0.5)
    return McdProblemSpec("synthetic10", x, np.zeros(10), np.ones(10), _synthetic_predict, ["p1", "p2"], query,
                          targets)


def _toy_predict(x: np.ndarray) -> np.ndarray:
    x1, x2 = x[:, 0], x[:, 1]
    circle = (x1 - 0.3) ** 2 + (x2 - 0.3) ** 2 <= 0.1 ** 2
    wave = (((x1 - x2) ** 6 - 1) ** 2 + ((x1 + x2) ** 6 - 1) ** 2) ** 2 < 0.99
    return (circle | wave).astype(np.float64)[:, None]


def toy2d(rows: int = 20_000, seed: int = 0) -> McdProblemSpec:
    """The MCD paper's 2-D toy: valid inside a small circle or a four-lobed curve band; query (0, 0)."""
    x = np.random.default_rng(seed).uniform(-1, 1, (rows, 2))
    return McdProblemSpec("toy2d", x, -np.ones(2), np.ones(2), _toy_predict, ["valid"], np.zeros(2),
                          {"valid": (0.5, 1.5)})


PROBLEMS = {"synthetic10": synthetic10, "toy2d": toy2d}


def metrics(spec: McdProblemSpec, designs: np.ndarray, k: int = 3) -> dict[str, float]:
    """Quality of returned counterfactuals, computed the same way for both tools (decode-mcd's
    definitions: range-scaled Gower, exact change count, mean Gower to the 3 nearest data points)."""
    n = len(designs)
    if n == 0:
        return {"returned": 0, "valid": 0, "gower": float("nan"), "changed": float("nan"), "manifold": float("nan"),
                "diversity": float("nan")}
    span = spec.high - spec.low
    gower = (np.abs(designs - spec.query) / span).mean(axis=1)
    changed = (designs != spec.query).mean(axis=1)
    manifold = np.empty(n)
    for i in range(n):  # n is small; the data set can be large: one row at a time keeps memory O(m)
        d = (np.abs(spec.x - designs[i]) / span).mean(axis=1)
        manifold[i] = np.partition(d, k - 1)[:k].mean()
    pair = (np.abs(designs[:, None] - designs[None]) / span).mean(axis=2)
    diversity = pair[np.triu_indices(n, 1)].mean() if n > 1 else 0.0
    return {"returned": n, "valid": int(spec.valid(designs).sum()), "gower": float(gower.mean()),
            "changed": float(changed.mean()), "manifold": float(manifold.mean()), "diversity": float(diversity)}


def run_arguments() -> argparse.ArgumentParser:
    """Command-line arguments shared by ``run_ours.py`` and ``run_decode.py``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--problem", default="synthetic10", choices=sorted(PROBLEMS))
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--pop", type=int, default=100)
    parser.add_argument("--gens", type=int, default=100)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)  # decode-mcd wants a positive seed
    return parser
