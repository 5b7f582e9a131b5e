"""Masked (absorbing-state) discrete diffusion, MDLM-style, over token sequences.

Forward process: each token is replaced by MASK with probability ``move_chance(t)``.
The denoiser predicts the clean tokens; the "subs" parameterization makes unmasked
tokens certain and never predicts MASK. What the reward-guided samplers need is here:
one reverse step as a distribution to sample many times (SVDD, SMC), a relaxed
Gumbel-softmax step that carries gradients (DRAKES), the denoised estimate x0_hat, and
an ELBO log-likelihood (naturalness). It implements :class:`~workbench.generative.protocol.Prior`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .base import DiffusionModel
from .denoisers import ConvDenoiser
from .protocol import Guidance, Partial
from .schedules import LogLinearSchedule



def sample_categorical(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one index per row of ``probs [..., K]`` (rows sum to 1) by inverse CDF -> ``[...]`` int64."""
    u = torch.rand(probs.shape[:-1] + (1,), generator=generator, device=probs.device, dtype=probs.dtype)
    cdf = probs.cumsum(dim=-1)
    return (cdf < u * cdf[..., -1:]).sum(dim=-1).clamp_max(probs.shape[-1] - 1)


@dataclass
class ReverseStep:
    """One reverse step p(x_s | x_t), factorized over positions.

    probs: ``[B, L, V + 1]`` (last entry = stay masked); x0_probs: ``[B, L, V]`` the
    denoiser's estimate of the clean tokens; xt: ``[B, L]`` the current state.
    """

    probs: torch.Tensor
    x0_probs: torch.Tensor
    xt: torch.Tensor
    mask_index: int

    def sample(self, m: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``m`` independent draws ``[m, B, L]`` (or one ``[B, L]`` when m is None)."""
        probs = self.probs if m is None else self.probs.unsqueeze(0).expand(m, *self.probs.shape)
        drawn = sample_categorical(probs, generator)
        return torch.where(self.xt != self.mask_index, self.xt, drawn)

    def log_prob(self, xs: torch.Tensor) -> torch.Tensor:
        """Log-probability of states ``xs [..., B, L]`` under this step -> ``[..., B]``."""
        probs = self.probs.expand(xs.shape + (self.probs.shape[-1],))
        return torch.log(probs.gather(-1, xs.unsqueeze(-1)).squeeze(-1).clamp_min(1e-30)).sum(dim=-1)


class MaskedDiffusion(DiffusionModel):
    """A masked-diffusion prior over sequences ``[B, length]`` of token ids ``0..vocab_size-1``.

    ``mask_index = vocab_size``. ``calls`` / ``rows`` count denoiser invocations and the
    sequences they processed, so samplers can report their cost. A partial design fixes tokens
    (they start unmasked and the subs parameterization keeps them); the convolutional denoiser
    is unconditional, so a ``condition`` is refused with a clear error.
    """

    kind = "masked"
    checkpoint_format = "workbench.masked_diffusion/1"
    checkpoint_kind = "masked-diffusion"
    validation_unit = "nats/token"

    def __init__(self, denoiser: nn.Module, vocab_size: int, length: int,
                 schedule: LogLinearSchedule | None = None) -> None:
        super().__init__()
        if vocab_size < 2 or length < 1:
            raise ValueError(f"need vocab_size >= 2 and length >= 1, got {vocab_size} and {length}")
        self.denoiser = denoiser
        self.vocab_size = int(vocab_size)
        self.length = int(length)
        self.mask_index = self.vocab_size
        self.correction: Any = None  # a corrector.Correction while `correcting` is active
        self.schedule = schedule or LogLinearSchedule()

    # ------------------------------------------------------------ construction
    @classmethod
    def for_space(cls, space: Any, **denoiser_options: Any) -> MaskedDiffusion:
        """A fresh prior for a :class:`~workbench.spaces.SequenceSpace` (its padding becomes one more token)."""
        vocab = space.vocab_size + (1 if space.min_length < space.length else 0)
        return cls(ConvDenoiser(vocab, **denoiser_options), vocab, space.length)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.length,)

    def check_space(self, space: Any) -> None:
        length, vocab = getattr(space, "length", None), getattr(space, "vocab_size", None)
        if length is None or vocab is None:
            raise ValueError(f"a masked-diffusion prior generates token sequences; the space is a "
                             f"{type(space).__name__}")
        if self.length != length or self.vocab_size < vocab:
            raise ValueError(f"the prior generates length {self.length} over {self.vocab_size} tokens; the space "
                             f"has length {length} over {vocab}")

    def config(self) -> dict[str, Any]:
        return {"denoiser": dict(self.denoiser.config), "vocab_size": self.vocab_size, "length": self.length,
                "schedule": self.schedule.to_spec()}

    @classmethod
    def from_config(cls, denoiser: nn.Module, config: dict[str, Any]) -> MaskedDiffusion:
        return cls(denoiser, config["vocab_size"], config["length"], LogLinearSchedule(config["schedule"]["eps"]))

    # --------------------------------------------------------------- helpers
    def one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, L]`` -> one-hot ``[B, L, V + 1]`` float."""
        return nn.functional.one_hot(x, self.vocab_size + 1).float()

    def all_masked(self, n: int) -> torch.Tensor:
        return torch.full((n, self.length), self.mask_index, dtype=torch.long, device=self.device)

    def initial(self, n: int, generator: torch.Generator | None = None, partial: Partial | None = None) -> torch.Tensor:
        """States at t = 1: all masked, but for the fixed tokens of ``partial`` ``[n, L]``."""
        x = self.all_masked(n)
        if partial is None:
            return x
        values, mask = partial.rows(n, x.device)
        return torch.where(mask, self.check_tokens(values.long(), allow_mask=False), x)

    def to_design(self, x: torch.Tensor, partial: Partial | None = None) -> torch.Tensor:
        """Tokens at t = 0 are the designs (fixed tokens were never masked)."""
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[B, L]`` (any integer dtype) -> one-hot ``[B, L, V + 1]``: value-network inputs."""
        return self.one_hot(x.long())

    def relax(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens -> one-hot ``[B, L, V + 1]``, the relaxed states of :meth:`relaxed_step`."""
        return self.one_hot(x)

    def relaxed_design(self, x: torch.Tensor) -> torch.Tensor:
        """Relaxed states at t = 0 -> probabilities over the real tokens ``[B, L, V]``."""
        return x[..., : self.vocab_size]

    def timesteps(self, steps: int) -> torch.Tensor:
        """Reverse-time grid ``[steps + 1]`` from 1 down to 0."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return torch.linspace(1.0, 0.0, steps + 1, device=self.device)

    def check_tokens(self, x: torch.Tensor, allow_mask: bool = True) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.length:
            raise ValueError(f"expected token rows [n, {self.length}], got shape {list(x.shape)}")
        top = self.mask_index if allow_mask else self.vocab_size - 1
        if x.numel() and (int(x.min()) < 0 or int(x.max()) > top):
            raise ValueError(f"token ids must be in [0, {top}], got [{int(x.min())}, {int(x.max())}]")
        return x.long()

    # -------------------------------------------------------------- denoising
    def logits(self, xt: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Raw denoiser logits ``[B, L, V]`` for tokens ``[B, L]`` or relaxed one-hots ``[B, L, V + 1]``."""
        if condition is not None:
            raise ValueError("this masked-diffusion prior is unconditional; it takes no condition")
        x = xt if xt.is_floating_point() else self.one_hot(xt)
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device).expand(x.shape[0])
        self.calls += 1
        self.rows += int(x.shape[0])
        if x.device.type == "cuda":  # bf16 matmuls: several times faster, ample for sampling and ELBOs
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.denoiser(x, t).float()
        return self.denoiser(x, t).float()

    def x0_probs(self, xt: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None) -> torch.Tensor:
        """p(x0 | x_t) ``[B, L, V]`` with the subs parameterization (unmasked tokens are kept)."""
        x = xt if xt.is_floating_point() else self.one_hot(xt)
        predicted = torch.softmax(self.logits(x, t, condition), dim=-1)
        return x[..., : self.vocab_size] + x[..., self.vocab_size:] * predicted

    def estimate(self, x: torch.Tensor, t: Any, condition: torch.Tensor | None = None,
                 partial: Partial | None = None) -> torch.Tensor:
        """p(x0 | x_t) ``[B, L, V]`` at relaxed states ``x [B, L, V + 1]``, differentiable."""
        return self.x0_probs(x, t, condition)

    def denoise(self, xt: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None,
                partial: Partial | None = None, sample: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoised estimate x0_hat ``[B, L]``: argmax (or a draw) of p(x0 | x_t), unmasked tokens kept."""
        probs = self.x0_probs(xt, t, condition)
        x0 = sample_categorical(probs, generator) if sample else probs.argmax(dim=-1)
        return torch.where(xt != self.mask_index, xt, x0)

    @contextmanager
    def correcting(self, correction: Any) -> Iterator[None]:
        """Within the block, :meth:`step` applies ``correction`` (a :class:`~.corrector.Correction`, or None for
        nothing) before each reverse step that crosses one of its times."""
        previous, self.correction = self.correction, correction
        try:
            yield
        finally:
            self.correction = previous

    def step(self, xt: torch.Tensor, t: torch.Tensor | float, s: torch.Tensor | float,
             condition: torch.Tensor | None = None, partial: Partial | None = None, guide: Guidance | None = None,
             guide_scale: float = 0.0, generator: torch.Generator | None = None) -> ReverseStep:
        """The reverse step from time t to s < t for tokens ``xt [B, L]`` (one denoiser call).

        With ``guide`` (a differentiable reward of relaxed sequences ``[B, L, V] -> [B]``), p(x0 | x_t) is
        tilted by ``exp(guide_scale * grad / rms(grad))`` at the masked positions first: the first-order
        (classifier-guidance) approximation of ``p(x0 | x_t) exp(r(x0))``, its gradient taken at x0_hat.
        Under :meth:`correcting`, the corrector first re-masks the implausible unmasked tokens of ``xt`` (never
        the fixed tokens of ``partial``) when the step crosses a correction time."""
        if self.correction is not None and self.correction.due(t, s):
            fixed = partial.rows(xt.shape[0], xt.device)[1] if partial is not None else None
            xt = self.correction.apply(xt, t, self.mask_index, fixed)
        x = self.one_hot(xt)
        p0 = self.x0_probs(x, t, condition)
        if guide is not None and guide_scale:
            p0 = self._guided(p0, xt == self.mask_index, guide, guide_scale)
        probs = torch.where((xt == self.mask_index).unsqueeze(-1), self._masked_step_probs(p0, t, s), x)
        return ReverseStep(probs, p0, xt, self.mask_index)

    @staticmethod
    def _guided(p0: torch.Tensor, masked: torch.Tensor, guide: Guidance, scale: float) -> torch.Tensor:
        with torch.enable_grad():
            soft = p0.detach().requires_grad_(True)
            grad, = torch.autograd.grad(guide(soft).sum(), soft)
        grad = grad * masked.unsqueeze(-1)
        rms = grad.flatten(1).pow(2).sum(1).div(masked.sum(1).clamp_min(1) * p0.shape[-1]).sqrt().clamp_min(1e-12)
        tilted = torch.log(p0.clamp_min(1e-30)) + scale * grad / rms.reshape(-1, 1, 1)
        return torch.where(masked.unsqueeze(-1), torch.softmax(tilted, dim=-1), p0)

    def _masked_step_probs(self, p0: torch.Tensor, t: Any, s: Any) -> torch.Tensor:
        """Where a token masked at t goes by s ``[B, L, V + 1]``: a token drawn from p0 ``[B, L, V]`` or MASK."""
        t, s = (torch.as_tensor(v, dtype=torch.float32, device=p0.device) for v in (t, s))
        unmask, stay = self.schedule.reveal_chances(t, s)
        if unmask.dim():  # one time per row
            unmask, stay = unmask.reshape(-1, 1, 1), stay.reshape(-1, 1, 1)
        return torch.cat([p0 * unmask, torch.ones_like(p0[..., :1]) * stay], dim=-1)

    def relaxed_step(self, xt: torch.Tensor, t: float, s: float, temperature: float = 1.0,
                     generator: torch.Generator | None = None, condition: torch.Tensor | None = None,
                     partial: Partial | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gumbel-softmax reverse step on relaxed one-hots ``xt [B, L, V + 1]``, differentiable.

        Returns (x_s ``[B, L, V + 1]``, p(x0 | x_t) ``[B, L, V]``). The token mass of x_t is
        copied; its mask mass moves by the relaxed draw, so nothing stays masked at s = 0.
        """
        p0 = self.x0_probs(xt, t, condition)
        q = self._masked_step_probs(p0, t, s)
        u = torch.rand(q.shape, generator=generator, device=q.device).clamp(1e-10, 1.0 - 1e-7)
        gumbel = -torch.log(-torch.log(u))
        drawn = torch.softmax((torch.log(q.clamp_min(1e-20)) + gumbel) / temperature, dim=-1)
        masked = xt[..., self.vocab_size:]
        kept = torch.cat([xt[..., : self.vocab_size], torch.zeros_like(masked)], dim=-1)
        return kept + masked * drawn, p0

    def step_kl(self, prediction: torch.Tensor, reference: MaskedDiffusion, x: torch.Tensor, t: Any, s: Any,
                condition: torch.Tensor | None = None, partial: Partial | None = None) -> torch.Tensor:
        """KL between this model's step (from ``prediction`` = its p(x0 | x_t)) and ``reference``'s at relaxed
        states ``x [B, L, V + 1]`` -> ``[B]``: ``(m_t - m_s) / m_t * KL(p0 || p0_ref)`` summed over the
        (relaxed) masked positions, ``m`` the mask chance."""
        with torch.no_grad():
            ref_p0 = reference.x0_probs(x.detach(), t, condition)
        unmask, _ = self.schedule.reveal_chances(t, s)
        per_position = (prediction * (torch.log(prediction.clamp_min(1e-12)) - torch.log(ref_p0.clamp_min(1e-12)))
                        ).sum(-1)
        return unmask * (x[..., self.vocab_size] * per_position).sum(dim=1)

    # --------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, steps: int = 100, generator: torch.Generator | None = None,
               condition: torch.Tensor | None = None, partial: Partial | None = None) -> torch.Tensor:
        """Ancestral sampling with ``steps`` reverse steps -> tokens ``[n, L]`` (no MASK left)."""
        x = self.initial(n, generator, partial)
        grid = self.timesteps(steps)
        for i in range(steps):
            x = self.step(x, grid[i], grid[i + 1], condition, partial).sample(generator=generator)
        return x

    @torch.no_grad()
    def refine(self, x0: torch.Tensor, start: float = 0.5, steps: int = 50, generator: torch.Generator | None = None,
               condition: torch.Tensor | None = None, partial: Partial | None = None) -> torch.Tensor:
        """SDEdit for masked diffusion: mask each free token of ``x0 [n, L]`` with the forward process' chance at
        time ``start`` in (0, 1], then run ``steps`` reverse steps from ``start`` to 0 -> ``[n, L]``. Tokens
        left unmasked stay (unless a corrector re-masks them, see :meth:`correcting`); fixed tokens of
        ``partial`` are never masked."""
        if not 0.0 < start <= 1.0:
            raise ValueError(f"start must be a time in (0, 1], got {start}")
        x = self.check_tokens(x0.to(self.device), allow_mask=False)
        chance = self.schedule.move_chance(torch.tensor(float(start), device=x.device))
        masked = torch.rand(x.shape, generator=generator, device=x.device) < chance
        if partial is not None:
            values, fixed = partial.rows(len(x), x.device)
            x = torch.where(fixed, self.check_tokens(values.long(), allow_mask=False), x)
            masked &= ~fixed
        x = torch.where(masked, self.mask_index, x)
        grid = torch.linspace(float(start), 0.0, steps + 1, device=x.device)
        for i in range(steps):
            x = self.step(x, grid[i], grid[i + 1], condition, partial).sample(generator=generator)
        return x

    # ------------------------------------------------------- training / ELBO
    def nelbo(self, x0: torch.Tensor, generator: torch.Generator | None = None, t: torch.Tensor | None = None,
              min_t: float = 1e-3) -> torch.Tensor:
        """Continuous-time negative ELBO per sequence ``[B]`` (nats), one noise draw each.

        Times are antithetic (stratified over the batch) unless ``t [B]`` is given.
        """
        x0 = self.check_tokens(x0, allow_mask=False)
        b = x0.shape[0]
        if t is None:
            offset = torch.rand((), generator=generator, device=x0.device)
            t = ((offset + torch.arange(b, device=x0.device) / b) % 1.0) * (1.0 - min_t) + min_t
        chance = self.schedule.move_chance(t).unsqueeze(1)
        masked = torch.rand(x0.shape, generator=generator, device=x0.device) < chance
        xt = torch.where(masked, self.mask_index, x0)
        logp = torch.log_softmax(self.logits(xt, t), dim=-1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        return -(logp * masked).sum(dim=1) * self.schedule.elbo_weight(t)

    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None,
                      condition: torch.Tensor | None = None) -> torch.Tensor:
        """The MDLM objective: mean negative ELBO per token (scalar)."""
        if condition is not None:
            raise ValueError("this masked-diffusion prior is unconditional; train it without labels")
        return self.nelbo(x0, generator).mean() / self.length

    @torch.no_grad()
    def validation_loss(self, data: torch.Tensor, samples: int = 4, seed: int = 0, batch_size: int = 512) -> float:
        """Mean negative ELBO per token (nats) of ``data [n, L]`` (fixed seed, so comparable)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        ll = self.log_likelihood(data.to(self.device), samples=samples, generator=generator, batch_size=batch_size)
        return float(-ll.mean()) / self.length

    @torch.no_grad()
    def log_likelihood(self, x0: torch.Tensor, samples: int = 32, generator: torch.Generator | None = None,
                       batch_size: int = 1024) -> torch.Tensor:
        """ELBO estimate of log p(x0) per sequence ``[B]`` (nats), averaged over ``samples`` stratified times."""
        x0 = self.check_tokens(x0, allow_mask=False)
        total = torch.zeros(x0.shape[0], device=x0.device)
        for k in range(samples):
            for start in range(0, x0.shape[0], batch_size):
                chunk = x0[start:start + batch_size]
                u = torch.rand(chunk.shape[0], generator=generator, device=x0.device)
                t = ((k + u) / samples) * (1.0 - 1e-3) + 1e-3
                total[start:start + batch_size] += self.nelbo(chunk, generator, t=t)
        return -total / samples
