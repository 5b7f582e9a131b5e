"""Value networks for SVDD-MC: v(x_t, t) ~ E[r(x0) | x_t], regressed on rewards of prior rollouts."""

from __future__ import annotations

import torch
from torch import nn

from workbench.generative.denoisers import DilatedBlock, TimeEmbedding


class ValueNetwork(nn.Module):
    """Dilated CNN over (partially masked) one-hot sequences ``[B, L, V + 1]`` and time ``[B]`` -> value ``[B]``."""

    def __init__(self, vocab_size: int, hidden: int = 128, blocks: int = 4, kernel: int = 5, time_dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Linear(vocab_size + 1, hidden)
        self.time = TimeEmbedding(time_dim)
        self.blocks = nn.ModuleList(DilatedBlock(hidden, kernel, 2 ** i, time_dim, 0.0) for i in range(blocks))
        self.head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        temb = self.time(t)
        for block in self.blocks:
            h = block(h, temb)
        return self.head(h.mean(dim=1)).squeeze(-1)


def fit_value_network(net: ValueNetwork, states: torch.Tensor, times: torch.Tensor, targets: torch.Tensor,
                      vocab_size: int, epochs: int, batch_size: int, lr: float,
                      generator: torch.Generator) -> list[float]:
    """Regress ``net`` on (states ``[N, L]`` with MASK = vocab_size, times ``[N]``) -> standardized ``targets [N]``.

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
            x = nn.functional.one_hot(states[idx].long(), vocab_size + 1).float()
            loss = nn.functional.mse_loss(net(x, times[idx]), targets[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
    net.eval()
    return losses
