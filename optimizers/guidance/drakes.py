"""DRAKES: reward fine-tuning of a diffusion prior by back-propagating through its own sampling
trajectories (the last K steps relaxed: Gumbel-softmax on a masked prior, reparameterized on a
Gaussian one), with a KL penalty to the pretrained model so that designs stay natural."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch

from workbench.generative import Correction, MaskedDiffusion, Partial
from workbench.optimizer import Problem

from .base import PriorSampler, correcting
from .swaps import Candidates, swap_surrogate


class DRAKES(PriorSampler):
    """Fine-tunes a copy of the prior on first use, then samples from it.

    One fine-tuning iteration: sample ``train_batch`` trajectories of ``steps`` reverse
    steps from the model being tuned; the first ``steps - truncate`` are hard samples
    without gradient, the last ``truncate`` are relaxed (the prior's ``relaxed_step``:
    Gumbel-softmax at ``temperature`` on a masked prior, the reparameterized Gaussian step
    on a Gaussian one), so the reward of the final soft design is differentiable
    (``Domain.evaluate_soft``). Loss = ``-mean reward + kl_weight * KL(tuned || pretrained)``
    over the trajectory: at each step the KL of the two models' step distributions (the
    prior's ``step_kl``); the relaxed steps are counted exactly, the hard ones estimated from
    ``kl_samples`` random steps. ``kl_weight = 0`` switches the
    penalty off (to show reward hacking). The tuned weights are part of the optimizer
    state, so a resumed study does not tune again.

    ``straight_through=True`` (masked priors) makes every relaxed step's draw the one-hot argmax
    of its Gumbel-softmax (by the Gumbel-max trick an exact draw from the step) and passes the
    gradient through the relaxed probabilities. The trajectories the model is tuned on are then
    distributed as its own samples, and the reward scores hard designs: without it the denoiser
    reads soft states it never sees when sampling, and rewards that a fractional design can game
    (a layout element half present halves its pairwise overlaps) are gamed. (Layouts: only with
    it did DRAKES lower the overlap, docs/layouts.md.)

    ``estimator="swaps"`` (with ``straight_through``) back-propagates the exact single-token swap gains of the final
    design instead of the reward's derivative there (``swaps.swap_surrogate``): the gradient on token ``v`` at position
    ``i`` is ``reward(design with i := v) - reward(design)``. ``swap_tokens`` limits the swaps tried: bool ``[L, V]``,
    or a function of the final tokens ``[n, L] -> [n, L, V]`` (``swaps.swap_gains``); each costs one reward evaluation,
    in chunks of ``swap_chunk``. Why: the linear estimate points past rewards whose optimum sits at one exact token
    (layout alignment, docs/layouts.md).

    ``budget`` (a relative drop, e.g. 0.03): every ``check_every`` iterations the tuned model's naturalness (by
    default the prior's ELBO log-likelihood of ``check_batch`` samples; or ``naturalness(x)``) is compared with the
    pretrained model's; weights that drop more are rolled back and the KL weight grows by ``kl_growth``. With
    ``confidence`` (e.g. 0.95), a check passes only if the drop's one-sided upper confidence bound is within the
    budget: the standard errors of both means widen it. It needs per-design values (the default log-likelihood, or
    a ``naturalness`` that returns ``[designs, k]``); set-level measures (``[k]``) are compared as they are. Why:
    a mean over a few hundred designs moves by about as much as a 3 % budget (molecules: 14 nats per-design spread
    against a 1.1 nats budget), so plain comparisons keep the check that was lucky, not the weights that hold.
    """

    name = "drakes"

    def __init__(self, iterations: int = 200, train_batch: int = 32, truncate: int = 50, kl_weight: float = 1e-3,
                 temperature: float = 1.0, lr: float = 1e-4, kl_samples: int = 8, steps: int = 128,
                 weights: Sequence[float] | None = None, scalarization: str = "sum", batch_size: int = 64,
                 condition: int | Sequence[int] | None = None, partial: Partial | None = None,
                 corrector: Correction | None = None,
                 budget: float | None = None, naturalness: Callable[[torch.Tensor], Any] | None = None,
                 check_every: int = 10, check_batch: int = 128, check_samples: int = 8, kl_growth: float = 2.0,
                 confidence: float | None = None, straight_through: bool = False, estimator: str = "relaxed",
                 swap_tokens: Candidates = None, swap_chunk: int = 4096) -> None:
        super().__init__(steps, weights, scalarization, batch_size, condition, partial, corrector)
        if budget is not None and not budget >= 0:
            raise ValueError(f"budget is a relative drop in naturalness >= 0 (or None for no budget), got {budget}")
        if check_every < 1 or check_batch < 2 or check_samples < 1 or kl_growth < 1:
            raise ValueError("need check_every >= 1, check_batch >= 2, check_samples >= 1 and kl_growth >= 1")
        if confidence is not None and not 0.5 <= confidence < 1:
            raise ValueError(f"confidence is a one-sided level in [0.5, 1) (or None for plain means), got {confidence}")
        self.budget = None if budget is None else float(budget)
        self.confidence = None if confidence is None else float(confidence)
        self.naturalness = naturalness
        self.check_every, self.check_batch = int(check_every), int(check_batch)
        self.check_samples, self.kl_growth = int(check_samples), float(kl_growth)
        if iterations < 0 or train_batch < 1 or not 1 <= truncate <= steps:
            raise ValueError(f"need iterations >= 0, train_batch >= 1 and 1 <= truncate <= steps; got "
                             f"{iterations}, {train_batch}, {truncate} (steps {steps})")
        if kl_weight < 0 or temperature <= 0 or lr <= 0 or kl_samples < 0:
            raise ValueError("kl_weight and kl_samples must be >= 0, temperature and lr > 0")
        self.iterations = int(iterations)
        self.train_batch = int(train_batch)
        self.truncate = int(truncate)
        self.kl_weight = float(kl_weight)
        self.kl_now = self.kl_weight  # the weight in use: the budget raises it, the constructor's stays as given
        self.temperature = float(temperature)
        self.lr = float(lr)
        self.kl_samples = int(kl_samples)
        self.straight_through = bool(straight_through)
        if estimator not in ("relaxed", "swaps"):
            raise ValueError(f"estimator must be 'relaxed' or 'swaps', got {estimator!r}")
        if estimator == "swaps" and not self.straight_through:
            raise ValueError("estimator='swaps' scores one-hot designs: it needs straight_through=True")
        if swap_chunk < 1:
            raise ValueError(f"swap_chunk must be >= 1, got {swap_chunk}")
        self.estimator = estimator
        self.swap_tokens = swap_tokens
        self.swap_chunk = int(swap_chunk)

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        if problem.evaluate_soft is None:
            raise ValueError("DRAKES needs a differentiable reward: the domain must implement evaluate_soft()")
        if self.straight_through and not isinstance(self.prior, MaskedDiffusion):
            raise ValueError("straight_through applies to masked (discrete) priors; "
                             f"this prior is a {type(self.prior).__name__}")
        self.tuned = None
        self.kl_now = self.kl_weight
        self.history: list[dict[str, float]] = []
        self.checks: list[dict[str, Any]] = []

    # -------------------------------------------------------------- training
    def _iteration(self, optimizer: torch.optim.Optimizer) -> dict[str, float]:
        model, grid, b, partial = self.tuned, self.prior.timesteps(self.steps), self.train_batch, self.partial
        hard_steps = self.steps - self.truncate
        condition = self._condition(b)
        x = model.initial(b, self.generator, partial)
        states = []
        with torch.no_grad():
            for i in range(hard_steps):
                states.append(x)
                x = model.step(x, grid[i], grid[i + 1], condition, partial, generator=self.generator).sample(
                    generator=self.generator)
        xs = model.relax(x)
        kl = torch.zeros(b, device=x.device)
        for i in range(hard_steps, self.steps):
            t, s = grid[i], grid[i + 1]
            x_next, estimate = model.relaxed_step(xs, float(t), float(s), self.temperature, self.generator,
                                                  condition, partial)
            if self.kl_now > 0:
                kl = kl + model.step_kl(estimate, self.prior, xs, t, s, condition, partial)
            if self.straight_through:  # the argmax of the Gumbel-softmax is an exact draw (Gumbel-max)
                x_next = torch.nn.functional.one_hot(x_next.argmax(-1), x_next.shape[-1]).to(x_next.dtype) \
                    + x_next - x_next.detach()
            xs = x_next
        if self.kl_now > 0 and hard_steps > 0 and self.kl_samples > 0:
            picks = torch.randint(0, hard_steps, (self.kl_samples,), generator=self.generator,
                                  device=self.generator.device).tolist()
            for i in picks:
                xt = model.relax(states[i])
                estimate = model.estimate(xt, grid[i], condition, partial)
                kl = kl + (hard_steps / self.kl_samples) * model.step_kl(estimate, self.prior, xt, grid[i], grid[i + 1],
                                                                        condition, partial)
        design = model.relaxed_design(xs)  # [b, L, V]
        if self.estimator == "swaps":
            reward = swap_surrogate(self.reward.soft, design, self.swap_tokens, self.swap_chunk)
        else:
            reward = self.reward.soft(design)
        loss = -reward.mean() + self.kl_now * kl.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        finite = bool(torch.isfinite(norm))
        if finite:  # a NaN or infinite gradient (e.g. a reward's at a degenerate relaxed design) is not applied
            optimizer.step()
        return {"reward": float(reward.detach().mean()), "kl": float(kl.detach().mean()), "loss": float(loss.detach()),
                "skipped": float(not finite)}

    def finetune(self) -> list[dict[str, float]]:
        """Run the fine-tuning iterations (once); returns the per-iteration reward / KL history."""
        self.tuned = self.prior.clone()
        for p in self.tuned.parameters():
            p.requires_grad_(True)
        self.tuned.eval()  # no dropout: the trajectory and its gradient come from the same network
        optimizer = torch.optim.Adam(self.tuned.parameters(), lr=self.lr)
        if self.budget is not None:
            self._baseline = self._naturalness(self.prior)
            self._kept = copy.deepcopy(self.tuned.denoiser.state_dict())
        with torch.enable_grad():
            for i in range(self.iterations):
                self.history.append(self._iteration(optimizer))
                if self.budget is not None and ((i + 1) % self.check_every == 0 or i + 1 == self.iterations):
                    if not self._check(i + 1):
                        optimizer = torch.optim.Adam(self.tuned.parameters(), lr=self.lr)
        if self.budget is not None:
            self.tuned.denoiser.load_state_dict(self._kept)
        for p in self.tuned.parameters():
            p.requires_grad_(False)
        self._sync_counts(self.prior, self.tuned)
        return self.history

    # ------------------------------------------------------ naturalness budget
    @torch.no_grad()
    def _naturalness(self, model: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Naturalness ``[k]`` of ``check_batch`` designs sampled from ``model``, and its standard error ``[k]``
        (zero for set-level measures)."""
        x = model.sample(self.check_batch, self.steps, self.generator, condition=self._condition(self.check_batch),
                         partial=self.partial)
        if self.naturalness is None:
            value = self.prior.log_likelihood(x, samples=self.check_samples, generator=self.generator).unsqueeze(-1)
        else:
            value = self.naturalness(x)
        value = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"the naturalness measure returned non-finite values {value.flatten()[:8].tolist()}")
        if value.dim() == 2:  # per-design values [designs, k]
            if len(value) < 2:
                raise ValueError("per-design naturalness values need at least 2 designs")
            return value.mean(0), value.std(0) / len(value) ** 0.5
        value = value.reshape(-1)
        return value, torch.zeros_like(value)

    def _check(self, iteration: int) -> bool:
        """Measure the tuned model; keep its weights if within the budget, else roll back and raise the KL weight."""
        value, error = self._naturalness(self.tuned)
        baseline, baseline_error = self._baseline
        scale = baseline.abs().clamp_min(1e-12)
        drop = (baseline - value) / scale
        bound = drop
        if self.confidence is not None:
            z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(self.confidence)))
            bound = drop + z * (error ** 2 + baseline_error ** 2).sqrt() / scale
        within = bool((bound <= self.budget).all())
        self.checks.append({"iteration": iteration, "value": value.tolist(), "baseline": baseline.tolist(),
                            "drop": drop.tolist(), "drop_bound": bound.tolist(), "within": within,
                            "kl_weight": self.kl_now})
        if within:
            self._kept = copy.deepcopy(self.tuned.denoiser.state_dict())
        else:
            self.tuned.denoiser.load_state_dict(self._kept)
            self.kl_now *= self.kl_growth
        return within

    # --------------------------------------------------------------- sampling
    def ask(self, n: int) -> torch.Tensor:
        if self.tuned is None:
            self.finetune()
        with torch.no_grad(), correcting(self.tuned, self.corrector):
            x = self.tuned.sample(n, self.steps, self.generator, condition=self._condition(n), partial=self.partial)
        self._sync_counts(self.tuned)
        return x

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.tuned is not None:
            state["tuned"] = {k: v.detach().cpu() for k, v in self.tuned.denoiser.state_dict().items()}
            keys = self.history[0] if self.history else ()
            state["history"] = {key: [h[key] for h in self.history] for key in keys}
            state["checks"] = list(self.checks)
            state["kl_weight"] = self.kl_now
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "tuned" in state:
            self.tuned = self.prior.clone()
            self.tuned.denoiser.load_state_dict({k: v.to(self.device) for k, v in state["tuned"].items()})
            self.tuned.eval()
            self._sync_counts(self.tuned)
            h = state["history"]
            self.history = [dict(zip(h, row)) for row in zip(*h.values())]
            self.checks = list(state.get("checks", []))
            self.kl_now = float(state.get("kl_weight", self.kl_weight))


def budget_summary(state: dict[str, Any]) -> dict[str, float]:
    """The naturalness-budget checks in a stored DRAKES state (``state_dict()``): how many ran, how many kept the
    budget, and the final KL weight (NaN when the state holds none)."""
    checks = state.get("checks", [])
    return {"budget_checks": len(checks), "budget_checks_within": sum(bool(c["within"]) for c in checks),
            "kl_weight_final": float(state.get("kl_weight", float("nan")))}
