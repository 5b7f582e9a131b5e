"""Denoiser networks, built from a config (as stored in checkpoints).

- :class:`ConvDenoiser` and :class:`TransformerDenoiser` (masked diffusion): (noisy one-hot tokens, time) ->
  logits of the clean tokens; the transformer can restrict each position to a set of tokens (structured
  sequences such as layouts, where a position holds a class or one coordinate);
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


class TransformerDenoiser(nn.Module):
    """Bidirectional transformer denoiser for masked diffusion over structured token sequences.

    Input: a (possibly relaxed) one-hot ``[B, L, V + 1]`` (last entry = MASK) and times ``[B]``; output: logits
    over the ``V`` real tokens ``[B, L, V]``. A learned position embedding and the time embedding are added to
    the token embedding. ``position_groups`` (``L`` group ids) with ``group_tokens`` (the token ids allowed in
    each group) restrict what each position may hold: the other logits are set to -1e4, so the prior never
    puts, say, a coordinate token where an element's class belongs (LayoutDM's logit masking).
    ``record`` and ``pad``: the sequence is made of records (elements) of ``record`` positions that are padded
    whole: token ``pad`` stands at every position of a record or at none. Each position's pad logit then gets
    ``log P(no other position of its record holds a real token)`` and its other logits ``log P(no other
    position is pad)``, from the (relaxed) input: once one token of an element is known, the others follow.
    """

    def __init__(self, vocab_size: int, length: int, hidden: int = 256, layers: int = 4, heads: int = 4,
                 ff: int | None = None, time_dim: int = 128, dropout: float = 0.1,
                 position_groups: list[int] | None = None, group_tokens: list[list[int]] | None = None,
                 record: int | None = None, pad: int | None = None) -> None:
        super().__init__()
        if (record is None) != (pad is None) or (record is not None and (length % record or not 0 <= pad < vocab_size)):
            raise ValueError(f"record ({record}) must divide the length ({length}) and pad ({pad}) be a token id")
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
        if (position_groups is None) != (group_tokens is None):
            raise ValueError("give position_groups and group_tokens together")
        ff = ff or 4 * hidden
        self.config = {"kind": "transformer", "vocab_size": vocab_size, "length": length, "hidden": hidden,
                       "layers": layers, "heads": heads, "ff": ff, "time_dim": time_dim, "dropout": dropout,
                       "position_groups": position_groups, "group_tokens": group_tokens, "record": record, "pad": pad}
        self.record, self.pad = record, pad
        self.embed = nn.Linear(vocab_size + 1, hidden)
        self.position = nn.Parameter(torch.randn(length, hidden) * 0.02)
        self.time = TimeEmbedding(time_dim)
        self.time_proj = nn.Linear(time_dim, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, ff, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, vocab_size)
        blocked = torch.zeros(length, vocab_size, dtype=torch.bool)
        if position_groups is not None:
            if len(position_groups) != length:
                raise ValueError(f"position_groups needs one group per position: {length}, got {len(position_groups)}")
            allowed = torch.zeros(len(group_tokens), vocab_size, dtype=torch.bool)
            for g, tokens in enumerate(group_tokens):
                if not tokens or min(tokens) < 0 or max(tokens) >= vocab_size:
                    raise ValueError(f"group {g} must allow token ids in [0, {vocab_size - 1}], got {tokens}")
                allowed[g, tokens] = True
            blocked = ~allowed[torch.as_tensor(position_groups)]
        self.register_buffer("blocked", blocked, persistent=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: ``[B, L, V + 1]`` float, t: ``[B]`` -> logits ``[B, L, V]``."""
        h = self.embed(x) + self.position + self.time_proj(self.time(t)).unsqueeze(1)
        logits = self.out(self.norm(self.encoder(h))).float()
        if self.record is not None:
            logits = logits + self._record_bias(x.float())
        return logits.masked_fill(self.blocked, -1e4)

    def _record_bias(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``[B, L, V]`` that a pad or a real token at each position agrees with the rest of
        its record (see the class docstring)."""
        b, length, _ = x.shape
        r = self.record
        pad = x[..., self.pad].reshape(b, length // r, r)
        real = (1.0 - pad - x[..., -1].reshape(b, length // r, r)).clamp(0.0, 1.0)
        others = 1.0 - torch.eye(r, device=x.device, dtype=x.dtype)  # [i, j]: j is another position of i's record
        # product over the other positions j of (1 - p_j): log-sum of log(1 - p_j) over j != i
        log_no_real = (torch.log((1.0 - real).clamp_min(1e-12)).unsqueeze(-2) * others).sum(-1)
        log_no_pad = (torch.log((1.0 - pad).clamp_min(1e-12)).unsqueeze(-2) * others).sum(-1)
        bias = log_no_pad.reshape(b, length, 1).expand(b, length, self.out.out_features).clone()
        bias[..., self.pad] = log_no_real.reshape(b, length)
        return bias


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


_KINDS = {"conv": ConvDenoiser, "transformer": TransformerDenoiser, "unet": UNet, "mlp": MLPDenoiser}


def build_denoiser(config: dict[str, Any]) -> nn.Module:
    """Rebuild a denoiser from its ``config`` (as stored in checkpoints)."""
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in _KINDS:
        raise ValueError(f"unknown denoiser kind {kind!r}; known: {sorted(_KINDS)}")
    return _KINDS[kind](**config)
