"""DPS / classifier guidance: the derivative-based baseline. At each reverse step the denoised
estimate x0_hat is moved up the gradient of a differentiable reward before the step is drawn."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from workbench.generative import Correction, Partial
from workbench.optimizer import Problem

from .base import PriorSampler


class DPS(PriorSampler):
    """Gradient guidance at x0_hat, one reward-gradient call per step for the whole batch.

    On a Gaussian prior x0_hat moves by ``scale`` times the reward gradient normalized to unit RMS
    per design (in the prior's [-1, 1] units); on a masked prior p(x0 | x_t) is tilted by
    ``exp(scale * grad / rms)``, the gradient taken through ``Domain.evaluate_soft`` at p(x0 | x_t).
    The normalization makes ``scale`` independent of the reward's units. Needs a differentiable
    reward (``evaluate_soft``).
    """

    name = "dps"

    def __init__(self, scale: float = 0.1, steps: int = 128, weights: Sequence[float] | None = None,
                 scalarization: str = "sum", batch_size: int = 64, condition: int | Sequence[int] | None = None,
                 partial: Partial | None = None, corrector: Correction | None = None) -> None:
        super().__init__(steps, weights, scalarization, batch_size, condition, partial, corrector)
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.scale = float(scale)

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        if problem.evaluate_soft is None:
            raise ValueError("DPS needs a differentiable reward: the domain must implement evaluate_soft()")

    def generate(self, n: int) -> torch.Tensor:
        prior, grid, partial = self.prior, self.prior.timesteps(self.steps), self.partial
        condition = self._condition(n)
        x = prior.initial(n, self.generator, partial)
        for i in range(self.steps):
            step = prior.step(x, grid[i], grid[i + 1], condition, partial, guide=self.reward.soft,
                              guide_scale=self.scale, generator=self.generator)
            x = step.sample(generator=self.generator)
        return prior.to_design(x, partial)
