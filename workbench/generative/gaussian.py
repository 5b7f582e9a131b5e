"""Gaussian diffusion (DDPM / DDIM) over dense tensors: images, vectors, voxel grids.

Continuous time t in [0, 1] with a cosine schedule in log-SNR form: ``x_t = alpha_t y + sigma_t eps``
where ``y`` is the design rescaled to [-1, 1]. The denoiser predicts ``eps`` or ``v`` (``alpha eps -
sigma y``); training samples t uniformly, so any number of sampling steps works. What reward-guided
samplers need is here, with the same interface as :class:`~workbench.generative.MaskedDiffusion`
(see :mod:`workbench.generative.protocol`): one reverse step as a Gaussian to sample many times
(SVDD, SMC), the denoised estimate x0_hat (Tweedie), a reparameterized differentiable step and the
step KL (DRAKES), gradient guidance at x0_hat (DPS), infilling of a partial design, class
conditions, and an ELBO in bits per dimension (naturalness).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .base import DiffusionModel
from .denoisers import MLPDenoiser, UNet
from .protocol import Guidance, Partial
from .schedules import CosineSchedule

PREDICTIONS = ("v", "eps")
#: the ELBO stops at this log-SNR (noise std 1e-3 of the data's [-1, 1] range) and decodes from there
ELBO_LOGSNR_MAX = 2.0 * math.log(1e3)


@dataclass
class GaussianStep:
    """One reverse step p(x_s | x_t) = N(mean, std^2), factorized; mean, std: ``[B, ...]``."""

    mean: torch.Tensor
    std: torch.Tensor

    def sample(self, m: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``m`` independent draws ``[m, B, ...]`` (or one ``[B, ...]`` when m is None)."""
        shape = self.mean.shape if m is None else (m, *self.mean.shape)
        noise = torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * noise

    def log_prob(self, xs: torch.Tensor) -> torch.Tensor:
        """Log-density of ``xs [..., B, ...]`` -> ``[..., B]`` (entries with std 0 are left out)."""
        random = self.std > 0
        std = torch.where(random, self.std, 1.0)
        z = (xs - self.mean) / std
        per_entry = torch.where(random, -0.5 * z ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi), 0.0)
        return per_entry.flatten(start_dim=per_entry.dim() - self.mean.dim() + 1).sum(-1)


def _per_row(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-row ``[B]`` (or scalar) value shaped to broadcast over ``like [B, ...]``."""
    return value.reshape(-1, *([1] * (like.dim() - 1)))


class GaussianDiffusion(DiffusionModel):
    """A Gaussian diffusion prior over designs of ``shape`` with values in ``[low, high]``.

    ``bins`` (e.g. 256 for 8-bit images) quantizes the designs it returns and makes the ELBO a
    discrete likelihood (bits per dimension between 0 and log2(bins)); without it the data are
    continuous and bits per dimension are a differential entropy (may be negative). ``eta``: 1 is
    ancestral (DDPM) sampling, 0 deterministic DDIM; guided samplers need eta > 0 to draw several
    candidates. ``calls`` / ``rows`` count denoiser invocations and the states they processed.
    """

    kind = "gaussian"
    checkpoint_format = "workbench.gaussian_diffusion/1"
    checkpoint_kind = "Gaussian-diffusion"

    def __init__(self, denoiser: nn.Module, shape: tuple[int, ...] | list[int], low: float = 0.0, high: float = 1.0,
                 bins: int | None = None, prediction: str = "v", schedule: CosineSchedule | None = None,
                 eta: float = 1.0, cond_drop: float = 0.1) -> None:
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if not low < high:
            raise ValueError(f"need low < high, got {low}, {high}")
        if bins is not None and bins < 2:
            raise ValueError(f"bins must be >= 2 (or None for continuous data), got {bins}")
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        self.denoiser = denoiser
        self._shape = tuple(int(s) for s in shape)
        self.low, self.high = float(low), float(high)
        self.bins = None if bins is None else int(bins)
        self.prediction = prediction
        self.schedule = schedule or CosineSchedule()
        self.eta = float(eta)
        self.cond_drop = float(cond_drop)

    # ------------------------------------------------------------ construction
    @classmethod
    def for_space(cls, space: Any, bins: int | None = None, num_classes: int = 0, **denoiser_options: Any
                  ) -> GaussianDiffusion:
        """A fresh prior for a :class:`~workbench.spaces.TensorSpace`: a U-Net for ``[C, *S]`` designs
        (images, grids), an MLP for vectors ``[D]``; ``bins`` defaults to the space's ``levels``."""
        shape = tuple(space.shape)
        bins = getattr(space, "levels", None) if bins is None else bins
        if len(shape) == 1:
            denoiser: nn.Module = MLPDenoiser(shape[0], num_classes=num_classes, **denoiser_options)
        else:
            denoiser = UNet(shape[0], len(shape) - 1, num_classes=num_classes, **denoiser_options)
        return cls(denoiser, shape, space.low, space.high, bins=bins)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def check_space(self, space: Any) -> None:
        if tuple(space.shape) != self._shape:
            raise ValueError(f"the prior generates designs of shape {list(self._shape)}; the space's are "
                             f"{list(space.shape)}")
        low, high = getattr(space, "low", None), getattr(space, "high", None)
        if low != self.low or high != self.high:
            raise ValueError(f"the prior generates values in [{self.low}, {self.high}]; the space holds "
                             f"[{low}, {high}]")
        levels = getattr(space, "levels", None)
        if levels is not None and levels != self.bins:
            raise ValueError(f"the space holds {levels} levels per value; the prior generates "
                             f"{self.bins or 'continuous'} levels")

    def config(self) -> dict[str, Any]:
        return {"denoiser": dict(self.denoiser.config), "shape": list(self._shape), "low": self.low,
                "high": self.high, "bins": self.bins, "prediction": self.prediction,
                "schedule": self.schedule.to_spec(), "eta": self.eta, "cond_drop": self.cond_drop}

    @classmethod
    def from_config(cls, denoiser: nn.Module, config: dict[str, Any]) -> GaussianDiffusion:
        schedule = CosineSchedule(config["schedule"]["logsnr_min"], config["schedule"]["logsnr_max"])
        return cls(denoiser, config["shape"], config["low"], config["high"], config["bins"], config["prediction"],
                   schedule, config["eta"], config["cond_drop"])

    # ------------------------------------------------------------ data units
    def to_internal(self, x: torch.Tensor) -> torch.Tensor:
        """Designs in [low, high] -> the model's units [-1, 1]."""
        return (x - self.low) * (2.0 / (self.high - self.low)) - 1.0

    def to_design(self, x: torch.Tensor, partial: Partial | None = None) -> torch.Tensor:
        """States (model units) -> designs: clamped to [low, high], quantized to ``bins`` levels, fixed
        entries of ``partial`` set exactly."""
        u = ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)
        if self.bins is not None:
            u = torch.round(u * (self.bins - 1)) / (self.bins - 1)
        design = self.low + u * (self.high - self.low)
        if partial is not None:
            values, mask = partial.rows(len(x), x.device)
            design = torch.where(mask, values.to(design.dtype), design)
        return design

    def relaxed_design(self, x: torch.Tensor) -> torch.Tensor:
        """States -> soft designs in [low, high], differentiable (no quantization)."""
        return self.low + ((x + 1.0) * 0.5).clamp(0.0, 1.0) * (self.high - self.low)

    def check_designs(self, x0: torch.Tensor) -> torch.Tensor:
        if tuple(x0.shape[1:]) != self._shape or x0.dim() != len(self._shape) + 1:
            raise ValueError(f"expected designs [n, {', '.join(map(str, self._shape))}], got shape {list(x0.shape)}")
        if not x0.dtype.is_floating_point:
            raise ValueError(f"expected float designs, got {x0.dtype}")
        if not bool(torch.isfinite(x0).all()):
            raise ValueError("designs hold NaN or infinite values")
        return x0.float()

    # --------------------------------------------------------------- network
    def _times(self, t: Any, n: int, device: torch.device) -> torch.Tensor:
        return torch.as_tensor(t, dtype=torch.float32, device=device).expand(n)

    def _net(self, z: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        self.calls += 1
        self.rows += int(z.shape[0])
        if z.device.type == "cuda":  # bf16 convolutions: several times faster, ample for sampling and ELBOs
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return self.denoiser(z, t, condition).float()
        return self.denoiser(z, t, condition).float()

    def predict(self, z: torch.Tensor, t: Any, condition: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) in model units for states ``z [B, ...]`` at time ``t``; x0_hat is clipped to
        [-1, 1] and eps_hat made consistent with it."""
        tt = self._times(t, z.shape[0], z.device)
        alpha, sigma = (_per_row(v, z) for v in self.schedule.alpha_sigma(tt))
        out = self._net(z, tt, condition)
        x0 = alpha * z - sigma * out if self.prediction == "v" else (z - sigma * out) / alpha
        x0 = x0.clamp(-1.0, 1.0)
        return x0, (z - alpha * x0) / sigma

    # ------------------------------------------------------------ reverse steps
    def _coefficients(self, t: Any, s: Any, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(alpha_t, sigma_t, alpha_s, sigma_s, std of the step) shaped like ``like``."""
        tt, ss = (self._times(v, like.shape[0], like.device) for v in (t, s))
        (a_t, s_t), (a_s, s_s) = self.schedule.alpha_sigma(tt), self.schedule.alpha_sigma(ss)
        ratio = torch.exp(self.schedule.logsnr(tt) - self.schedule.logsnr(ss)).clamp(max=1.0)  # SNR_t / SNR_s
        std = self.eta * s_s * torch.sqrt(1.0 - ratio)  # eta * the DDPM posterior's std
        # the step to s = 0 is the decoder: it returns x0_hat itself, with no noise (and no KL)
        last = ss <= 0.0
        a_s, s_s, std = torch.where(last, 1.0, a_s), torch.where(last, 0.0, s_s), torch.where(last, 0.0, std)
        return tuple(_per_row(v, like) for v in (a_t, s_t, a_s, s_s, std))

    def _step_from(self, z: torch.Tensor, x0: torch.Tensor, t: Any, s: Any,
                   partial: Partial | None) -> GaussianStep:
        """The DDIM(eta) step from ``z`` at t to s given the estimate ``x0`` (model units)."""
        a_t, s_t, a_s, s_s, std = self._coefficients(t, s, z)
        eps = (z - a_t * x0) / s_t
        mean = a_s * x0 + torch.sqrt((s_s ** 2 - std ** 2).clamp_min(0.0)) * eps
        std = std.expand_as(mean)
        if partial is not None:  # fixed entries follow the forward process of their given values
            values, mask = partial.rows(len(z), z.device)
            mean = torch.where(mask, a_s * self.to_internal(values.to(mean.dtype)), mean)
            std = torch.where(mask, s_s.expand_as(std), std)
        return GaussianStep(mean, std)

    def _guided(self, x0: torch.Tensor, guide: Guidance, scale: float) -> torch.Tensor:
        """x0_hat moved up the gradient of ``guide`` (at the soft design), by ``scale`` in units of each
        row's RMS gradient."""
        with torch.enable_grad():
            design = self.relaxed_design(x0.detach()).requires_grad_(True)
            grad, = torch.autograd.grad(guide(design).sum(), design)
        grad = grad * (2.0 / (self.high - self.low))  # to model units
        rms = grad.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)
        return (x0 + scale * grad / _per_row(rms, grad)).clamp(-1.0, 1.0)

    def step(self, x: torch.Tensor, t: Any, s: Any, condition: torch.Tensor | None = None,
             partial: Partial | None = None, guide: Guidance | None = None, guide_scale: float = 0.0,
             generator: torch.Generator | None = None) -> GaussianStep:
        """The reverse step from t to s < t for states ``x [B, ...]`` (one denoiser call).

        With a ``partial`` design whose ``resample`` is r > 1, the step is taken r - 1 times first, each time
        jumping back from s to t by the forward process (RePaint), so that the free entries of ``x`` come
        to agree with the fixed ones before the step that is returned (r denoiser calls)."""
        repeats = 1 if partial is None else int(partial.resample)
        for k in range(repeats):
            x0, _ = self.predict(x, t, condition)
            if guide is not None and guide_scale:
                x0 = self._guided(x0, guide, guide_scale)
            step = self._step_from(x, x0, t, s, partial)
            if k < repeats - 1:
                x = self._renoise(step.sample(generator=generator), s, t, generator)
        return step

    def _renoise(self, xs: torch.Tensor, s: Any, t: Any, generator: torch.Generator | None) -> torch.Tensor:
        """A draw of q(x_t | x_s) for ``t > s``: the forward process from s to t."""
        a_t, s_t, a_s, s_s, _ = self._coefficients(t, s, xs)
        ratio = a_t / a_s
        noise = torch.randn(xs.shape, generator=generator, device=xs.device, dtype=xs.dtype)
        return ratio * xs + torch.sqrt((s_t ** 2 - ratio ** 2 * s_s ** 2).clamp_min(0.0)) * noise

    def denoise(self, x: torch.Tensor, t: Any, condition: torch.Tensor | None = None,
                partial: Partial | None = None) -> torch.Tensor:
        """The denoised estimate x0_hat (Tweedie) of states ``x`` at time ``t``, as designs ``[B, *shape]``."""
        return self.to_design(self.predict(x, t, condition)[0], partial)

    def timesteps(self, steps: int) -> torch.Tensor:
        """Reverse-time grid ``[steps + 1]`` from 1 down to 0."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return torch.linspace(1.0, 0.0, steps + 1, device=self.device)

    def initial(self, n: int, generator: torch.Generator | None = None, partial: Partial | None = None) -> torch.Tensor:
        """States at t = 1: ``[n, *shape]`` standard normal (fixed entries noised from their values)."""
        z = torch.randn((n, *self._shape), generator=generator, device=self.device)
        if partial is None:
            return z
        values, mask = partial.rows(n, z.device)
        a1, s1 = self.schedule.alpha_sigma(torch.tensor(1.0, device=z.device))
        return torch.where(mask, a1 * self.to_internal(values.float()) + s1 * z, z)

    @torch.no_grad()
    def sample(self, n: int, steps: int = 100, generator: torch.Generator | None = None,
               condition: torch.Tensor | None = None, partial: Partial | None = None,
               eta: float | None = None) -> torch.Tensor:
        """Ancestral (``eta = 1``) or DDIM (``eta = 0``) sampling with ``steps`` steps -> designs ``[n, *shape]``."""
        saved, self.eta = self.eta, self.eta if eta is None else float(eta)
        try:
            x = self.initial(n, generator, partial)
            grid = self.timesteps(steps)
            for i in range(steps):
                x = self.step(x, grid[i], grid[i + 1], condition, partial, generator=generator).sample(
                    generator=generator)
        finally:
            self.eta = saved
        return self.to_design(x, partial)

    # ------------------------------------------------------ differentiable path
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """States as network inputs (they already are float tensors)."""
        return x.float()

    def relax(self, x: torch.Tensor) -> torch.Tensor:
        """Hard states are already continuous."""
        return x

    def estimate(self, x: torch.Tensor, t: Any, condition: torch.Tensor | None = None,
                      partial: Partial | None = None) -> torch.Tensor:
        """x0_hat (model units, differentiable; fixed entries set to their values)."""
        x0, _ = self.predict(x, t, condition)
        if partial is not None:
            values, mask = partial.rows(len(x), x.device)
            x0 = torch.where(mask, self.to_internal(values.to(x0.dtype)), x0)
        return x0

    def relaxed_step(self, x: torch.Tensor, t: Any, s: Any, temperature: float = 1.0,
                     generator: torch.Generator | None = None, condition: torch.Tensor | None = None,
                     partial: Partial | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterized reverse step (``temperature`` is unused: the Gaussian step is exact).

        Returns (x_s ``[B, ...]``, x0_hat ``[B, ...]``), both differentiable in the weights and in ``x``.
        """
        x0 = self.estimate(x, t, condition, partial)
        return self._step_from(x, x0, t, s, partial).sample(generator=generator), x0

    def step_kl(self, prediction: torch.Tensor, reference: GaussianDiffusion, x: torch.Tensor, t: Any, s: Any,
                condition: torch.Tensor | None = None, partial: Partial | None = None) -> torch.Tensor:
        """KL between this model's step (made from ``prediction`` = its x0_hat) and ``reference``'s at states
        ``x`` -> ``[B]``. Equal variances, so it is ``|mean - mean_ref|^2 / (2 std^2)``; with eta = 1 this is
        ``(SNR_s - SNR_t) / 2 |x0_hat - x0_hat_ref|^2``. Needs eta > 0."""
        with torch.no_grad():
            ref = reference.estimate(x.detach(), t, condition, partial)
        a_t, s_t, a_s, s_s, std = self._coefficients(t, s, x)
        coef = a_s - torch.sqrt((s_s ** 2 - std ** 2).clamp_min(0.0)) * a_t / s_t  # d mean / d x0
        random = std > 0  # the deterministic decoder step adds no KL
        per_entry = torch.where(random, (coef * (prediction - ref)) ** 2 / (2.0 * std.clamp_min(1e-12) ** 2), 0.0)
        return per_entry.flatten(1).sum(1)

    # ----------------------------------------------------- training / ELBO
    def training_loss(self, x0: torch.Tensor, generator: torch.Generator | None = None,
                      condition: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared error of the ``v`` (or ``eps``) prediction at stratified times in [0, 1] (scalar).

        With a ``condition``, labels are dropped (set to -1) with chance ``cond_drop`` so the network also
        learns the unconditional model."""
        y = self.to_internal(self.check_designs(x0))
        b = y.shape[0]
        offset = torch.rand((), generator=generator, device=y.device)
        t = (offset + torch.arange(b, device=y.device) / b) % 1.0
        eps = torch.randn(y.shape, generator=generator, device=y.device)
        alpha, sigma = (_per_row(v, y) for v in self.schedule.alpha_sigma(t))
        z = alpha * y + sigma * eps
        if condition is not None:
            drop = torch.rand(b, generator=generator, device=y.device) < self.cond_drop
            condition = torch.where(drop, -1, condition.to(y.device).long())
        out = self._net(z, t, condition)
        target = alpha * eps - sigma * y if self.prediction == "v" else eps
        return (out - target).pow(2).mean()

    def _nelbo(self, y: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None,
               condition: torch.Tensor | None) -> torch.Tensor:
        """One-sample negative ELBO (nats) of designs ``y`` (model units) ``[B]`` at diffusion times from
        ``u [B]`` in [0, 1]: diffusion term from ``t_min`` to 1, prior term at 1, decoder at ``t_min``."""
        sched = self.schedule
        t_min = max(sched.time_of(ELBO_LOGSNR_MAX), 0.0)
        t = t_min + (1.0 - t_min) * u
        eps = torch.randn(y.shape, generator=generator, device=y.device)
        alpha, sigma = (_per_row(v, y) for v in sched.alpha_sigma(t))
        _, eps_hat = self.predict(alpha * y + sigma * eps, t, condition)
        diffusion = -0.5 * (1.0 - t_min) * sched.dlogsnr_dt(t) * (eps - eps_hat).pow(2).flatten(1).sum(1)
        a1, s1 = sched.alpha_sigma(torch.tensor(1.0, device=y.device))
        prior = 0.5 * (a1 ** 2 * y ** 2 + s1 ** 2 - 1.0 - torch.log(s1 ** 2)).flatten(1).sum(1)
        a0, s0 = sched.alpha_sigma(torch.tensor(t_min, device=y.device))
        noise = torch.randn(y.shape, generator=generator, device=y.device)
        mean, scale = y + (s0 / a0) * noise, s0 / a0  # the decoder N(z0 / alpha0, (sigma0 / alpha0)^2)
        if self.bins is not None:
            half = 1.0 / (self.bins - 1)
            normal = torch.distributions.Normal(mean, scale)
            upper = torch.where(y > 1.0 - half, 1.0, normal.cdf(y + half))
            lower = torch.where(y < -1.0 + half, 0.0, normal.cdf(y - half))
            decoder = -torch.log((upper - lower).clamp_min(1e-12))
        else:  # continuous density in design units
            decoder = (0.5 * ((y - mean) / scale) ** 2 + torch.log(scale) + 0.5 * math.log(2 * math.pi)
                       + math.log(0.5 * (self.high - self.low)))
        return diffusion + prior + decoder.flatten(1).sum(1)

    @torch.no_grad()
    def log_likelihood(self, x0: torch.Tensor, samples: int = 32, generator: torch.Generator | None = None,
                       batch_size: int = 1024, condition: torch.Tensor | None = None) -> torch.Tensor:
        """ELBO estimate of log p(x0) per design ``[B]`` (nats), averaged over ``samples`` stratified times."""
        y = self.to_internal(self.check_designs(x0).to(self.device))
        if self.bins is not None:  # the discrete likelihood is of the quantized design
            y = torch.round((y + 1.0) * 0.5 * (self.bins - 1)) / (self.bins - 1) * 2.0 - 1.0
        total = torch.zeros(y.shape[0], device=y.device)
        for k in range(samples):
            for start in range(0, y.shape[0], batch_size):
                chunk = y[start:start + batch_size]
                u = (k + torch.rand(chunk.shape[0], generator=generator, device=y.device)) / samples
                cond = None if condition is None else condition[start:start + batch_size]
                total[start:start + batch_size] += self._nelbo(chunk, u, generator, cond)
        return -total / samples

    validation_unit = "bits/dim"

    @torch.no_grad()
    def validation_loss(self, data: torch.Tensor, samples: int = 4, seed: int = 0, batch_size: int = 512) -> float:
        """Mean bits per dimension of ``data`` (fixed seed, so comparable across evaluations)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return float(self.bits_per_dim(data.to(self.device), samples, generator, batch_size).mean())
