"""GaussianMixture2D: points in the plane whose prior is a ring of Gaussian modes.

The data are draws from ``modes`` isotropic Gaussians evenly spaced on a circle; the prior is a
small MLP Gaussian-diffusion model trained on them in seconds on a CPU. Objectives (maximized by
default): ``"target"``, minus the distance to the centre of mode ``target_mode``, so a reward-guided
sampler should move the samples' mass to that mode while staying on the data; and the coordinates
``"x"``, ``"y"`` (a two-objective trade-off around the ring; unbounded, so greedy guidance can also
leave the data towards the box's edge). The continuous counterpart of :class:`PlantedMotif`, to
check that the samplers are generic over prior kinds.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import torch

from workbench.domain import Domain
from workbench.generative import GaussianDiffusion, train_prior
from workbench.spaces import TensorSpace

OBJECTIVES = ("target", "x", "y")
_PRIORS: dict[tuple, GaussianDiffusion] = {}  # trained priors, shared by instances with the same data


class GaussianMixture2D(Domain):
    """Designs ``[n, 2]`` in ``[-bound, bound]^2``; objectives among ``"target"``, ``"x"``, ``"y"`` (names or
    (name, direction) tuples). Mode ``k`` sits at angle ``2 pi k / modes`` on a circle of ``radius``,
    so mode 0 is the one with the largest x."""

    name = "gaussian_mixture_2d"

    def __init__(self, objectives: tuple = ("target",), target_mode: int = 0, modes: int = 8, radius: float = 3.0,
                 std: float = 0.3, bound: float = 4.5, n_data: int = 8000, seed: int = 0,
                 prior_steps: int = 1500) -> None:
        names = [o if isinstance(o, str) else o[0] for o in objectives]
        unknown = [o for o in names if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objectives {unknown}; choose from {list(OBJECTIVES)}")
        if modes < 1 or radius <= 0 or std <= 0 or bound <= radius + 3 * std:
            raise ValueError(f"need modes >= 1, radius > 0, std > 0 and bound > radius + 3 std; got {modes}, {radius}, "
                             f"{std}, {bound}")
        super().__init__(TensorSpace((2,), -bound, bound),
                         [o if not isinstance(o, str) else (o, "maximize") for o in objectives])
        if not 0 <= target_mode < modes:
            raise ValueError(f"target_mode must be in 0..{modes - 1}, got {target_mode}")
        self.modes, self.radius, self.std, self.bound = int(modes), float(radius), float(std), float(bound)
        self.target_mode = int(target_mode)
        self.n_data, self.seed, self.prior_steps = int(n_data), int(seed), int(prior_steps)

    def centres(self) -> torch.Tensor:
        """Mode centres ``[modes, 2]``."""
        angle = 2 * math.pi * torch.arange(self.modes, dtype=torch.float32) / self.modes
        return self.radius * torch.stack([angle.cos(), angle.sin()], dim=1)

    def points(self) -> torch.Tensor:
        """The data set ``[n_data, 2]`` (seeded; clipped to the box)."""
        g = torch.Generator().manual_seed(self.seed)
        which = torch.randint(0, self.modes, (self.n_data,), generator=g)
        x = self.centres()[which] + self.std * torch.randn((self.n_data, 2), generator=g)
        return x.clamp(-self.bound, self.bound)

    def nearest_mode(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the closest mode centre for each point ``[n]``."""
        return torch.cdist(x.float(), self.centres().to(x.device)).argmin(dim=1)

    def dataset(self) -> pd.DataFrame:
        return pd.DataFrame(self.points().numpy(), columns=["x", "y"])

    def prior(self) -> GaussianDiffusion:
        """An MLP Gaussian-diffusion prior trained on :meth:`points` (cached per data configuration)."""
        key = (self.modes, self.radius, self.std, self.bound, self.n_data, self.seed, self.prior_steps)
        if key not in _PRIORS:
            torch.manual_seed(self.seed)  # weight initialization
            model = GaussianDiffusion.for_space(self.space, hidden=128, layers=3, time_dim=32)
            data = self.points()
            train_prior(model, data[:-500], data[-500:], steps=self.prior_steps, batch_size=256, lr=2e-3, warmup=100,
                        ema=0.99, seed=self.seed, eval_every=self.prior_steps, log=None)
            _PRIORS[key] = model
        return _PRIORS[key]

    def _scores(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"expected points [n, 2], got shape {list(x.shape)}")
        centre = self.centres()[self.target_mode].to(x.device, x.dtype)
        out = {"target": -(x - centre).pow(2).sum(1).add(1e-12).sqrt(), "x": x[:, 0], "y": x[:, 1]}
        return {o.name: out[o.name] for o in self.objectives}

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v.double() for k, v in self._scores(x).items()}

    def evaluate_soft(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._scores(x)

    def render(self, x: torch.Tensor, ax: Any = None) -> Any:
        """Scatter of the points over the data's modes."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(4, 4))[1]
        data = self.points()
        ax.scatter(data[:, 0], data[:, 1], s=2, c="0.8", label="data")
        x = x.detach().cpu()
        ax.scatter(x[:, 0], x[:, 1], s=6, c="C0", label="designs")
        ax.set_xlim(-self.bound, self.bound)
        ax.set_ylim(-self.bound, self.bound)
        ax.set_aspect("equal")
        ax.legend(loc="lower left", fontsize=7)
        return ax

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["settings"] = {"target_mode": self.target_mode, "modes": self.modes, "radius": self.radius, "std": self.std, "n_data": self.n_data,
                           "seed": self.seed}
        return out
