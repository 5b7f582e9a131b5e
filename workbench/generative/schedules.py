"""Noise schedules for masking diffusion: how many tokens are masked at time t in [0, 1]."""

from __future__ import annotations

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
