"""Shared machinery of samplers over a masked-diffusion prior: prior checks, rewards, call counters."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import torch

from workbench.optimizer import Optimizer, Problem
from workbench.spaces import SequenceSpace

from .reward import Reward

COUNTERS = ("denoiser_calls", "denoiser_sequences", "reward_calls", "reward_sequences", "reward_seconds")


class PriorSampler(Optimizer):
    """Base of the reward-guided samplers: ``ask(n)`` generates ``n`` sequences from the prior.

    The domain must provide ``prior()`` (a :class:`~workbench.generative.MaskedDiffusion`
    over its sequence space). The reward is a scalarization of the study's objectives
    (``weights``, ``scalarization``; see :class:`Reward`). Denoiser and reward calls are
    counted separately and stored with the study; ``tell`` learns nothing (the stored
    evaluations are the final designs).
    """

    name = "prior"

    def __init__(self, steps: int = 128, weights: Sequence[float] | None = None, scalarization: str = "sum",
                 batch_size: int = 64) -> None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.steps = int(steps)
        self.weights = None if weights is None else [float(w) for w in weights]
        self.scalarization = scalarization
        self.batch_size = int(batch_size)

    @property
    def default_batch_size(self) -> int:
        return self.batch_size

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        space = problem.space
        if not isinstance(space, SequenceSpace):
            raise ValueError(f"{type(self).__name__} needs a sequence space, got {type(space).__name__}")
        prior = problem.prior
        if prior is None:
            raise ValueError(f"{type(self).__name__} needs a generative prior: the domain's prior() returned None")
        if prior.length != space.length or prior.vocab_size < space.vocab_size:
            raise ValueError(f"the prior generates length {prior.length} over {prior.vocab_size} tokens; the space "
                             f"has length {space.length} over {space.vocab_size}")
        self.prior = prior.to(problem.device).eval()
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.reward = Reward(problem, self.weights, self.scalarization)
        self.counts: dict[str, float] = dict.fromkeys(COUNTERS, 0)
        # the call counts already folded into ``counts``, per model and for the reward: the prior is shared by
        # every study of its domain, so only the calls made since this sampler started count
        self._seen: weakref.WeakKeyDictionary[Any, tuple] = weakref.WeakKeyDictionary()
        self._seen[self.prior] = (self.prior.calls, self.prior.rows)

    def _sync_counts(self, *models: Any) -> None:
        """Fold the denoiser calls of ``models`` (default: the prior) and the reward's calls into ``counts``."""
        models = models or (self.prior,)
        for model in models:
            calls, rows = self._seen.get(model, (0, 0))
            self.counts["denoiser_calls"] += model.calls - calls
            self.counts["denoiser_sequences"] += model.rows - rows
            self._seen[model] = (model.calls, model.rows)
        calls, sequences, seconds = self._seen.get(self.reward, (0, 0, 0.0))
        self.counts["reward_calls"] += self.reward.calls - calls
        self.counts["reward_sequences"] += self.reward.sequences - sequences
        self.counts["reward_seconds"] += self.reward.seconds - seconds
        self._seen[self.reward] = (self.reward.calls, self.reward.sequences, self.reward.seconds)

    def counters(self) -> dict[str, float]:
        return dict(self.counts)

    def tell(self, x: torch.Tensor, evaluation: Any) -> None:
        """Samplers draw each batch afresh; the stored evaluations are their final designs."""

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.counts = {k: (float if k == "reward_seconds" else int)(state["counts"][k]) for k in COUNTERS}

    def ask(self, n: int) -> torch.Tensor:
        with torch.no_grad():
            x = self.generate(n)
        self._sync_counts()
        return x

    def generate(self, n: int) -> torch.Tensor:
        """``n`` sequences ``[n, L]`` (subclasses implement the guidance)."""
        raise NotImplementedError


class Pretrained(PriorSampler):
    """Plain ancestral sampling from the prior: the unguided baseline."""

    name = "pretrained"

    def generate(self, n: int) -> torch.Tensor:
        return self.prior.sample(n, self.steps, self.generator)
