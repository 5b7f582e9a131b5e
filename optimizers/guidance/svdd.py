"""Soft value-based decoding (SVDD): at each reverse step, draw M candidates from the prior's
step distribution and keep one with probability proportional to exp(value / alpha)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from workbench.generative import Correction, Partial
from workbench.generative.protocol import expand_condition
from workbench.optimizer import Problem

from .base import PriorSampler
from .value import build_value_network, fit_value_network

VALUES = ("pm", "mc")


class SVDD(PriorSampler):
    """SVDD-PM (``value="pm"``): the value of a candidate is the reward of its denoised
    estimate x0_hat (one denoiser call and one reward call per step for all M x n
    candidates); on a Gaussian prior the candidates are M draws of the ancestral step
    (the prior's ``eta`` must be > 0 for them to differ). SVDD-MC (``value="mc"``): a time-conditioned value network regressed on
    rewards of ``rollouts`` prior samples, trained once on first use and stored in the
    study's optimizer state. ``alpha = 0`` keeps the best candidate (argmax).
    """

    name = "svdd"

    def __init__(self, n_candidates: int = 20, alpha: float = 0.0, value: str = "pm", steps: int = 128,
                 weights: Sequence[float] | None = None, scalarization: str = "sum", batch_size: int = 64,
                 rollouts: int = 2048, value_epochs: int = 20, value_lr: float = 1e-3,
                 condition: int | Sequence[int] | None = None, partial: Partial | None = None,
                 corrector: Correction | None = None) -> None:
        super().__init__(steps, weights, scalarization, batch_size, condition, partial, corrector)
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if value not in VALUES:
            raise ValueError(f"value must be one of {VALUES}, got {value!r}")
        self.n_candidates = int(n_candidates)
        self.alpha = float(alpha)
        self.value = value
        self.rollouts = int(rollouts)
        self.value_epochs = int(value_epochs)
        self.value_lr = float(value_lr)

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        self.value_net: torch.nn.Module | None = None
        self.value_history: list[float] = []

    # ----------------------------------------------------------- value models
    def _values(self, candidates: torch.Tensor, s: torch.Tensor, last: bool,
                condition: torch.Tensor | None) -> torch.Tensor:
        """Soft values of candidate states ``[k, ...]`` at time ``s`` -> ``[k]``."""
        if last:
            return self.reward(self.prior.to_design(candidates, self.partial))
        if self.value == "pm":
            return self.reward(self.prior.denoise(candidates, s, condition, self.partial))
        v = self.value_net(self.prior.features(candidates), s.expand(len(candidates)))
        return v.double() * self._scale + self._shift

    def _new_value_network(self) -> torch.nn.Module:
        """A fresh value network whose initial weights come from the sampler's generator (same seed, same net)."""
        example = self.prior.features(self.prior.initial(1, torch.Generator(self.device).manual_seed(0)))
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=self.generator, device=self.generator.device))
        with torch.random.fork_rng(devices=[]):  # the CPU generator that nn.Module initialization draws from
            torch.manual_seed(seed)
            net = build_value_network(example, sequence=self.prior.kind == "masked")
        return net.to(self.device)

    def _train_value_network(self) -> None:
        """Roll out the prior, score the final sequences, regress v(x_t, t) on those rewards."""
        prior, grid, n = self.prior, self.prior.timesteps(self.steps), self.rollouts
        keep = torch.arange(0, self.steps, max(1, self.steps // 32), device=grid.device)  # states kept per rollout
        states, times = [], []
        condition = self._condition(n)
        x = prior.initial(n, self.generator, self.partial)
        for i in range(self.steps):
            x = prior.step(x, grid[i], grid[i + 1], condition, self.partial, generator=self.generator).sample(
                generator=self.generator)
            if i + 1 < self.steps and bool((keep == i).any()):
                states.append(x.clone() if x.is_floating_point() else x.to(torch.uint8))
                times.append(grid[i + 1].expand(n))
        rewards = self.reward(prior.to_design(x, self.partial)).float()
        self._shift, self._scale = float(rewards.mean()), float(rewards.std().clamp_min(1e-6))
        targets = ((rewards - self._shift) / self._scale).repeat(len(states))
        self.value_net = self._new_value_network()
        with torch.enable_grad():
            self.value_history = fit_value_network(self.value_net, torch.cat(states), torch.cat(times), targets,
                                                   prior.features, self.value_epochs, 256, self.value_lr,
                                                   self.generator)

    # --------------------------------------------------------------- sampling
    def generate(self, n: int) -> torch.Tensor:
        if self.value == "mc" and self.value_net is None:
            self._train_value_network()
        prior, grid, m = self.prior, self.prior.timesteps(self.steps), self.n_candidates
        x = prior.initial(n, self.generator, self.partial)
        condition = self._condition(n)
        candidate_condition = expand_condition(condition, m * n)
        rows = torch.arange(n, device=x.device)
        for i in range(self.steps):
            s = grid[i + 1]
            step = prior.step(x, grid[i], s, condition, self.partial, generator=self.generator)
            candidates = step.sample(m, self.generator)  # [m, n, ...]
            flat = candidates.reshape(m * n, *candidates.shape[2:])
            values = self._values(flat, s, i == self.steps - 1, candidate_condition).reshape(m, n)
            if self.alpha == 0.0:
                choice = values.argmax(dim=0)
            else:
                probs = torch.softmax(values / self.alpha, dim=0).T  # [n, m]
                choice = torch.multinomial(probs, 1, generator=self.generator).squeeze(1)
            x = candidates[choice, rows]
        return prior.to_design(x, self.partial)

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.value_net is not None:
            state["value_net"] = {k: v.detach().cpu() for k, v in self.value_net.state_dict().items()}
            state["value_scale"] = [self._shift, self._scale]
            state["value_history"] = list(self.value_history)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "value_net" in state:  # built before the generator's state is restored: building draws from it
            self.value_net = self._new_value_network()
        super().load_state_dict(state)
        if "value_net" in state:
            self.value_net.load_state_dict({k: v.to(self.device) for k, v in state["value_net"].items()})
            self.value_net.eval()
            self._shift, self._scale = (float(v) for v in state["value_scale"])
            self.value_history = [float(v) for v in state["value_history"]]
