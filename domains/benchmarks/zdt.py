"""ZDT1-3 (Zitzler, Deb & Thiele 2000): two-objective box-constrained benchmarks.

All share ``g(x) = 1 + 9 * sum(x[1:]) / (n_var - 1)``, ``f1 = x0`` and ``f2 = g * h(f1, g)``;
the Pareto set is ``x[1:] = 0`` (g = 1), so the front is the curve ``f2 = h(f1, 1)``.
"""

from __future__ import annotations

import math

import torch

from workbench.domain import Domain
from workbench.objectives import Objective
from workbench.spaces import MixedSpace

from ._common import as_batch, nondominated_2d, spread_by_length


class _ZDT(Domain):
    """Base of the ZDT problems: ``n_var`` reals in [0, 1], objectives "f1", "f2" (minimize).

    Reference point (1.1, 1.1): the front's nadir is at most (1, 1) for all three
    problems, and a 10 % margin beyond it is the customary ZDT hypervolume reference.
    """

    name = "zdt"
    REF = (1.1, 1.1)

    def __init__(self, n_var: int = 30) -> None:
        if int(n_var) != n_var or n_var < 2:
            raise ValueError(f"n_var must be an integer >= 2, got {n_var}")
        self.n_var = int(n_var)
        super().__init__(MixedSpace.box(self.n_var),
                         [Objective("f1", "minimize", ref=self.REF[0]), Objective("f2", "minimize", ref=self.REF[1])])

    def _h(self, f1: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Objectives ``[n, 2]`` (float64, on ``x``'s device) of designs ``x: [n, n_var]``."""
        x = as_batch(x, self.n_var)
        f1 = x[:, 0]
        g = 1.0 + 9.0 * x[:, 1:].sum(dim=1) / (self.n_var - 1)
        return torch.stack([f1, g * self._h(f1, g)], dim=1)

    def _front_f1(self, n: int) -> torch.Tensor:
        """f1 values ``[m]`` of about ``n`` front points, evenly spread along the front."""
        dense = max(20 * n, 20000)
        # f1 = t^2 spreads the dense grid evenly where the front is steep (near f1 = 0)
        f1 = torch.linspace(0.0, 1.0, dense, dtype=torch.float64) ** 2
        f = torch.stack([f1, self._h(f1, torch.ones_like(f1))], dim=1)
        keep = nondominated_2d(f)
        gap = (keep[1:] - keep[:-1]) > 1  # dominated stretches removed between kept points
        return f1[keep[spread_by_length(f[keep], n, gap)]]

    def pareto_front(self, n: int = 1000) -> torch.Tensor:
        """About ``n`` points ``[m, 2]`` exactly on the true front, evenly spaced by arc length (CPU, float64)."""
        f1 = self._front_f1(n)
        return torch.stack([f1, self._h(f1, torch.ones_like(f1))], dim=1)

    def pareto_set(self, n: int = 1000) -> torch.Tensor:
        """Designs ``[m, n_var]`` whose objectives are exactly ``pareto_front(n)`` (x0 = f1, the rest 0)."""
        f1 = self._front_f1(n)
        x = torch.zeros((f1.shape[0], self.n_var), dtype=torch.float64)
        x[:, 0] = f1
        return x


class ZDT1(_ZDT):
    """ZDT1: convex front ``f2 = 1 - sqrt(f1)``, f1 in [0, 1]."""

    name = "zdt1"

    def _h(self, f1: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return 1.0 - torch.sqrt(f1 / g)


class ZDT2(_ZDT):
    """ZDT2: concave front ``f2 = 1 - f1^2``, f1 in [0, 1]."""

    name = "zdt2"

    def _h(self, f1: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return 1.0 - (f1 / g) ** 2


class ZDT3(_ZDT):
    """ZDT3: disconnected front, the non-dominated pieces of ``f2 = 1 - sqrt(f1) - f1 sin(10 pi f1)``.

    Five pieces with f1 in [0, 0.852]; f2 goes down to about -0.773. The reference
    point (1.1, 1.1) still lies beyond the nadir (0.852, 1).
    """

    name = "zdt3"

    def _h(self, f1: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        r = f1 / g
        return 1.0 - torch.sqrt(r) - r * torch.sin(10.0 * math.pi * f1)
