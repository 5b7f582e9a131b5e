"""Value networks for SVDD-MC: v(x_t, t) ~ E[r(x0) | x_t], regressed on rewards of prior rollouts.

The network's input is the prior's ``features(x_t)``; its form picks the architecture: one-hot
sequences ``[B, L, C]`` a dilated CNN, images or grids ``[B, C, *S]`` a small CNN, vectors ``[B, D]``
an MLP, each with the time as FiLM conditioning.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from workbench.generative.denoisers import DilatedBlock, ResBlock, TimeEmbedding


class SequenceValueNetwork(nn.Module):
    """Dilated CNN over (partially masked) one-hot sequences ``[B, L, C]`` and time ``[B]`` -> value ``[B]``."""

    def __init__(self, channels: int, hidden: int = 128, blocks: int = 4, kernel: int = 5, time_dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Linear(channels, hidden)
        self.time = TimeEmbedding(time_dim)
        self.blocks = nn.ModuleList(DilatedBlock(hidden, kernel, 2 ** i, time_dim, 0.0) for i in range(blocks))
        self.head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        temb = self.time(t)
        for block in self.blocks:
            h = block(h, temb)
        return self.head(h.mean(dim=1)).squeeze(-1)


class GridValueNetwork(nn.Module):
    """Residual CNN over noisy images or grids ``[B, C, *S]`` and time ``[B]`` -> value ``[B]``: two
    resolutions, then global average pooling."""

    def __init__(self, channels: int, dims: int, hidden: int = 64, time_dim: int = 64) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        self.time = TimeEmbedding(time_dim)
        self.inp = conv(channels, hidden, 3, padding=1)
        self.block1 = ResBlock(dims, hidden, hidden, time_dim, 0.0)
        self.down = conv(hidden, 2 * hidden, 3, stride=2, padding=1)
        self.block2 = ResBlock(dims, 2 * hidden, 2 * hidden, time_dim, 0.0)
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time(t)
        h = self.block2(self.down(self.block1(self.inp(x), temb)), temb)
        return self.head(h.flatten(2).mean(dim=2)).squeeze(-1)


class VectorValueNetwork(nn.Module):
    """MLP over noisy vectors ``[B, D]`` and time ``[B]`` -> value ``[B]``."""

    def __init__(self, dim: int, hidden: int = 128, time_dim: int = 64) -> None:
        super().__init__()
        self.time = TimeEmbedding(time_dim)
        self.net = nn.Sequential(nn.Linear(dim + time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.time(t)], dim=1)).squeeze(-1)


def build_value_network(example: torch.Tensor, sequence: bool) -> nn.Module:
    """A value network for prior features shaped like ``example [B, ...]``; ``sequence``: one-hot tokens."""
    if sequence:
        return SequenceValueNetwork(example.shape[-1])
    if example.dim() == 2:
        return VectorValueNetwork(example.shape[1])
    return GridValueNetwork(example.shape[1], example.dim() - 2)


def fit_value_network(net: nn.Module, states: torch.Tensor, times: torch.Tensor, targets: torch.Tensor,
                      features: Callable[[torch.Tensor], torch.Tensor], epochs: int, batch_size: int, lr: float,
                      generator: torch.Generator) -> list[float]:
    """Regress ``net`` on (``features(states)``, times ``[N]``) -> standardized ``targets [N]``.

    ``states [N, ...]`` are stored compactly (tokens as uint8) and turned into network inputs per batch.
    Returns the mean squared error per epoch (on standardized targets).
    """
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    n = len(states)
    losses = []
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator, device=generator.device).to(states.device)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.mse_loss(net(features(states[idx]), times[idx]), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
    net.eval()
    return losses
