"""Noise schedules: how many tokens are masked (masked diffusion) or how much signal is left (Gaussian) at time t in [0, 1]."""

from __future__ import annotations

import math

import torch


class LogLinearSchedule:
    """MDLM's log-linear schedule: total noise sigma(t) = -log(1 - (1 - eps) t).

    A token is masked at time t with probability ``move_chance(t) = 1 - exp(-sigma(t)) =
    (1 - eps) t``: clean data at t = 0, (almost) all masked at t = 1. ``eps`` keeps the
    ELBO weight finite at t = 1.
    """

    def __init__(self, eps: float = 1e-3) -> None:
        if not 0.0 < eps < 1.0:
            raise ValueError(f"eps must be in (0, 1), got {eps}")
        self.eps = float(eps)

    def move_chance(self, t: torch.Tensor) -> torch.Tensor:
        """Probability that a token is masked at time ``t`` (any shape)."""
        return (1.0 - self.eps) * t

    def reveal_chances(self, t: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(unmask, stay): the chances that a token masked at time ``t`` is revealed by time ``s < t``,
        ``(m_t - m_s) / m_t``, or is still masked, ``m_s / m_t``, with ``m = move_chance``."""
        mt, ms = self.move_chance(t), self.move_chance(s)
        return (mt - ms) / mt, ms / mt

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(-(1.0 - self.eps) * t)

    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        """d sigma / expm1(sigma): the continuous-time ELBO weight of the masked tokens' loss (= 1/t here)."""
        return 1.0 / t.clamp_min(1e-8)

    def to_spec(self) -> dict:
        return {"kind": "loglinear", "eps": self.eps}


class CosineSchedule:
    """The cosine schedule of Gaussian diffusion in log-SNR form (Nichol and Dhariwal, 2021; Kingma et al., 2021).

    ``logsnr(t) = -2 log tan(a t + b)``, with ``a, b`` chosen so that ``logsnr(0) = logsnr_max`` and
    ``logsnr(1) = logsnr_min``; ``alpha_t^2 = sigmoid(logsnr)`` and ``sigma_t^2 = sigmoid(-logsnr)``
    (variance preserving): ``alpha_t^2`` is the familiar ``cos^2`` curve, kept off 0 and 1 so every
    quantity stays finite.
    """

    def __init__(self, logsnr_min: float = -15.0, logsnr_max: float = 15.0) -> None:
        if not logsnr_min < logsnr_max:
            raise ValueError(f"need logsnr_min < logsnr_max, got {logsnr_min}, {logsnr_max}")
        self.logsnr_min, self.logsnr_max = float(logsnr_min), float(logsnr_max)
        self._b = math.atan(math.exp(-0.5 * self.logsnr_max))
        self._a = math.atan(math.exp(-0.5 * self.logsnr_min)) - self._b

    def logsnr(self, t: torch.Tensor) -> torch.Tensor:
        """log(alpha_t^2 / sigma_t^2) at times ``t`` (any shape)."""
        return -2.0 * torch.log(torch.tan(self._a * t + self._b))

    def dlogsnr_dt(self, t: torch.Tensor) -> torch.Tensor:
        """The derivative of :meth:`logsnr` (negative: the signal fades with time)."""
        return -4.0 * self._a / torch.sin(2.0 * (self._a * t + self._b))

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t) at times ``t``: ``x_t = alpha_t x_0 + sigma_t eps``."""
        logsnr = self.logsnr(t)
        return torch.sigmoid(logsnr).sqrt(), torch.sigmoid(-logsnr).sqrt()

    def time_of(self, logsnr: float) -> float:
        """The time at which the log-SNR equals ``logsnr``."""
        return (math.atan(math.exp(-0.5 * logsnr)) - self._b) / self._a

    def to_spec(self) -> dict:
        return {"kind": "cosine", "logsnr_min": self.logsnr_min, "logsnr_max": self.logsnr_max}
