"""DRAKES: reward fine-tuning of a masked-diffusion prior by back-propagating through its own
sampling trajectories (the last K steps relaxed with Gumbel-softmax), with a KL penalty to the
pretrained model so that sequences stay natural."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from workbench.optimizer import Problem

from .base import PriorSampler


class DRAKES(PriorSampler):
    """Fine-tunes a copy of the prior on first use, then samples from it.

    One fine-tuning iteration: sample ``train_batch`` trajectories of ``steps`` reverse
    steps from the model being tuned; the first ``steps - truncate`` are hard samples
    without gradient, the last ``truncate`` are Gumbel-softmax relaxed (``temperature``);
    the reward of the final relaxed sequence is differentiable (``Domain.evaluate_soft``).
    Loss = ``-mean reward + kl_weight * KL(tuned || pretrained)`` over the trajectory: at
    each step the KL of the step distributions, ``(a_s - a_t)/(1 - a_t) * KL(p0_tuned ||
    p0_pretrained)`` summed over masked positions; the relaxed steps are counted exactly,
    the hard ones estimated from ``kl_samples`` random steps. ``kl_weight = 0`` switches the
    penalty off (to show reward hacking). The tuned weights are part of the optimizer
    state, so a resumed study does not tune again.
    """

    name = "drakes"

    def __init__(self, iterations: int = 200, train_batch: int = 32, truncate: int = 50, kl_weight: float = 1e-3,
                 temperature: float = 1.0, lr: float = 1e-4, kl_samples: int = 8, steps: int = 128,
                 weights: Sequence[float] | None = None, scalarization: str = "sum", batch_size: int = 64) -> None:
        super().__init__(steps, weights, scalarization, batch_size)
        if iterations < 0 or train_batch < 1 or not 1 <= truncate <= steps:
            raise ValueError(f"need iterations >= 0, train_batch >= 1 and 1 <= truncate <= steps; got "
                             f"{iterations}, {train_batch}, {truncate} (steps {steps})")
        if kl_weight < 0 or temperature <= 0 or lr <= 0 or kl_samples < 0:
            raise ValueError("kl_weight and kl_samples must be >= 0, temperature and lr > 0")
        self.iterations = int(iterations)
        self.train_batch = int(train_batch)
        self.truncate = int(truncate)
        self.kl_weight = float(kl_weight)
        self.temperature = float(temperature)
        self.lr = float(lr)
        self.kl_samples = int(kl_samples)

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        if problem.evaluate_soft is None:
            raise ValueError("DRAKES needs a differentiable reward: the domain must implement evaluate_soft()")
        self.tuned = None
        self.history: list[dict[str, float]] = []

    # -------------------------------------------------------------- training
    def _kl(self, tuned_p0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """KL between the tuned and pretrained step distributions at relaxed states ``xt [B, L, V + 1]`` -> ``[B]``."""
        with torch.no_grad():
            ref_p0 = self.prior.x0_probs(xt.detach(), t)
        unmask, _ = self.prior.schedule.reveal_chances(t, s)
        per_position = (tuned_p0 * (torch.log(tuned_p0.clamp_min(1e-12)) - torch.log(ref_p0.clamp_min(1e-12)))).sum(-1)
        masked = xt[..., self.prior.vocab_size]
        return unmask * (masked * per_position).sum(dim=1)

    def _iteration(self, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        model, grid, b, v = self.tuned, self.prior.timesteps(self.steps), self.train_batch, self.prior.vocab_size
        hard_steps = self.steps - self.truncate
        x = model.all_masked(b)
        states = []
        with torch.no_grad():
            for i in range(hard_steps):
                states.append(x)
                x = model.step(x, grid[i], grid[i + 1]).sample(generator=self.generator)
        xs = model.one_hot(x)
        kl = torch.zeros(b, device=x.device)
        for i in range(hard_steps, self.steps):
            t, s = grid[i], grid[i + 1]
            x_next, p0 = model.relaxed_step(xs, float(t), float(s), self.temperature, self.generator)
            if self.kl_weight > 0:
                kl = kl + self._kl(p0, xs, t, s)
            xs = x_next
        if self.kl_weight > 0 and hard_steps > 0 and self.kl_samples > 0:
            picks = torch.randint(0, hard_steps, (self.kl_samples,), generator=self.generator,
                                  device=self.generator.device).tolist()
            for i in picks:
                xt = model.one_hot(states[i])
                kl = kl + (hard_steps / self.kl_samples) * self._kl(model.x0_probs(xt, grid[i]), xt, grid[i], grid[i + 1])
        reward = self.reward.soft(xs[..., :v])
        loss = -reward.mean() + self.kl_weight * kl.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return {"reward": float(reward.detach().mean()), "kl": float(kl.detach().mean()), "loss": float(loss.detach())}

    def finetune(self) -> list[dict[str, float]]:
        """Run the fine-tuning iterations (once); returns the per-iteration reward / KL history."""
        self.tuned = self.prior.clone()
        for p in self.tuned.parameters():
            p.requires_grad_(True)
        self.tuned.eval()  # no dropout: the trajectory and its gradient come from the same network
        optimizer = torch.optim.Adam(self.tuned.parameters(), lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.iterations):
                self.history.append(self._iteration(optimizer))
        for p in self.tuned.parameters():
            p.requires_grad_(False)
        self._sync_counts(self.prior, self.tuned)
        return self.history

    # --------------------------------------------------------------- sampling
    def ask(self, n: int) -> torch.Tensor:
        if self.tuned is None:
            self.finetune()
        with torch.no_grad():
            x = self.tuned.sample(n, self.steps, self.generator)
        self._sync_counts(self.tuned)
        return x

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.tuned is not None:
            state["tuned"] = {k: v.detach().cpu() for k, v in self.tuned.denoiser.state_dict().items()}
            state["history"] = {key: [h[key] for h in self.history] for key in ("reward", "kl", "loss")}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "tuned" in state:
            self.tuned = self.prior.clone()
            self.tuned.denoiser.load_state_dict({k: v.to(self.device) for k, v in state["tuned"].items()})
            self.tuned.eval()
            self._sync_counts(self.tuned)
            h = state["history"]
            self.history = [dict(zip(("reward", "kl", "loss"), row)) for row in zip(h["reward"], h["kl"], h["loss"])]
