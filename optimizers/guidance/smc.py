"""Sequential Monte Carlo with the prior as proposal, weighted by the soft value of x0_hat."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from workbench.generative import Correction, Partial

from .base import PriorSampler


class SMC(PriorSampler):
    """Particles = the requested designs. Each reverse step proposes from the prior, weights
    particles by ``exp((v_s - v_t) / alpha)`` with ``v`` the reward of the denoised estimate
    x0_hat, and resamples (multinomial) when the effective sample size drops below
    ``ess_threshold * n``. Targets ``p_prior(x) exp(r(x) / alpha)``. A resampled particle keeps
    its own condition, so per-row conditions end up in resampled order; per-row partial designs
    are refused.
    """

    name = "smc"

    def __init__(self, alpha: float = 0.1, ess_threshold: float = 0.5, steps: int = 128,
                 weights: Sequence[float] | None = None, scalarization: str = "sum", batch_size: int = 64,
                 condition: int | Sequence[int] | None = None, partial: Partial | None = None,
                 corrector: Correction | None = None) -> None:
        super().__init__(steps, weights, scalarization, batch_size, condition, partial, corrector)
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0 for SMC, got {alpha}")
        if not 0.0 <= ess_threshold <= 1.0:
            raise ValueError(f"ess_threshold must be in [0, 1], got {ess_threshold}")
        if partial is not None and partial.per_row:
            raise ValueError("SMC resamples its particles, so it takes one partial design for all rows, "
                             "not one per row")
        self.alpha = float(alpha)
        self.ess_threshold = float(ess_threshold)

    def _resample(self, log_w: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(log_w, dim=0)
        return torch.multinomial(probs, len(probs), replacement=True, generator=self.generator)

    def generate(self, n: int) -> torch.Tensor:
        prior, grid, partial = self.prior, self.prior.timesteps(self.steps), self.partial
        x = prior.initial(n, self.generator, partial)
        condition = self._condition(n)
        log_w = torch.zeros(n, dtype=torch.float64, device=x.device)
        value = torch.zeros(n, dtype=torch.float64, device=x.device)
        for i in range(self.steps):
            t, s = grid[i], grid[i + 1]
            x = prior.step(x, t, s, condition, partial, generator=self.generator).sample(generator=self.generator)
            x0 = prior.to_design(x, partial) if i == self.steps - 1 else prior.denoise(x, s, condition, partial)
            new_value = self.reward(x0)
            log_w = log_w + (new_value - value) / self.alpha
            value = new_value
            ess = torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))
            if i == self.steps - 1 or ess < self.ess_threshold * n:
                index = self._resample(log_w)
                x, value = x[index], value[index]
                condition = None if condition is None else condition[index]
                log_w = torch.zeros_like(log_w)
        return prior.to_design(x, partial)
