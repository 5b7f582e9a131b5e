"""Denoiser networks for masked diffusion: (noisy one-hot tokens, time) -> logits of the clean tokens."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t in [0, 1] followed by an MLP: ``[B] -> [B, dim]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        angles = 1000.0 * t.float().unsqueeze(1) * freqs.unsqueeze(0)
        return self.mlp(torch.cat([angles.sin(), angles.cos()], dim=1))


class DilatedBlock(nn.Module):
    """Pre-norm residual block: LayerNorm, time FiLM, dilated conv, GELU, pointwise conv."""

    def __init__(self, hidden: int, kernel: int, dilation: int, time_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.film = nn.Linear(time_dim, 2 * hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.mix = nn.Conv1d(hidden, hidden, 1)
        self.drop = nn.Dropout(dropout)
        nn.init.zeros_(self.mix.weight)
        nn.init.zeros_(self.mix.bias)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """h: ``[B, L, H]``, temb: ``[B, T]`` -> ``[B, L, H]``."""
        scale, shift = self.film(temb).unsqueeze(1).chunk(2, dim=2)
        z = self.norm(h) * (1 + scale) + shift
        z = nn.functional.gelu(self.conv(z.transpose(1, 2)))
        return h + self.drop(self.mix(z)).transpose(1, 2)


class ConvDenoiser(nn.Module):
    """Dilated residual CNN denoiser.

    Input is a (possibly relaxed) one-hot ``[B, L, V + 1]`` (last entry = MASK), so the
    same network serves hard sampling and the Gumbel-softmax steps that carry gradients.
    Output: logits over the ``V`` real tokens ``[B, L, V]``.
    """

    def __init__(self, vocab_size: int, hidden: int = 256, blocks: int = 8, kernel: int = 5,
                 dilations: tuple[int, ...] | list[int] | None = None, time_dim: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        dilations = list(dilations) if dilations is not None else [2 ** (i % 6) for i in range(blocks)]
        if len(dilations) != blocks:
            raise ValueError(f"need one dilation per block: {blocks} blocks, {len(dilations)} dilations")
        self.config = {"kind": "conv", "vocab_size": vocab_size, "hidden": hidden, "blocks": blocks,
                       "kernel": kernel, "dilations": dilations, "time_dim": time_dim, "dropout": dropout}
        self.embed = nn.Linear(vocab_size + 1, hidden)
        self.time = TimeEmbedding(time_dim)
        self.blocks = nn.ModuleList(DilatedBlock(hidden, kernel, d, time_dim, dropout) for d in dilations)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, vocab_size)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: ``[B, L, V + 1]`` float, t: ``[B]`` -> logits ``[B, L, V]``."""
        h = self.embed(x)
        temb = self.time(t)
        for block in self.blocks:
            h = block(h, temb)
        return self.out(self.norm(h))


def build_denoiser(config: dict[str, Any]) -> nn.Module:
    """Rebuild a denoiser from its ``config`` (as stored in checkpoints)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind == "conv":
        return ConvDenoiser(**config)
    raise ValueError(f"unknown denoiser kind {kind!r}; known: 'conv'")
