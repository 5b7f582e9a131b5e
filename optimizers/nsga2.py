"""NSGA-II (Deb et al. 2002), GPU-native: the population is one tensor, every step is batched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from workbench.domain import Evaluation
from workbench.optimizer import Optimizer, Problem
from workbench.pareto import constrained_rank, crowding_by_front, total_violation
from workbench.spaces import MixedSpace

from .operators import MixedVariation


class NSGA2(Optimizer):
    """Elitist non-dominated sorting GA with crowding, for mixed spaces.

    Feasibility first (Deb's constrained domination): feasible designs by Pareto rank,
    infeasible ones after them by total violation; failed evaluations rank last.
    Parents are picked by binary tournament on (rank, crowding); children come from
    SBX + polynomial mutation (numeric genes) and uniform crossover + random reset
    (categorical and binary genes). ``ask(n)`` may be called with any ``n``: the first
    ``pop_size`` designs are uniform samples, after that ``tell`` keeps the best
    ``pop_size`` of parents and children (a generation when ``n == pop_size``).
    """

    name = "nsga2"

    def __init__(self, pop_size: int = 100, crossover_prob: float = 0.9, crossover_eta: float = 15.0,
                 crossover_prob_var: float = 0.5, mutation_eta: float = 20.0, mutation_prob_var: float | None = None,
                 eliminate_duplicates: bool = True) -> None:
        if pop_size < 2:
            raise ValueError(f"pop_size must be >= 2, got {pop_size}")
        for pname, value in (("crossover_prob", crossover_prob), ("crossover_prob_var", crossover_prob_var)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{pname} must be in [0, 1], got {value}")
        if mutation_prob_var is not None and not 0.0 <= mutation_prob_var <= 1.0:
            raise ValueError(f"mutation_prob_var must be in [0, 1], got {mutation_prob_var}")
        self.pop_size = int(pop_size)
        self.crossover_prob = crossover_prob
        self.crossover_eta = crossover_eta
        self.crossover_prob_var = crossover_prob_var
        self.mutation_eta = mutation_eta
        self.mutation_prob_var = mutation_prob_var
        self.eliminate_duplicates = eliminate_duplicates

    @property
    def default_batch_size(self) -> int:
        return self.pop_size

    def setup(self, problem: Problem) -> None:
        if not isinstance(problem.space, MixedSpace):
            raise TypeError(f"NSGA2 works on MixedSpace designs, not {type(problem.space).__name__}")
        super().setup(problem)
        self.space = problem.space
        self.variation = MixedVariation(problem.space, self.crossover_prob, self.crossover_eta, self.crossover_prob_var,
                                        self.mutation_eta, self.mutation_prob_var)
        d, k = problem.space.dim, problem.n_obj
        device = problem.device
        self.x = torch.empty((0, d), dtype=torch.float64, device=device)  # [p, d] population
        self.f = torch.empty((0, k), dtype=torch.float64, device=device)  # [p, k] minimized objectives
        self.cv = torch.empty(0, dtype=torch.float64, device=device)  # [p] total violation (inf = failed)
        self.rank = torch.empty(0, dtype=torch.long, device=device)  # [p]
        self.crowding = torch.empty(0, dtype=torch.float64, device=device)  # [p]
        self.generation = 0
        # fixed projection for duplicate detection (not part of the seeded search stream)
        self._hash_weights = torch.rand(d, generator=torch.Generator().manual_seed(20021), dtype=torch.float64).to(device)

    # ---------------------------------------------------------------- ask/tell
    def ask(self, n: int) -> torch.Tensor:
        """``n`` new designs ``[n, d]``: uniform while the population fills, then offspring."""
        if self.x.shape[0] < self.pop_size:
            return self.space.sample(n, generator=self.generator, device=self.device)
        return self._without_duplicates(self._offspring(n), self._offspring)

    def _without_duplicates(self, x: torch.Tensor, regenerate: Callable[[int], torch.Tensor]) -> torch.Tensor:
        """Replace rows of ``x: [n, d]`` that repeat the population or an earlier row (up to 10 tries)."""
        if self.eliminate_duplicates:
            for _ in range(10):
                dup = self._duplicates(x)
                if not bool(dup.any()):
                    break
                x[dup] = regenerate(int(dup.sum()))
        return x

    def tell(self, x: torch.Tensor, evaluation: Evaluation) -> None:
        f, g, ok = self.problem.minimized(evaluation)
        cv = total_violation(g)
        cv = torch.where(ok, cv, torch.full_like(cv, float("inf")))
        self.x = torch.cat([self.x, x.to(self.device, torch.float64)])
        self.f = torch.cat([self.f, f])
        self.cv = torch.cat([self.cv, cv])
        self._survive()
        self.generation += 1

    # -------------------------------------------------------------- internals
    def _survive(self) -> None:
        """Keep the best ``pop_size`` rows by (feasibility-first rank, crowding), ties at random."""
        n = self.x.shape[0]
        feasible = self.cv <= 0
        f_for_rank = torch.where(feasible.unsqueeze(1), self.f, torch.zeros_like(self.f))
        g = self.cv.unsqueeze(1)
        rank = constrained_rank(f_for_rank, g, max_rank_fill=self.pop_size)
        crowd = torch.where(feasible, crowding_by_front(f_for_rank, rank), torch.zeros_like(self.cv))
        if n > self.pop_size:
            order = torch.randperm(n, generator=self.generator, device=self.device)
            order = order[torch.argsort(-crowd[order], stable=True)]
            order = order[torch.argsort(rank[order], stable=True)]
            keep = order[: self.pop_size]
        else:
            keep = torch.arange(n, device=self.device)
        self.x, self.f, self.cv = self.x[keep], self.f[keep], self.cv[keep]
        self.rank, self.crowding = rank[keep], crowd[keep]

    def _tournament(self, m: int) -> torch.Tensor:
        """``m`` parent indices, each the winner of a binary tournament on (rank, crowding)."""
        p = self.x.shape[0]
        a = torch.randint(0, p, (m,), generator=self.generator, device=self.device)
        b = torch.randint(0, p, (m,), generator=self.generator, device=self.device)
        coin = torch.rand(m, generator=self.generator, device=self.device) < 0.5
        ra, rb, ca, cb = self.rank[a], self.rank[b], self.crowding[a], self.crowding[b]
        a_wins = (ra < rb) | ((ra == rb) & ((ca > cb) | ((ca == cb) & coin)))
        return torch.where(a_wins, a, b)

    def _offspring(self, n: int) -> torch.Tensor:
        pairs = (n + 1) // 2
        parents = self._tournament(2 * pairs)
        children = self.variation(self.x[parents[:pairs]], self.x[parents[pairs:]], self.generator)
        return children[:n]

    def _duplicates(self, children: torch.Tensor) -> torch.Tensor:
        """``[n]`` bool: child equal to a population member or to an earlier child.

        Rows are hashed by a fixed random projection and sorted once (O(n log n));
        candidates sharing a hash are then compared exactly.
        """
        rows = torch.cat([self.x, children])
        h = rows @ self._hash_weights
        order = torch.argsort(h, stable=True)
        hs = h[order]
        starts = torch.ones_like(hs, dtype=torch.bool)
        starts[1:] = hs[1:] != hs[:-1]
        positions = torch.arange(len(hs), device=rows.device)
        group_first = torch.cummax(torch.where(starts, positions, torch.zeros_like(positions)), dim=0).values
        first = order[group_first]  # smallest original index with the same hash (stable sort)
        candidate = first != order
        same = torch.zeros_like(candidate)
        same[candidate] = (rows[order[candidate]] == rows[first[candidate]]).all(dim=1)
        dup = torch.zeros_like(candidate)
        dup[order] = same
        return dup[self.x.shape[0]:]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "x": self.x, "f": self.f, "cv": self.cv, "rank": self.rank,
                "crowding": self.crowding, "generation": self.generation}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        dev = self.device
        self.x, self.f, self.cv = state["x"].to(dev), state["f"].to(dev), state["cv"].to(dev)
        self.rank, self.crowding = state["rank"].to(dev), state["crowding"].to(dev)
        self.generation = int(state["generation"])
