"""A corrector for masked-diffusion sampling (after Layout-Corrector, Iwai et al., ECCV 2024).

A masked prior never revisits a token once it is unmasked, so an early bad choice (an element placed on top of
another, a coordinate that fits nothing) stays to the end. The corrector is a small network that scores how
plausible each unmasked token is given the rest of the sequence; at chosen times of the reverse process the
tokens it scores below a threshold are masked again, and the prior regenerates them in its later steps.

- :class:`Corrector`: the scorer, a :class:`TransformerDenoiser` whose logit of the token present at a position is
  that token's plausibility (a disallowed token gets -1e4: certainly wrong).
- :func:`train_corrector` (with :func:`corrupt`): trains it on a prior's own mistakes: data tokens, partly masked
  by the forward process, of which a share of the unmasked ones is replaced by the prior's draws from
  p(x0 | x_t); the label says whether a token equals the data token.
- :class:`Correction`: when and how hard to correct; the samplers take it as ``corrector=`` and
  :meth:`MaskedDiffusion.correcting` applies it in :meth:`MaskedDiffusion.step`. Fixed tokens of a partial
  design are never re-masked. The corrector's calls are counted apart from the denoiser's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..checkpoints import Checkpointed
from .denoisers import TransformerDenoiser


class Corrector(Checkpointed):
    """Per-token plausibility logits ``[B, L]`` of tokens ``[B, L]`` (MASK allowed) at times ``[B]``."""

    checkpoint_format = "workbench.corrector/1"
    checkpoint_kind = "corrector"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        options = {k: v for k, v in self.config.items() if k not in ("kind", "name")}
        self.network = TransformerDenoiser(**options)
        self.vocab_size = int(self.config["vocab_size"])
        self.calls = 0
        self.rows = 0

    @property
    def name(self) -> str:
        return str(self.config.get("name", "corrector"))

    def forward(self, tokens: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Logits that each unmasked token is right ``[B, L]`` (meaningless at masked positions)."""
        x = nn.functional.one_hot(tokens.long(), self.vocab_size + 1).float()
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device).expand(x.shape[0])
        self.calls += 1
        self.rows += int(x.shape[0])
        logits = self.network(x, t)
        present = tokens.clamp_max(self.vocab_size - 1).long().unsqueeze(-1)
        return logits.gather(-1, present).squeeze(-1).float()


@dataclass
class Correction:
    """Re-mask the unmasked tokens that ``model`` scores below ``threshold`` (a probability) at each reverse step
    that crosses one of ``times`` (in (0, 1], the diffusion time; 1 is all masked)."""

    model: Corrector
    times: Sequence[float] = (0.75, 0.5, 0.25)
    threshold: float = 0.5
    remasked: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, Corrector):
            raise TypeError(f"Correction needs a Corrector, got {type(self.model).__name__}")
        self.times = tuple(float(t) for t in self.times)
        if not self.times or any(not 0.0 < t <= 1.0 for t in self.times):
            raise ValueError(f"correction times must be in (0, 1], got {self.times}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold is a probability in (0, 1), got {self.threshold}")

    def due(self, t: Any, s: Any) -> bool:
        """Whether the step from ``t`` down to ``s`` crosses a correction time."""
        t, s = float(torch.as_tensor(t).max()), float(torch.as_tensor(s).max())
        return any(s < tau <= t for tau in self.times)

    @torch.no_grad()
    def apply(self, xt: torch.Tensor, t: Any, mask_index: int, fixed: torch.Tensor | None = None) -> torch.Tensor:
        """``xt [B, L]`` with the implausible unmasked tokens (not ``fixed [B, L]``) set to ``mask_index``."""
        self.model.to(xt.device)
        score = torch.sigmoid(self.model(xt, torch.as_tensor(t, device=xt.device).float().max()))
        remask = (xt != mask_index) & (score < self.threshold)
        if fixed is not None:
            remask &= ~fixed
        self.remasked += int(remask.sum())
        return torch.where(remask, mask_index, xt)

    def __repr__(self) -> str:  # stable (no addresses): studies record their optimizer's parameters
        return f"Correction({self.model.name!r}, times={list(self.times)}, threshold={self.threshold})"


@torch.no_grad()
def corrupt(prior: Any, x0: torch.Tensor, t: torch.Tensor, share: float, generator: torch.Generator | None = None,
            per_row: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A corrector's input: tokens ``x0 [B, L]`` masked by the forward process at times ``t [B]``, then each unmasked
    token swapped, with probability ``share`` (``per_row``: ``u * share``, ``u ~ U(0, 1)`` per row), for the prior's
    draw from p(x0 | x_t) at that position given the rest -> (tokens ``[B, L]``, masked ``[B, L]`` bool)."""
    masked = torch.rand(x0.shape, generator=generator, device=x0.device) < prior.schedule.move_chance(t)[:, None]
    xt = torch.where(masked, prior.mask_index, x0)
    if per_row:
        share = torch.rand(len(x0), 1, generator=generator, device=x0.device) * share
    swap = (~masked) & (torch.rand(x0.shape, generator=generator, device=x0.device) < share)
    guesses = prior.denoise(torch.where(swap, prior.mask_index, xt), t, sample=True, generator=generator)
    return torch.where(swap, guesses, xt), masked


def train_corrector(prior: Any, data: torch.Tensor, steps: int = 2000, batch_size: int = 128, lr: float = 3e-4,
                    replace: float = 0.3, seed: int = 0, name: str = "corrector", seconds: float | None = None,
                    log_every: int = 0, **network: Any) -> tuple[Corrector, list[float]]:
    """Train a :class:`Corrector` for the masked prior ``prior`` on token rows ``data [N, L]``.

    Each batch: times ``t ~ U(0.02, 1)``, the forward process masks the data, then each unmasked token is swapped,
    with probability ``u * replace`` (``u ~ U(0, 1)`` per row), for a draw of the prior's p(x0 | x_t); the
    corrector learns, by binary cross-entropy over the unmasked positions with right and wrong tokens weighed
    equally, whether each token is the data's.
    The network options (``hidden``, ``layers``, ...) default to a small transformer (hidden 128, 3 layers) of
    the prior's length and vocabulary, with the prior denoiser's position groups when it has them. ``seconds``
    stops early. Returns the corrector (eval mode, on the prior's device) and the loss per step; the same seed
    gives the same corrector (torch's global generator is seeded inside and restored after).
    """
    if data.dim() != 2 or data.shape[1] != prior.length:
        raise ValueError(f"data must be token rows [N, {prior.length}], got shape {list(data.shape)}")
    device = prior.device
    denoiser_config = getattr(prior.denoiser, "config", {})
    config = {"kind": "corrector", "name": name, "vocab_size": prior.vocab_size, "length": prior.length,
              "hidden": 128, "layers": 3, "heads": 4, "dropout": 0.1,
              "position_groups": denoiser_config.get("position_groups"),
              "group_tokens": denoiser_config.get("group_tokens"), **network}
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)  # the network's initialization and dropout draw from torch's global generator
        return _train(prior, data, Corrector(config).to(device), steps, batch_size, lr, replace, seed, seconds,
                      log_every)


def _train(prior: Any, data: torch.Tensor, model: Corrector, steps: int, batch_size: int, lr: float, replace: float,
           seed: int, seconds: float | None, log_every: int) -> tuple[Corrector, list[float]]:
    """The training loop of :func:`train_corrector`."""
    device = prior.device
    generator = torch.Generator(device=device).manual_seed(seed)
    cpu = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    data = prior.check_tokens(data, allow_mask=False)
    losses: list[float] = []
    started = time.perf_counter()
    prior.eval()
    model.train()
    for step in range(steps):
        x0 = data[torch.randint(0, len(data), (batch_size,), generator=cpu)].to(device)
        t = torch.rand(batch_size, generator=generator, device=device) * 0.98 + 0.02
        tokens, masked = corrupt(prior, x0, t, replace, generator, per_row=True)
        right = (tokens == x0).float()
        logits = model(tokens, t)
        keep = (~masked).float()
        # wrong tokens are rare: weigh the two classes equally, so that a probability of 0.5 separates them
        n_right, n_wrong = (keep * right).sum(), (keep * (1 - right)).sum()
        weight = keep * torch.where(right > 0, 0.5 / n_right.clamp_min(1.0), 0.5 / n_wrong.clamp_min(1.0))
        loss = (nn.functional.binary_cross_entropy_with_logits(logits, right, reduction="none") * weight).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            print(f"corrector step {step + 1}: loss {sum(losses[-log_every:]) / log_every:.4f}", flush=True)
        if seconds is not None and time.perf_counter() - started > seconds:
            break
    model.eval()
    model.requires_grad_(False)
    model.calls = model.rows = 0
    return model, losses
