"""Shared machinery of samplers over a generative prior: prior checks, conditions and partial designs,
rewards, call counters."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from workbench.generative import Correction, Partial, Prior
from workbench.optimizer import Optimizer, Problem

from .reward import Reward

COUNTERS = ("denoiser_calls", "denoiser_sequences", "reward_calls", "reward_sequences", "reward_seconds",
            "corrector_calls", "corrector_remasked")


def correcting(model: Any, correction: Correction | None) -> AbstractContextManager:
    """``model.correcting(correction)``, or nothing to do when there is no correction."""
    return nullcontext() if correction is None else model.correcting(correction)


class PriorSampler(Optimizer):
    """Base of the reward-guided samplers: ``ask(n)`` generates ``n`` designs from the prior.

    The domain must provide ``prior()``: any :class:`~workbench.generative.Prior` over its space (a
    masked-diffusion prior over sequences, a Gaussian one over images or vectors); the samplers use
    only that protocol. The reward is a scalarization of the study's objectives (``weights``,
    ``scalarization``; see :class:`Reward`). ``condition`` (a label, or labels cycled over the rows)
    is passed to the prior's denoiser; ``partial`` (a :class:`~workbench.generative.Partial`) fixes
    part of every design (inpainting, infilling). ``corrector`` (a
    :class:`~workbench.generative.Correction`, masked priors only) re-masks the tokens a trained corrector
    finds implausible at chosen times, for the prior to regenerate (Layout-Corrector). Denoiser, corrector and
    reward calls are counted separately and stored with the study; ``tell`` learns nothing (the stored
    evaluations are the final designs).
    """

    name = "prior"

    def __init__(self, steps: int = 128, weights: Sequence[float] | None = None, scalarization: str = "sum",
                 batch_size: int = 64, condition: int | Sequence[int] | None = None,
                 partial: Partial | None = None, corrector: Correction | None = None) -> None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if partial is not None and not isinstance(partial, Partial):
            raise TypeError(f"partial must be a workbench.generative.Partial, got {type(partial).__name__}")
        self.steps = int(steps)
        self.weights = None if weights is None else [float(w) for w in weights]
        self.scalarization = scalarization
        self.batch_size = int(batch_size)
        if condition is None or isinstance(condition, int):
            self.condition = condition
        else:
            self.condition = [int(c) for c in condition]
            if not self.condition:
                raise ValueError("condition must be a label or a non-empty list of labels")
        if corrector is not None and not isinstance(corrector, Correction):
            raise TypeError(f"corrector must be a workbench.generative.Correction, got {type(corrector).__name__}")
        self.partial = partial
        self.corrector = corrector

    @property
    def default_batch_size(self) -> int:
        return self.batch_size

    def setup(self, problem: Problem) -> None:
        super().setup(problem)
        prior = problem.prior
        if prior is None:
            raise ValueError(f"{type(self).__name__} needs a generative prior: the domain's prior() returned None")
        if not isinstance(prior, Prior):
            raise TypeError(f"the domain's prior() returned a {type(prior).__name__}, which does not implement "
                            "workbench.generative.Prior")
        prior.check_space(problem.space)
        if self.corrector is not None and getattr(prior, "kind", None) != "masked":
            raise ValueError(f"a corrector re-masks tokens: it needs a masked-diffusion prior, not a "
                             f"{type(prior).__name__}")
        if self.partial is not None:
            self._check_partial(problem)
        self.prior = prior.to(problem.device).eval()
        for p in self.prior.parameters():
            p.requires_grad_(False)
        self.reward = Reward(problem, self.weights, self.scalarization)
        self.counts: dict[str, float] = dict.fromkeys(COUNTERS, 0)
        # the call counts already folded into ``counts``, per model and for the reward: the prior is shared by
        # every study of its domain, so only the calls made since this sampler started count
        self._seen: weakref.WeakKeyDictionary[Any, tuple] = weakref.WeakKeyDictionary()
        self._seen[self.prior] = (self.prior.calls, self.prior.rows)

    def _check_partial(self, problem: Problem) -> None:
        """The fixed entries of ``partial`` must be valid values of the space."""
        space = problem.space
        self.partial.check(tuple(space.shape))
        values = self.partial.values.reshape(-1, *space.shape)
        filler = space.sample(1, torch.Generator().manual_seed(0)).to(values.dtype)
        bad = space.invalid_rows(torch.where(self.partial.mask, values, filler))
        if bad:
            row, reason = next(iter(sorted(bad.items())))
            raise ValueError(f"the partial design's fixed values are not valid designs (row {row}: {reason})")

    def _condition(self, n: int) -> torch.Tensor | None:
        """Per-row condition ``[n]`` (the given labels cycled), or None."""
        if self.condition is None:
            return None
        labels = torch.as_tensor(self.condition, dtype=torch.long, device=self.device).reshape(-1)
        return labels.repeat(-(-n // len(labels)))[:n]

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
        if self.corrector is not None:
            calls, remasked = self._seen.get(self.corrector.model, (0, 0))
            self.counts["corrector_calls"] += self.corrector.model.calls - calls
            self.counts["corrector_remasked"] += self.corrector.remasked - remasked
            self._seen[self.corrector.model] = (self.corrector.model.calls, self.corrector.remasked)

    def counters(self) -> dict[str, float]:
        return dict(self.counts)

    def tell(self, x: torch.Tensor, evaluation: Any) -> None:
        """Samplers draw each batch afresh; the stored evaluations are their final designs."""

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.counts = {k: (float if k == "reward_seconds" else int)(state["counts"].get(k, 0)) for k in COUNTERS}

    def ask(self, n: int) -> torch.Tensor:
        with torch.no_grad(), correcting(self.prior, self.corrector):
            x = self.generate(n)
        self._sync_counts()
        return x

    def generate(self, n: int) -> torch.Tensor:
        """``n`` designs ``[n, *shape]`` (subclasses implement the guidance)."""
        raise NotImplementedError


class Pretrained(PriorSampler):
    """Plain ancestral sampling from the prior: the unguided baseline."""

    name = "pretrained"

    def generate(self, n: int) -> torch.Tensor:
        return self.prior.sample(n, self.steps, self.generator, condition=self._condition(n), partial=self.partial)
