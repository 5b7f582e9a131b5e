"""MCD: multi-objective counterfactuals for design (Regenwetter et al.), as NSGA-II with a query repair.

The search itself is NSGA-II on the counterfactual problem (distance to the query, changed features,
distance to the data manifold, targets as constraints). What makes it MCD:

- the first population holds the query, sparse perturbations of it and real designs from the data
  set (``Problem.hints["seeds"]``), so the search starts near the query and on the manifold;
- after variation every child goes through the *revert repair*: with probability ``revert_prob`` a
  child is picked, and each of its genes returns to the query's value with probability
  ``revert_gene_prob`` (the defaults, 0.2 and 0.3, are those of the reference implementation,
  decode-mcd). Sparse counterfactuals, which change few features, are otherwise rare for a GA;
- frozen features (``Problem.hints["frozen"]``) always keep the query's value.

The query and frozen mask come from ``Problem.hints``, which a counterfactual domain fills
(see ``workbench.counterfactuals``). Resumable like NSGA-II: the state is tensors and JSON.
"""

from __future__ import annotations

from typing import Any

import torch

from workbench.optimizer import Problem

from .nsga2 import NSGA2


class MCD(NSGA2):
    """NSGA-II plus the MCD initial population and revert-to-query repair."""

    name = "mcd"

    def __init__(self, pop_size: int = 100, revert_prob: float = 0.2, revert_gene_prob: float = 0.3,
                 seed_fraction: float = 0.5, crossover_prob: float = 0.9, crossover_eta: float = 15.0,
                 crossover_prob_var: float = 0.5, mutation_eta: float = 20.0, mutation_prob_var: float | None = None,
                 eliminate_duplicates: bool = True) -> None:
        super().__init__(pop_size, crossover_prob, crossover_eta, crossover_prob_var, mutation_eta, mutation_prob_var,
                         eliminate_duplicates)
        for pname, value in (("revert_prob", revert_prob), ("revert_gene_prob", revert_gene_prob),
                             ("seed_fraction", seed_fraction)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{pname} must be in [0, 1], got {value}")
        self.revert_prob = revert_prob
        self.revert_gene_prob = revert_gene_prob
        self.seed_fraction = seed_fraction

    def setup(self, problem: Problem) -> None:
        hints = problem.hints or {}
        if "query" not in hints:
            raise ValueError("MCD needs a counterfactual problem (a query in Problem.hints); "
                             "use workbench.counterfactuals(...)")
        super().setup(problem)
        d, dev = self.space.dim, self.device
        query = torch.as_tensor(hints["query"], dtype=torch.float64).reshape(-1)
        if query.numel() != d:
            raise ValueError(f"MCD: the query has {query.numel()} values, the space {d} variables")
        self.query = query.to(dev)  # [d]
        frozen = hints.get("frozen")
        self.frozen = (torch.zeros(d, dtype=torch.bool) if frozen is None
                       else torch.as_tensor(frozen, dtype=torch.bool).reshape(d)).to(dev)  # [d]
        seeds = hints.get("seeds")
        self.seeds = (torch.empty((0, d), dtype=torch.float64) if seeds is None
                      else torch.as_tensor(seeds, dtype=torch.float64).reshape(-1, d)).to(dev)  # [s, d]
        self.seeds = torch.where(self.frozen, self.query, self.seeds)
        if bool(self.frozen.all()):
            raise ValueError("MCD: every feature is frozen, so nothing can change")
        self.drawn = 0  # designs of the first population handed out so far

    # ---------------------------------------------------------------- ask
    def ask(self, n: int) -> torch.Tensor:
        if self.x.shape[0] < self.pop_size:
            return self._initial(n)
        return super().ask(n)  # offspring through _offspring, which repairs

    def _initial(self, n: int) -> torch.Tensor:
        """First-population designs: the query, data-set seeds and sparse perturbations of the query."""
        x = self._perturbed(n)
        if self.seeds.shape[0]:
            use_seed = torch.rand(n, generator=self.generator, device=self.device) < self.seed_fraction
            pick = torch.randint(0, self.seeds.shape[0], (n,), generator=self.generator, device=self.device)
            x = torch.where(use_seed.unsqueeze(1), self.seeds[pick], x)
        if self.drawn == 0 and n > 0:
            x[0] = self.query
        x = self._without_duplicates(x, self._perturbed)
        self.drawn += n
        return x

    def _perturbed(self, n: int) -> torch.Tensor:
        """``n`` copies of the query, each changing a random share of its free genes to uniform values."""
        d, dev = self.space.dim, self.device
        free = ~self.frozen
        rate = torch.rand((n, 1), generator=self.generator, dtype=torch.float64, device=dev)
        change = (torch.rand((n, d), generator=self.generator, dtype=torch.float64, device=dev) < rate) & free
        # at least one free gene changes in every copy
        weights = free.to(torch.float64).expand(n, d)
        forced = torch.multinomial(weights, 1, generator=self.generator).flatten()
        change[torch.arange(n, device=dev), forced] = True
        u = self.space.sample(n, generator=self.generator, device=dev)
        return torch.where(change, u, self.query)

    def _offspring(self, n: int) -> torch.Tensor:
        return self.repair(super()._offspring(n))

    def repair(self, x: torch.Tensor) -> torch.Tensor:
        """Revert genes of ``x: [n, d]`` to the query (rows with ``revert_prob``, genes with ``revert_gene_prob``); frozen genes always."""
        n, d = x.shape
        rows = torch.rand((n, 1), generator=self.generator, dtype=torch.float64, device=self.device) < self.revert_prob
        genes = torch.rand((n, d), generator=self.generator, dtype=torch.float64, device=self.device) < self.revert_gene_prob
        return torch.where((rows & genes) | self.frozen, self.query, x)

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.drawn = int(state.get("drawn", 0))
