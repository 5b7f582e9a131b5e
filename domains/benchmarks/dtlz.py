"""DTLZ2 (Deb, Thiele, Laumanns & Zitzler 2002) and C1-DTLZ1 (Jain & Deb 2014).

Variables split into position ``x[:, :M-1]`` (where on the front) and distance
``x[:, M-1:]`` (how far from it, through ``g``); ``g = 0`` at ``x_dist = 0.5``.
"""

from __future__ import annotations

import math

import torch

from workbench.domain import Domain
from workbench.objectives import Constraint, Objective
from workbench.spaces import MixedSpace

from ._common import as_batch, das_dennis


def _check_sizes(n_obj: int, n_var: int | None, k: int, max_obj: int | None = None) -> tuple[int, int]:
    if int(n_obj) != n_obj or n_obj < 2 or (max_obj is not None and n_obj > max_obj):
        top = f" and <= {max_obj}" if max_obj is not None else ""
        raise ValueError(f"n_obj must be an integer >= 2{top}, got {n_obj}")
    n_obj = int(n_obj)
    n_var = n_obj + k - 1 if n_var is None else n_var
    if int(n_var) != n_var or n_var < n_obj:
        raise ValueError(f"n_var must be an integer >= n_obj ({n_obj}), got {n_var}")
    return n_obj, int(n_var)


def _spread_products(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """DTLZ shape ``[n, M]`` from ``a, b: [n, M-1]``: f_i = prod_{j < M-1-i} a_j * (b_{M-1-i} if i > 0).

    Column t = M-1-i of the unflipped product is ``cumprod(a)[:, t-1] * b[:, t]``, so one
    cumprod replaces the per-objective loop.
    """
    ones = a.new_ones((a.shape[0], 1))
    prefix = torch.cat([ones, torch.cumprod(a, dim=1)], dim=1)  # [n, M]: prod_{j < t} a_j
    tail = torch.cat([b, ones], dim=1)  # [n, M]: b_t, and 1 for t = M-1
    return torch.flip(prefix * tail, dims=[1])


class DTLZ2(Domain):
    """DTLZ2: ``n_obj`` objectives "f1".."fM" (minimize), front = unit sphere in the first orthant.

    ``n_var`` defaults to ``n_obj + 9`` (k = 10 distance variables), all in [0, 1].
    Reference point 1.1 per objective: the nadir is (1, ..., 1); 10 % beyond it.
    """

    name = "dtlz2"
    REF = 1.1

    def __init__(self, n_obj: int = 3, n_var: int | None = None) -> None:
        n_obj, self.n_var = _check_sizes(n_obj, n_var, k=10, max_obj=10)
        super().__init__(MixedSpace.box(self.n_var),
                         [Objective(f"f{i + 1}", "minimize", ref=self.REF) for i in range(n_obj)])

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Objectives ``[n, n_obj]`` (float64, on ``x``'s device) of designs ``x: [n, n_var]``."""
        x = as_batch(x, self.n_var)
        m = self.n_obj
        theta = x[:, : m - 1] * (math.pi / 2.0)
        g = ((x[:, m - 1:] - 0.5) ** 2).sum(dim=1, keepdim=True)
        return (1.0 + g) * _spread_products(torch.cos(theta), torch.sin(theta))

    def pareto_front(self, n: int = 1000) -> torch.Tensor:
        """Das-Dennis lattice (at most ``n`` points) projected onto the unit sphere: ``[m, n_obj]`` (CPU, float64)."""
        w = das_dennis(self.n_obj, n)
        return w / w.norm(dim=1, keepdim=True)

    def pareto_set(self, n: int = 1000) -> torch.Tensor:
        """Designs ``[m, n_var]`` mapping onto ``pareto_front(n)``: angles inverted, distance variables 0.5.

        Position t solves ``tan(theta_t) = f_{M-1-t} / ||f_{0..M-2-t}||``.
        """
        f = self.pareto_front(n)
        m = self.n_obj
        # norms of the leading objectives f_0..f_{r-1}, r = M-1 .. 1
        lead = torch.sqrt(torch.cumsum(f ** 2, dim=1))[:, : m - 1]  # [:, r-1] = ||f_0..f_{r-1}||
        lead = torch.flip(lead, dims=[1])  # column t -> ||f_0..f_{M-2-t}||
        other = torch.flip(f[:, 1:], dims=[1])  # column t -> f_{M-1-t}
        x = torch.full((f.shape[0], self.n_var), 0.5, dtype=torch.float64)
        x[:, : m - 1] = torch.atan2(other, lead) * (2.0 / math.pi)
        return x


class C1DTLZ1(Domain):
    """C1-DTLZ1 (Jain & Deb 2014): DTLZ1 with one linear constraint, a type-1 constrained problem.

    Objectives "f1".."fM" (minimize); ``n_var`` defaults to ``n_obj + 4`` (k = 5), in [0, 1].
    Constraint "c1" has value ``c(x) = 1 - f_M / 0.6 - sum_{i<M} f_i / 0.5`` and is feasible
    when ``c(x) >= 0``, as in the paper. It cuts off a band of objective space well above
    the front but leaves the whole DTLZ1 front ``sum f = 0.5`` feasible (there ``c = f_M / 3``).
    Reference point 0.6 per objective: the nadir is (0.5, ..., 0.5), and 0.1 beyond it is the
    same absolute margin as ZDT/DTLZ2's 1.1 for a unit nadir.
    """

    name = "c1dtlz1"
    REF = 0.6

    def __init__(self, n_obj: int = 3, n_var: int | None = None) -> None:
        n_obj, self.n_var = _check_sizes(n_obj, n_var, k=5)
        super().__init__(MixedSpace.box(self.n_var),
                         [Objective(f"f{i + 1}", "minimize", ref=self.REF) for i in range(n_obj)],
                         [Constraint("c1", bound=0.0, sense=">=")])

    def evaluate(self, x: torch.Tensor) -> torch.Tensor:
        """Objectives then the constraint value: ``[n, n_obj + 1]`` (float64, on ``x``'s device)."""
        x = as_batch(x, self.n_var)
        m = self.n_obj
        pos, dist = x[:, : m - 1], x[:, m - 1:] - 0.5
        k = dist.shape[1]
        g = 100.0 * (k + (dist ** 2 - torch.cos(20.0 * math.pi * dist)).sum(dim=1, keepdim=True))
        f = 0.5 * (1.0 + g) * _spread_products(pos, 1.0 - pos)
        c = 1.0 - f[:, -1:] / 0.6 - f[:, :-1].sum(dim=1, keepdim=True) / 0.5
        return torch.cat([f, c], dim=1)

    def pareto_front(self, n: int = 1000) -> torch.Tensor:
        """Feasible points of the hyperplane ``sum f = 0.5`` on a Das-Dennis lattice: ``[m, n_obj]`` (CPU)."""
        f = 0.5 * das_dennis(self.n_obj, n)
        c = 1.0 - f[:, -1] / 0.6 - f[:, :-1].sum(dim=1) / 0.5
        return f[c >= -1e-12]  # all of it, in fact (c = f_M / 3 >= 0); kept as a check

    def pareto_set(self, n: int = 1000) -> torch.Tensor:
        """Designs ``[m, n_var]`` mapping onto ``pareto_front(n)``: positions inverted, distance variables 0.5.

        With S_t = sum_{i <= M-2-t} f_i = 0.5 prod_{j <= t} x_j, position t is S_t / (S_t + f_{M-1-t}).
        """
        f = self.pareto_front(n)
        m = self.n_obj
        lead = torch.flip(torch.cumsum(f, dim=1)[:, : m - 1], dims=[1])  # column t -> S_t
        other = torch.flip(f[:, 1:], dims=[1])  # column t -> f_{M-1-t}
        total = lead + other
        pos = torch.where(total > 0, lead / torch.where(total > 0, total, torch.ones_like(total)),
                          torch.zeros_like(total))
        x = torch.full((f.shape[0], self.n_var), 0.5, dtype=torch.float64)
        x[:, : m - 1] = pos
        return x
