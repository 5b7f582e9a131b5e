"""OSY (Osyczka & Kundu 1995): 6 variables, 2 objectives, 6 inequality constraints."""

from __future__ import annotations

import torch

from workbench.domain import Domain
from workbench.objectives import Constraint, Objective
from workbench.spaces import MixedSpace, Real

from ._common import as_batch, nondominated_2d, spread_by_length

_BOUNDS = ((0.0, 10.0), (0.0, 10.0), (1.0, 5.0), (0.0, 6.0), (1.0, 5.0), (0.0, 10.0))


class OSY(Domain):
    """OSY: minimize f1 = -[25(x1-2)^2 + (x2-2)^2 + (x3-1)^2 + (x4-4)^2 + (x5-1)^2], f2 = sum x_i^2.

    Variables x1..x6 with their original bounds. Constraints keep their textbook form and
    raw units (pymoo divides them by 2, 4 or 6; feasibility is the same):
    c1 = x1 + x2 >= 2, c2 = x1 + x2 <= 6, c3 = x2 - x1 <= 2, c4 = x1 - 3 x2 <= 2,
    c5 = (x3 - 3)^2 + x4 <= 4, c6 = (x5 - 3)^2 + x6 >= 4.
    The front spans f1 in [-274, -42], f2 in [4, 76]; the reference point
    (-18.8, 83.2) is that nadir plus 10 % of each objective's range (the ZDT/DTLZ rule).
    """

    name = "osy"
    REF = (-18.8, 83.2)

    def __init__(self) -> None:
        space = MixedSpace(Real(f"x{i + 1}", lo, hi) for i, (lo, hi) in enumerate(_BOUNDS))
        super().__init__(space,
                         [Objective("f1", "minimize", ref=self.REF[0]), Objective("f2", "minimize", ref=self.REF[1])],
                         [Constraint("c1", 2.0, ">="), Constraint("c2", 6.0, "<="), Constraint("c3", 2.0, "<="),
                          Constraint("c4", 2.0, "<="), Constraint("c5", 4.0, "<="), Constraint("c6", 4.0, ">=")])

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Objectives then constraint values: ``[n, 2 + 6]`` (float64, on ``x``'s device) for ``x: [n, 6]``."""
        x = as_batch(x, 6)
        x1, x2, x3, x4, x5, x6 = x.unbind(dim=1)
        f1 = -(25.0 * (x1 - 2.0) ** 2 + (x2 - 2.0) ** 2 + (x3 - 1.0) ** 2 + (x4 - 4.0) ** 2 + (x5 - 1.0) ** 2)
        f2 = (x ** 2).sum(dim=1)
        return torch.stack([f1, f2, x1 + x2, x1 + x2, x2 - x1, x1 - 3.0 * x2,
                            (x3 - 3.0) ** 2 + x4, (x5 - 3.0) ** 2 + x6], dim=1)

    @staticmethod
    def _families(m: int) -> torch.Tensor:
        """Designs ``[5 m, 6]`` on the five Pareto-optimal families (Deb 2001, sec. 8.3), x4 = x6 = 0.

        AB: x1=5, x2=1, x5=5, x3 in [1, 5]      BC: same with x5=1
        CD: x2=(x1-2)/3, x3=1, x5=1, x1 in [4.056, 5] (sampled wider, trimmed by dominance)
        DE: x1=0, x2=2, x5=1, x3 in [1, 3.732]  (sampled over [1, 5], trimmed likewise)
        EF: x2=2-x1, x3=1, x5=1, x1 in [0, 1]
        """
        t = torch.linspace(0.0, 1.0, m, dtype=torch.float64)
        one, zero = torch.ones_like(t), torch.zeros_like(t)
        x3 = 1.0 + 4.0 * t
        ab = torch.stack([5 * one, one, x3, zero, 5 * one, zero], dim=1)
        bc = torch.stack([5 * one, one, x3, zero, one, zero], dim=1)
        x1 = 3.5 + 1.5 * t
        cd = torch.stack([x1, (x1 - 2.0) / 3.0, one, zero, one, zero], dim=1)
        de = torch.stack([zero, 2 * one, x3, zero, one, zero], dim=1)
        ef = torch.stack([t, 2.0 - t, one, zero, one, zero], dim=1)
        return torch.cat([ab, bc, cd, de, ef], dim=0)

    def _front_designs(self, n: int) -> torch.Tensor:
        x = self._families(max(4 * n, 4000))
        out = self.evaluate(x)
        f, viol = out[:, :2], self._violations(out[:, 2:])
        feasible = (viol <= 1e-9).all(dim=1)
        x, f = x[feasible], f[feasible]
        keep = nondominated_2d(f)  # the front is connected: no gaps to skip
        return x[keep[spread_by_length(f[keep], n)]]

    def _violations(self, values: torch.Tensor) -> torch.Tensor:
        return torch.stack([c.violation(values[:, j]) for j, c in enumerate(self.constraints)], dim=1)

    def pareto_set(self, n: int = 1000) -> torch.Tensor:
        """About ``n`` feasible, mutually non-dominated designs ``[m, 6]`` on the known optimal families."""
        return self._front_designs(n)

    def pareto_front(self, n: int = 1000) -> torch.Tensor:
        """Objectives ``[m, 2]`` of ``pareto_set(n)``: the piecewise front, evenly spaced by arc length (CPU)."""
        return self.evaluate(self._front_designs(n))[:, :2]
