"""Random search: uniform or scrambled-Sobol designs, the baseline every optimizer must beat."""

from __future__ import annotations

from typing import Any

import torch

from workbench.domain import Evaluation
from workbench.optimizer import Optimizer, Problem
from workbench.spaces import MixedSpace


class RandomSearch(Optimizer):
    """Proposes designs independently of all scores.

    ``method="uniform"`` samples the space (any space kind); ``method="sobol"`` maps a
    scrambled Sobol sequence through the unit cube of a :class:`MixedSpace`, which
    covers the space more evenly for small budgets.
    """

    name = "random"

    def __init__(self, method: str = "uniform", batch_size: int = 100) -> None:
        if method not in ("uniform", "sobol"):
            raise ValueError(f"method must be 'uniform' or 'sobol', got {method!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.method = method
        self.batch_size = batch_size

    @property
    def default_batch_size(self) -> int:
        return self.batch_size

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        if self.method == "sobol":
            if not isinstance(problem.space, MixedSpace):
                raise TypeError(f"Sobol sampling needs a MixedSpace, not {type(problem.space).__name__}")
            self._sobol_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator, device=self.device))
            self._sobol = torch.quasirandom.SobolEngine(problem.space.dim, scramble=True, seed=self._sobol_seed)
        self.drawn = 0

    def ask(self, n: int) -> torch.Tensor:
        space = self.problem.space
        self.drawn += n
        if self.method == "sobol":
            u = self._sobol.draw(n, dtype=torch.float64).to(self.device)
            return space.from_unit(u)
        return space.sample(n, generator=self.generator, device=self.device)

    def tell(self, x: torch.Tensor, evaluation: Evaluation) -> None:
        """Random search ignores scores."""

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.drawn = int(state["drawn"])
        if self.method == "sobol":
            self._sobol = torch.quasirandom.SobolEngine(self.problem.space.dim, scramble=True, seed=self._sobol_seed)
            self._sobol.fast_forward(self.drawn)
