"""Variation operators for mixed vectors, batched in torch (any device).

Real and integer genes use simulated binary crossover (SBX) and polynomial mutation
(Deb's bounded forms, as in pymoo); integers are rounded afterwards. Categorical and
binary genes use uniform crossover and random-reset mutation. Every draw comes from
the given generator.
"""

from __future__ import annotations

import torch

from workbench.spaces import MixedSpace


def _rand(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)


def sbx(p1: torch.Tensor, p2: torch.Tensor, low: torch.Tensor, high: torch.Tensor, eta: float, prob_var: float,
        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounded simulated binary crossover of parent pairs ``p1, p2: [m, d]`` -> two children ``[m, d]``.

    Each gene crosses with probability ``prob_var`` (when the parents differ); the two
    children's genes are swapped with probability 0.5.
    """
    m, d = p1.shape
    cross = (_rand((m, d), generator, p1) < prob_var) & ((p1 - p2).abs() > 1e-14)
    y1, y2 = torch.minimum(p1, p2), torch.maximum(p1, p2)
    delta = torch.where(cross, y2 - y1, torch.ones_like(y1))
    u = _rand((m, d), generator, p1)
    exponent = 1.0 / (eta + 1.0)

    def betaq(beta: torch.Tensor) -> torch.Tensor:
        alpha = 2.0 - beta.pow(-(eta + 1.0))
        small = u <= 1.0 / alpha
        return torch.where(small, (u * alpha).clamp(min=0).pow(exponent),
                           (1.0 / (2.0 - u * alpha).clamp(min=1e-300)).pow(exponent))

    c1 = 0.5 * (y1 + y2 - betaq(1.0 + 2.0 * (y1 - low) / delta) * (y2 - y1))
    c2 = 0.5 * (y1 + y2 + betaq(1.0 + 2.0 * (high - y2) / delta) * (y2 - y1))
    c1, c2 = torch.minimum(torch.maximum(c1, low), high), torch.minimum(torch.maximum(c2, low), high)
    swap = _rand((m, d), generator, p1) < 0.5
    c1, c2 = torch.where(swap, c2, c1), torch.where(swap, c1, c2)
    return torch.where(cross, c1, p1), torch.where(cross, c2, p2)


def polynomial_mutation(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, eta: float, prob_var: float,
                        generator: torch.Generator) -> torch.Tensor:
    """Bounded polynomial mutation of ``x: [n, d]``; each gene mutates with probability ``prob_var``."""
    n, d = x.shape
    mutate = _rand((n, d), generator, x) < prob_var
    span = high - low
    safe_span = torch.where(span > 0, span, torch.ones_like(span))
    delta1, delta2 = (x - low) / safe_span, (high - x) / safe_span
    u = _rand((n, d), generator, x)
    power = 1.0 / (eta + 1.0)
    lower = u <= 0.5
    val_lo = 2.0 * u + (1.0 - 2.0 * u) * (1.0 - delta1).pow(eta + 1.0)
    val_hi = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * (1.0 - delta2).pow(eta + 1.0)
    deltaq = torch.where(lower, val_lo.clamp(min=0).pow(power) - 1.0, 1.0 - val_hi.clamp(min=0).pow(power))
    y = torch.minimum(torch.maximum(x + deltaq * span, low), high)
    return torch.where(mutate, y, x)


def uniform_crossover(p1: torch.Tensor, p2: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap each gene of parent pairs ``[m, d]`` with probability 0.5."""
    swap = _rand(p1.shape, generator, p1) < 0.5
    return torch.where(swap, p2, p1), torch.where(swap, p1, p2)


def random_reset(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor, prob_var: float,
                 generator: torch.Generator) -> torch.Tensor:
    """Replace each discrete gene of ``x: [n, d]`` with probability ``prob_var`` by a different legal value."""
    n, d = x.shape
    mutate = _rand((n, d), generator, x) < prob_var
    levels = high - low + 1  # number of values per gene
    shift = torch.floor(_rand((n, d), generator, x) * (levels - 1)) + 1  # 1 .. levels-1: never the same value
    y = low + torch.remainder(x - low + shift, levels)
    return torch.where(mutate, y, x)


class MixedVariation:
    """Crossover + mutation for a :class:`MixedSpace`, dispatching genes by kind."""

    def __init__(self, space: MixedSpace, crossover_prob: float = 0.9, crossover_eta: float = 15.0,
                 crossover_prob_var: float = 0.5, mutation_eta: float = 20.0, mutation_prob_var: float | None = None) -> None:
        self.space = space
        self.crossover_prob = crossover_prob
        self.crossover_eta = crossover_eta
        self.crossover_prob_var = crossover_prob_var
        self.mutation_eta = mutation_eta
        self.mutation_prob_var = mutation_prob_var if mutation_prob_var is not None else min(0.5, 1.0 / space.dim)
        self.numeric = torch.tensor(space.real_idx + space.integer_idx, dtype=torch.long)
        self.choice = torch.tensor(space.categorical_idx + space.binary_idx, dtype=torch.long)

    def __call__(self, p1: torch.Tensor, p2: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Parent pairs ``p1, p2: [m, d]`` -> ``[2m, d]`` children, repaired to legal values."""
        device = p1.device
        low, high = self.space.bounds.to(device, p1.dtype)
        c1, c2 = p1.clone(), p2.clone()
        mate = _rand((p1.shape[0], 1), generator, p1) < self.crossover_prob
        numeric, choice = self.numeric.to(device), self.choice.to(device)
        if numeric.numel():
            a, b = sbx(p1[:, numeric], p2[:, numeric], low[numeric], high[numeric], self.crossover_eta,
                       self.crossover_prob_var, generator)
            c1[:, numeric] = torch.where(mate, a, p1[:, numeric])
            c2[:, numeric] = torch.where(mate, b, p2[:, numeric])
        if choice.numel():
            a, b = uniform_crossover(p1[:, choice], p2[:, choice], generator)
            c1[:, choice] = torch.where(mate, a, p1[:, choice])
            c2[:, choice] = torch.where(mate, b, p2[:, choice])
        children = torch.cat([c1, c2], dim=0)
        if numeric.numel():
            children[:, numeric] = polynomial_mutation(children[:, numeric], low[numeric], high[numeric],
                                                       self.mutation_eta, self.mutation_prob_var, generator)
        if choice.numel():
            children[:, choice] = random_reset(children[:, choice], low[choice], high[choice], self.mutation_prob_var,
                                               generator)
        return self.space.repair(children)
