"""Denoiser networks, built from a config (as stored in checkpoints).

- :class:`ConvDenoiser` (masked diffusion): (noisy one-hot tokens, time) -> logits of the clean tokens;
- :class:`UNet` (Gaussian diffusion over images and grids, 1-3 spatial dims) and :class:`MLPDenoiser`
  (Gaussian diffusion over vectors): (noisy tensor, time, optional class label) -> a tensor of the same shape.

Class-conditional denoisers take ``condition [B]`` int64 labels; -1 (or no condition) is the learned
"no label" embedding, so one network serves conditional and unconditional sampling.
"""

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


class LabelEmbedding(nn.Module):
    """Class labels ``[B]`` (-1 = none) -> ``[B, dim]``; index ``num_classes`` is the "no label" embedding."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, condition: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        if condition is None:
            condition = torch.full((batch,), -1, dtype=torch.long, device=device)
        condition = condition.long()
        if condition.shape != (batch,):
            raise ValueError(f"condition must hold one label per row [{batch}], got shape {list(condition.shape)}")
        if condition.numel() and (int(condition.min()) < -1 or int(condition.max()) >= self.num_classes):
            raise ValueError(f"condition labels must be in [0, {self.num_classes - 1}] (or -1 for none), got "
                             f"[{int(condition.min())}, {int(condition.max())}]")
        return self.table(torch.where(condition < 0, self.num_classes, condition))


def _embedding(net: nn.Module, t: torch.Tensor, condition: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """The time embedding ``[B, E]`` of ``net``, plus its label embedding when it is class-conditional."""
    emb = net.time(t)
    if net.labels is not None:
        return emb + net.labels(condition, x.shape[0], x.device)
    if condition is not None:
        raise ValueError("this denoiser is unconditional (num_classes = 0); it takes no condition")
    return emb


_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _groups(channels: int) -> int:
    return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv; FiLM by the time (and label) embedding; GroupNorm, SiLU, dropout, conv; residual."""

    def __init__(self, dims: int, cin: int, cout: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        conv = _CONVS[dims]
        self.norm1, self.conv1 = nn.GroupNorm(_groups(cin), cin), conv(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(cout), cout), conv(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = conv(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """h: ``[B, cin, *S]``, emb: ``[B, E]`` -> ``[B, cout, *S]``."""
        z = self.conv1(nn.functional.silu(self.norm1(h)))
        scale, shift = self.film(emb).reshape(emb.shape[0], -1, *([1] * (h.dim() - 2))).chunk(2, dim=1)
        z = self.norm2(z) * (1 + scale) + shift
        return self.skip(h) + self.conv2(self.drop(nn.functional.silu(z)))


class SpatialAttention(nn.Module):
    """Multi-head self-attention over all positions of a feature map, residual."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, c = h.shape[:2]
        tokens = self.norm(h).reshape(b, c, -1).transpose(1, 2)  # [B, P, C]
        q, k, v = self.qkv(tokens).reshape(b, -1, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attended = nn.functional.scaled_dot_product_attention(q, k, v)  # [B, heads, P, C / heads]
        attended = attended.transpose(1, 2).reshape(b, -1, c)
        return h + self.out(attended).transpose(1, 2).reshape(h.shape)


class UNet(nn.Module):
    """A small U-Net for images (``dims=2``), signals (1) or voxel grids (3): ``[B, C, *S] -> [B, C, *S]``.

    ``mults`` sets the width of each resolution level (``base * mult``), each halving the spatial size;
    ``attention`` (one bool per level) adds self-attention after that level's blocks. Odd sizes are
    fine (28 -> 14 -> 7 -> 4 and back: the up path resizes to its skip connection).
    """

    def __init__(self, channels: int = 1, dims: int = 2, base: int = 64, mults: tuple[int, ...] | list[int] = (1, 2, 2),
                 blocks: int = 2, attention: tuple[bool, ...] | list[bool] | None = None, time_dim: int = 128,
                 num_classes: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        if dims not in _CONVS:
            raise ValueError(f"dims must be 1, 2 or 3, got {dims}")
        mults = [int(m) for m in mults]
        attention = [False] * (len(mults) - 1) + [True] if attention is None else [bool(a) for a in attention]
        if len(attention) != len(mults):
            raise ValueError(f"need one attention flag per level: {len(mults)} levels, {len(attention)} flags")
        self.config = {"kind": "unet", "channels": channels, "dims": dims, "base": base, "mults": mults,
                       "blocks": blocks, "attention": attention, "time_dim": time_dim, "num_classes": num_classes,
                       "dropout": dropout}
        conv = _CONVS[dims]
        self.time = TimeEmbedding(time_dim)
        self.labels = LabelEmbedding(num_classes, time_dim) if num_classes else None
        self.conv_in = conv(channels, base, 3, padding=1)
        self.down, skips, ch = nn.ModuleList(), [base], base
        for level, mult in enumerate(mults):
            for _ in range(blocks):
                self.down.append(ResBlock(dims, ch, base * mult, time_dim, dropout))
                ch = base * mult
                if attention[level]:
                    self.down.append(SpatialAttention(ch))
                skips.append(ch)
            if level < len(mults) - 1:
                self.down.append(conv(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.middle = nn.ModuleList([ResBlock(dims, ch, ch, time_dim, dropout), SpatialAttention(ch),
                                     ResBlock(dims, ch, ch, time_dim, dropout)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(dims, ch + skips.pop(), base * mult, time_dim, dropout))
                ch = base * mult
                if attention[level]:
                    self.up.append(SpatialAttention(ch))
            if level > 0:
                self.up.append(conv(ch, ch, 3, padding=1))  # after resizing to the skip's size
        self.out = nn.Sequential(nn.GroupNorm(_groups(ch), ch), nn.SiLU(), conv(ch, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``[B, C, *S]``, t: ``[B]`` in [0, 1], condition: ``[B]`` labels or None -> ``[B, C, *S]``."""
        emb = _embedding(self, t, condition, x)
        h = self.conv_in(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            if not isinstance(layer, SpatialAttention):
                skips.append(h)
        for layer in self.middle:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
            elif isinstance(layer, SpatialAttention):
                h = layer(h)
            else:  # upsample to the next skip's size, then a conv
                h = layer(nn.functional.interpolate(h, size=skips[-1].shape[2:], mode="nearest"))
        return self.out(h)


class MLPDenoiser(nn.Module):
    """Residual MLP for vectors: ``[B, D] -> [B, D]``, with the time (and label) embedding as FiLM."""

    def __init__(self, dim: int, hidden: int = 256, layers: int = 4, time_dim: int = 64, num_classes: int = 0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.config = {"kind": "mlp", "dim": dim, "hidden": hidden, "layers": layers, "time_dim": time_dim,
                       "num_classes": num_classes, "dropout": dropout}
        self.time = TimeEmbedding(time_dim)
        self.labels = LabelEmbedding(num_classes, time_dim) if num_classes else None
        self.inp = nn.Linear(dim, hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.films = nn.ModuleList(nn.Linear(time_dim, 2 * hidden) for _ in range(layers))
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.SiLU(), nn.Dropout(dropout),
                                                nn.Linear(2 * hidden, hidden)) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``[B, D]``, t: ``[B]``, condition: ``[B]`` or None -> ``[B, D]``."""
        emb = _embedding(self, t, condition, x)
        h = self.inp(x)
        for norm, film, mlp in zip(self.norms, self.films, self.mlps):
            scale, shift = film(emb).chunk(2, dim=1)
            h = h + mlp(norm(h) * (1 + scale) + shift)
        return self.out(h)


_KINDS = {"conv": ConvDenoiser, "unet": UNet, "mlp": MLPDenoiser}


def build_denoiser(config: dict[str, Any]) -> nn.Module:
    """Rebuild a denoiser from its ``config`` (as stored in checkpoints)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"unknown denoiser kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[kind](**config)
