"""The counterfactual search as a Domain: any optimizer can run it, any storage can keep it.

:class:`CounterfactualDomain` wraps the user's domain. It has the same space; its objectives are
the quality of a counterfactual (``gower`` distance to the query, number of ``changed`` features,
``manifold`` distance to the k nearest real designs) plus the targets to minimize or maximize; its
constraints are the range and class targets as violations (``<= 0`` met) and, where features are
frozen, how far frozen features move beyond ``tolerance`` (so optimizers that cannot hit a real value
exactly can still satisfy it; MCD keeps frozen features exactly at the query's value). One ``evaluate`` calls the wrapped domain once for
the whole batch and computes the distances on the batch's device.

The query, the frozen mask and seed designs from the data set reach optimizers through
:meth:`optimizer_hints` (``Problem.hints``); an optimizer that ignores them still solves the
problem, since frozen features are also a constraint.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from ..domain import Domain, split_outputs
from ..objectives import Constraint, Objective
from ..spaces import MixedSpace
from .distances import GowerMetric
from .targets import Target

QUALITY = ("gower", "changed", "manifold")
FROZEN = "frozen_changed"


def target_column(target: Target) -> str:
    """Name of a target's objective or constraint in the counterfactual domain."""
    return f"target:{target.name}"


class CounterfactualDomain(Domain):
    """Counterfactuals of ``query: [d]`` on ``domain`` reaching ``targets``.

    ``data: [m, d]`` are encoded real designs (the manifold); ``frozen: [d]`` bool marks features
    that must keep the query's value; ``k_neighbors`` the neighbours of the manifold distance;
    ``tolerance`` the fraction of a feature's range below which it counts as unchanged;
    ``n_seeds`` how many data rows are offered to optimizers as starting designs (half the
    nearest to the query, half drawn at random with ``seed``).
    """

    def __init__(self, domain: Domain, query: torch.Tensor, targets: list[Target], data: torch.Tensor,
                 frozen: torch.Tensor | None = None, k_neighbors: int = 3, tolerance: float = 0.01,
                 device: torch.device | str = "cpu", seed: int = 0, n_seeds: int = 256,
                 dataset_frame: pd.DataFrame | None = None) -> None:
        if not isinstance(domain.space, MixedSpace):
            raise TypeError(f"counterfactuals need a MixedSpace domain, not {type(domain.space).__name__}")
        if k_neighbors < 1:
            raise ValueError(f"k_neighbors must be >= 1, got {k_neighbors}")
        space = domain.space
        d = space.dim
        self.inner = domain
        self.targets = list(targets)
        self.query = query.detach().to("cpu", torch.float64).reshape(d)
        self.frozen = (torch.zeros(d, dtype=torch.bool) if frozen is None else frozen.detach().cpu().bool().reshape(d))
        self.k_neighbors = int(k_neighbors)
        self.device = torch.device(device)
        self.metric = GowerMetric(space, data, tolerance=tolerance, device=self.device)
        self.data_embedded = self.metric.embed_chunked(data.to(self.device))  # [m, e] on the device
        self._on: dict[torch.device, tuple[GowerMetric, torch.Tensor]] = {self.device: (self.metric, self.data_embedded)}
        self._dataset_frame = dataset_frame
        self.seeds = self._seed_designs(data, n_seeds, seed)

        objectives = [Objective(q) for q in QUALITY]
        objectives += [Objective(target_column(t), t.kind) for t in self.targets if not t.is_constraint]
        constraints = [Constraint(target_column(t), 0.0, "<=") for t in self.targets if t.is_constraint]
        if bool(self.frozen.any()):
            constraints.append(Constraint(FROZEN, 0.0, "<="))
        super().__init__(space, objectives, constraints, name=f"counterfactuals-{domain.name}")

    # ----------------------------------------------------------------- seeds
    def _seed_designs(self, data: torch.Tensor, n_seeds: int, seed: int) -> torch.Tensor:
        """Up to ``n_seeds`` data rows: the nearest to the query and random ones, frozen genes set, repaired."""
        m = data.shape[0]
        if m == 0 or n_seeds <= 0:
            return torch.empty((0, self.inner.space.dim), dtype=torch.float64)
        near = self.metric.nearest(self.query.to(self.device), self.data_embedded, n_seeds // 2).cpu()
        g = torch.Generator().manual_seed(int(seed))
        far = torch.randint(0, m, (n_seeds - near.numel(),), generator=g)
        rows = data[torch.cat([near, far]).to(data.device)].detach().to("cpu", torch.float64)
        rows = torch.where(self.frozen, self.query, rows)
        return self.inner.space.repair(rows)

    # --------------------------------------------------------------- protocol
    def optimizer_hints(self) -> dict[str, Any]:
        return {"query": self.query.clone(), "frozen": self.frozen.clone(), "seeds": self.seeds.clone()}

    def dataset(self) -> pd.DataFrame | None:
        return self._dataset_frame

    def _metric_on(self, device: torch.device) -> tuple[GowerMetric, torch.Tensor]:
        """The metric and the embedded data on ``device`` (moved once, then cached)."""
        if device not in self._on:
            self._on[device] = (self.metric.to(device), self.data_embedded.to(device))
        return self._on[device]

    def quality(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """gower, changed (count) and manifold ``[n]`` of designs ``x: [n, d]``, on ``x``'s device."""
        x = x.to(torch.float64)
        metric, data = self._metric_on(x.device)
        q = self.query.to(x.device)
        return {"gower": metric.to_query(x, q), "changed": metric.changed(x, q),
                "manifold": metric.knn_mean(x, data, self.k_neighbors)}

    def target_values(self, f_inner: torch.Tensor, g_inner: torch.Tensor) -> list[torch.Tensor]:
        """The wrapped domain's value ``[n]`` of each target, in target order."""
        return [(f_inner if t.source == "objective" else g_inner)[:, t.index] for t in self.targets]

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        f_inner, g_inner = split_outputs(self.inner, self.inner.evaluate(x), n)
        values = [v.to(x.device) for v in self.target_values(f_inner, g_inner)]
        scores = self.quality(x)
        f = [scores[q] for q in QUALITY] + [v for t, v in zip(self.targets, values) if not t.is_constraint]
        g = [t.violation(v) for t, v in zip(self.targets, values) if t.is_constraint]
        if bool(self.frozen.any()):
            metric, _ = self._metric_on(x.device)
            g.append(metric.excess_change(x.to(torch.float64), self.query.to(x.device), self.frozen.to(x.device)))
        return torch.stack(f, dim=1), torch.stack(g, dim=1)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["counterfactual"] = {"of": self.inner.describe(), "query": self.query.tolist(),
                                 "frozen": [n for n, fz in zip(self.space.names, self.frozen.tolist()) if fz],
                                 "targets": [t.to_spec() for t in self.targets], "k_neighbors": self.k_neighbors,
                                 "tolerance": self.metric.tolerance, "data_rows": int(self.data_embedded.shape[0])}
        return out
