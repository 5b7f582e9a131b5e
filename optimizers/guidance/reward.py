"""Scalar rewards from a problem's objectives, for samplers that maximize one number."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from workbench.optimizer import Problem

SCALARIZATIONS = ("sum", "chebyshev")
AUGMENTATION = 0.05  # augmented Chebyshev: a small weighted sum keeps zero weights and ties informative


class Reward:
    """Reward ``r(x) [n]`` (higher is better) from the problem's objectives and constraints.

    - ``"sum"``: ``sum_i w_i y_i`` with ``y`` the objectives turned to maximization;
    - ``"chebyshev"``: augmented, ``min_i w_i (y_i - z_i) + 0.05 sum_i w_i (y_i - z_i)`` with
      ``z`` the reference point (the problem's ``ref_point`` where set, else 0), so each
      weight vector picks one point of a (possibly non-convex) Pareto front.
    Constraint violations subtract ``penalty * sum(max(g, 0))``; failed designs get
    ``failed_reward``. Counts reward calls and the sequences they scored.
    """

    def __init__(self, problem: Problem, weights: Sequence[float] | None = None, scalarization: str = "sum",
                 penalty: float = 10.0, failed_reward: float = -1e4) -> None:
        if scalarization not in SCALARIZATIONS:
            raise ValueError(f"scalarization must be one of {SCALARIZATIONS}, got {scalarization!r}")
        k = problem.n_obj
        weights = [1.0] * k if weights is None else [float(w) for w in weights]
        if len(weights) != k:
            raise ValueError(f"got {len(weights)} weights for {k} objectives "
                             f"({[o.name for o in problem.objectives]})")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be non-negative and not all zero, got {weights}")
        self.problem = problem
        self.weights = torch.tensor(weights, dtype=torch.float64, device=problem.device)
        self.scalarization = scalarization
        self.penalty = float(penalty)
        self.failed_reward = float(failed_reward)
        ref = problem.ref_point if problem.ref_point is not None else torch.zeros(k, dtype=torch.float64)
        self.reference = -ref.to(problem.device, torch.float64)  # in maximization terms
        self.calls = 0
        self.sequences = 0
        self.seconds = 0.0  # wall time inside reward calls (CUDA synchronized; soft calls: the forward pass)

    def _scalarize(self, f_min: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        y = -f_min
        if self.scalarization == "sum":
            r = (y * self.weights).sum(dim=1)
        else:
            gain = self.weights * (y - self.reference)
            r = gain.min(dim=1).values + AUGMENTATION * gain.sum(dim=1)
        if g.shape[1]:
            r = r - self.penalty * g.clamp_min(0).sum(dim=1)
        return r

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Designs ``[n, *shape]`` -> rewards ``[n]`` float64 on the problem's device (one evaluation call)."""
        if self.problem.evaluate is None:
            raise ValueError("this problem cannot score designs outside the study (Problem.evaluate is None)")
        started = _synced_clock(x.device)
        self.calls += 1
        self.sequences += int(x.shape[0])
        f, g, ok = self.problem.minimized(self.problem.evaluate(x))
        r = self._scalarize(torch.where(ok.unsqueeze(1), f, 0.0), torch.where(ok.unsqueeze(1), g, 0.0))
        r = torch.where(ok, r, torch.full_like(r, self.failed_reward))
        self.seconds += _synced_clock(x.device) - started
        return r

    def soft(self, probs: torch.Tensor) -> torch.Tensor:
        """Soft designs (relaxed sequences ``[n, L, V]``, continuous tensors ``[n, *shape]``) -> differentiable
        rewards ``[n]``."""
        started = _synced_clock(probs.device)
        self.calls += 1
        self.sequences += int(probs.shape[0])
        f, g = self.problem.minimized_soft(probs)
        r = self._scalarize(f, g)
        self.seconds += _synced_clock(probs.device) - started  # the forward pass; gradients are the caller's
        return r


def _synced_clock(device: torch.device) -> float:
    """Wall clock after the device's queued work is done (so CUDA timings are real)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
