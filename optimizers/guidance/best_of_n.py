"""Best-of-N: draw N designs from the prior per requested design and keep the one with the highest reward."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from workbench.generative import Correction, Partial
from workbench.generative.protocol import expand_condition

from .base import PriorSampler


class BestOfN(PriorSampler):
    """For each requested design, ``n_samples`` prior draws, scored in one reward call; the best is kept.

    With ``n_samples = M + 1`` its denoiser cost per design matches SVDD-PM with M candidates.
    """

    name = "best_of_n"

    def __init__(self, n_samples: int = 21, steps: int = 128, weights: Sequence[float] | None = None,
                 scalarization: str = "sum", batch_size: int = 64, condition: int | Sequence[int] | None = None,
                 partial: Partial | None = None, corrector: Correction | None = None) -> None:
        super().__init__(steps, weights, scalarization, batch_size, condition, partial, corrector)
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        self.n_samples = int(n_samples)

    def generate(self, n: int) -> torch.Tensor:
        total = n * self.n_samples
        draws = self.prior.sample(total, self.steps, self.generator, condition=expand_condition(self._condition(n), total),
                                  partial=self.partial)  # [N * n, *shape]
        rewards = self.reward(draws).reshape(self.n_samples, n)
        best = rewards.argmax(dim=0)
        return draws.reshape(self.n_samples, n, *draws.shape[1:])[best, torch.arange(n, device=draws.device)]
