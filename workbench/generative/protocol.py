"""The one interface every generative prior offers to reward-guided samplers.

A sampler (pretrained sampling, best-of-N, SMC, SVDD, DPS, DRAKES) sees a prior only through
:class:`Prior`, so the same sampler code runs on a masked discrete prior over token sequences
(:class:`~workbench.generative.MaskedDiffusion`) and on a Gaussian prior over images, vectors or
grids (:class:`~workbench.generative.GaussianDiffusion`).

Vocabulary. A *state* ``x_t`` is what the reverse process carries at time ``t`` (tokens with MASK,
or a noisy tensor in the prior's internal units); a *design* is what the domain scores, in the
space's encoding. Time runs from 1 (pure noise) to 0 (a design): ``timesteps(steps)`` is the grid.
A *relaxed* state is the differentiable counterpart (relaxed one-hots, or the state itself for a
Gaussian prior), used by fine-tuning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

#: a differentiable reward of soft designs ``[n, ...] -> [n]`` (gradient guidance, DPS)
Guidance = Callable[[torch.Tensor], torch.Tensor]


@runtime_checkable
class StepDistribution(Protocol):
    """One reverse step p(x_s | x_t) for a batch of ``B`` states; sample it as often as needed."""

    def sample(self, m: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``m`` independent draws ``[m, B, ...]`` (or one ``[B, ...]`` when m is None)."""

    def log_prob(self, xs: torch.Tensor) -> torch.Tensor:
        """Log-density of states ``xs [..., B, ...]`` under this step -> ``[..., B]``."""


@runtime_checkable
class Prior(Protocol):
    """What a reward-guided sampler may ask of a trained generative prior.

    ``calls`` / ``rows`` count denoiser invocations and the states they processed, so that
    samplers can report their cost. ``condition`` is an optional per-row tensor ``[B]`` passed
    to the denoiser (e.g. a class label); ``partial`` is a :class:`Partial` design whose fixed
    entries every sample keeps (inpainting, infilling).
    """

    kind: str
    calls: int
    rows: int

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one design."""

    @property
    def device(self) -> torch.device: ...

    def check_space(self, space: Any) -> None:
        """Raise a ValueError naming the mismatch unless this prior generates designs of ``space``."""

    def timesteps(self, steps: int) -> torch.Tensor:
        """Reverse-time grid ``[steps + 1]`` from 1 down to 0."""

    def initial(self, n: int, generator: torch.Generator | None = None, partial: Partial | None = None) -> torch.Tensor:
        """States at t = 1 ``[n, ...]``."""

    def step(self, x: torch.Tensor, t: Any, s: Any, condition: torch.Tensor | None = None,
             partial: Partial | None = None, guide: Guidance | None = None, guide_scale: float = 0.0,
             generator: torch.Generator | None = None) -> StepDistribution:
        """The reverse step from ``t`` to ``s < t`` of states ``x`` (one denoiser call; ``partial.resample``
        calls on a Gaussian prior, whose jumps draw from ``generator``). With ``guide``, the denoised
        estimate is first moved up the gradient of ``guide`` (classifier guidance at x0_hat)."""

    def denoise(self, x: torch.Tensor, t: Any, condition: torch.Tensor | None = None,
                partial: Partial | None = None) -> torch.Tensor:
        """The denoised estimate x0_hat of states ``x`` at time ``t``, as designs ``[B, *shape]``."""

    def to_design(self, x: torch.Tensor, partial: Partial | None = None) -> torch.Tensor:
        """States at t = 0 -> designs ``[B, *shape]`` (fixed entries of ``partial`` exact)."""

    def sample(self, n: int, steps: int, generator: torch.Generator | None = None,
               condition: torch.Tensor | None = None, partial: Partial | None = None) -> torch.Tensor:
        """``n`` designs by ancestral sampling with ``steps`` reverse steps."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """States as float network inputs (value networks of SVDD-MC)."""

    # differentiable path (fine-tuning)
    def relax(self, x: torch.Tensor) -> torch.Tensor:
        """Hard states -> relaxed states."""

    def relaxed_step(self, x: torch.Tensor, t: Any, s: Any, temperature: float = 1.0,
                     generator: torch.Generator | None = None, condition: torch.Tensor | None = None,
                     partial: Partial | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A differentiable reverse step of relaxed states -> (x_s, the prediction that made it)."""

    def estimate(self, x: torch.Tensor, t: Any, condition: torch.Tensor | None = None,
                 partial: Partial | None = None) -> torch.Tensor:
        """The denoiser's estimate of the clean design at relaxed states, differentiable (what
        ``relaxed_step`` returns second): p(x0 | x_t) for a masked prior, x0_hat for a Gaussian one."""

    def step_kl(self, prediction: torch.Tensor, reference: Prior, x: torch.Tensor, t: Any, s: Any,
                condition: torch.Tensor | None = None, partial: Partial | None = None) -> torch.Tensor:
        """KL(this model's step || ``reference``'s step) at relaxed states ``x`` -> ``[B]``; differentiable
        in ``prediction`` (this model's), the reference is evaluated without gradient."""

    def relaxed_design(self, x: torch.Tensor) -> torch.Tensor:
        """Relaxed states at t = 0 -> soft designs for ``Domain.evaluate_soft``."""

    def log_likelihood(self, x0: torch.Tensor, samples: int = 32, generator: torch.Generator | None = None,
                       batch_size: int = 1024) -> torch.Tensor:
        """ELBO estimate of log p(x0) per design ``[B]`` (nats)."""

    def bits_per_dim(self, x0: torch.Tensor, samples: int = 32, generator: torch.Generator | None = None,
                     batch_size: int = 1024) -> torch.Tensor:
        """Negative ELBO per design in bits per dimension ``[B]``."""

    def clone(self) -> Prior:
        """An independent copy with the same weights and zeroed counters."""


@dataclass(frozen=True)
class Partial:
    """A partial design: entries where ``mask`` is True are fixed to ``values``; the prior fills the rest.

    values: ``[*shape]`` (one partial design for every sample) or ``[n, *shape]``; mask: bool, the
    same shape as values (or ``[*shape]`` for all rows). For sequences, values are token ids.
    ``resample`` (Gaussian priors): each reverse step is redone that many times, jumping back to the
    step's start in between (RePaint), so that the free entries agree with the fixed ones; 1 is plain
    replacement, which conditions only weakly. A masked prior conditions exactly and ignores it.
    ``row_masks=True``: ``mask`` is ``[n, *shape]``, one mask per row of ``values [n, *shape]`` (each design
    fixes its own entries, e.g. the classes of each page of a layout data set).
    """

    values: torch.Tensor
    mask: torch.Tensor
    resample: int = 1
    row_masks: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.values, torch.Tensor) or not isinstance(self.mask, torch.Tensor):
            raise TypeError("Partial needs tensors: values and a bool mask")
        if self.mask.dtype != torch.bool:
            raise TypeError(f"Partial.mask must be a bool tensor, got {self.mask.dtype}")
        if self.row_masks and (self.mask.dim() < 2 or self.mask.shape != self.values.shape):
            raise ValueError(f"Partial with row_masks needs values and mask of one shape [n, *shape], got "
                             f"{list(self.values.shape)} and {list(self.mask.shape)}")
        if self.mask.dim() == 0 or tuple(self.values.shape[-self.mask.dim():]) != tuple(self.mask.shape):
            raise ValueError(f"Partial.mask of shape {list(self.mask.shape)} does not match values of shape "
                             f"{list(self.values.shape)}")
        if self.values.is_floating_point() and not bool(torch.isfinite(self.values[..., self.mask]).all()):
            raise ValueError("Partial.values must be finite where the mask fixes them")
        if int(self.resample) < 1:
            raise ValueError(f"Partial.resample must be >= 1, got {self.resample}")

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise a ValueError unless this partial design fits designs of ``shape``."""
        mask_shape = tuple(self.mask.shape[1:] if self.row_masks else self.mask.shape)
        if mask_shape != tuple(shape) or tuple(self.values.shape[-len(shape):]) != tuple(shape) \
                or self.values.dim() > len(shape) + 1:
            raise ValueError(f"a partial design must have values [*shape] or [n, *shape] and a mask [*shape] with "
                             f"shape {list(shape)}; got values {list(self.values.shape)}, mask {list(self.mask.shape)}")

    def rows(self, n: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """(values ``[n, *shape]``, mask ``[n, *shape]``) on ``device``; per-row values of ``B`` rows serve any
        ``n`` that is a multiple of ``B`` (``n // B`` stacked copies)."""
        shape = tuple(self.mask.shape[1:] if self.row_masks else self.mask.shape)
        values, mask = self.values.to(device), self.mask.to(device)
        if values.dim() == len(shape):
            values = values.expand(n, *shape)
        elif n % values.shape[0]:
            raise ValueError(f"the partial design holds {values.shape[0]} rows; {n} designs were asked for")
        else:  # stacked copies of the batch (e.g. M candidates per design)
            values = values.repeat(n // values.shape[0], *([1] * len(shape)))
            if self.row_masks:
                mask = mask.repeat(n // mask.shape[0], *([1] * len(shape)))
        return values, mask.expand(n, *shape)

    @property
    def per_row(self) -> bool:
        """Whether each design has its own partial design (values ``[n, *shape]``)."""
        return self.row_masks or self.values.dim() > self.mask.dim()

    def __repr__(self) -> str:
        digest = hashlib.sha256(self.values.detach().cpu().contiguous().numpy().tobytes()
                                + self.mask.cpu().contiguous().numpy().tobytes()).hexdigest()[:12]
        return (f"Partial(shape={list(self.values.shape)}, fixed={int(self.mask.sum())}, resample={self.resample}, "
                f"sha={digest})")


def expand_condition(condition: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """A per-row condition ``[B]`` repeated for ``n`` rows made of ``n // B`` stacked copies of the batch."""
    if condition is None:
        return None
    if n % len(condition):
        raise ValueError(f"cannot spread a condition of {len(condition)} rows over {n} rows")
    return condition.repeat(n // len(condition))
