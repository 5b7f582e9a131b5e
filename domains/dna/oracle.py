"""CNN oracles: accessibility logits of a 200 bp sequence in each of the four cell types.

``Oracle`` maps one-hot (or soft, probability) sequences ``[n, 200, 4]`` to logits ``[n, 4]`` (columns in
``CELL_TYPES`` order; sigmoid = probability that the site is accessible in that cell type, trained one
cell type against the rest). The output is the average over the sequence and its reverse complement,
so both strands score alike. Soft inputs flow through unchanged, so rewards are differentiable
with respect to the input probabilities (gradient-based samplers such as DRAKES need that).

Two oracles ship, trained on disjoint chromosome halves (``data.HALVES``): "a" is the reward oracle an
optimizer sees, "b" the held-out oracle its designs are judged by. A checkpoint is a plain dict
``{"format", "config", "state"}`` written by ``torch.save`` and read with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.checkpoints import Checkpointed, read_checkpoint

from .data import ALPHABET, CELL_TYPES

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
#: oracle role -> the chromosome half it was trained on
ROLES = {"reward": "a", "heldout": "b"}


def reverse_complement(x: torch.Tensor) -> torch.Tensor:
    """Reverse complement of one-hot (or soft) sequences ``[n, L, 4]`` in A, C, G, T order: flip both axes."""
    return x.flip(1, 2)


class Oracle(Checkpointed):
    """Three convolution blocks, global max and mean pooling, one linear layer to ``len(CELL_TYPES)`` logits.

    Blocks 1 and 2 are conv, max-pool, batch norm, ReLU, dropout (pooling before the element-wise layers
    makes them 4x cheaper on a CPU); block 3 is conv, batch norm, ReLU.

    config: ``channels`` (3 ints), ``kernels`` (3 ints), ``pools`` (2 ints), ``dropout``; training adds
    ``half``, ``seed``, ``metrics``.
    """

    checkpoint_format = "dna-oracle/1"
    checkpoint_kind = "DNA oracle"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        c, k, p = config["channels"], config["kernels"], config["pools"]
        if len(c) != 3 or len(k) != 3 or len(p) != 2:
            raise ValueError(f"config needs 3 channels, 3 kernels and 2 pools, got {c}, {k}, {p}")
        drop = float(config.get("dropout", 0.0))
        ins = [len(ALPHABET), c[0], c[1]]
        layers: list[nn.Module] = []
        for i in range(3):
            layers.append(nn.Conv1d(ins[i], c[i], k[i], padding=k[i] // 2))
            if i < 2:
                layers.append(nn.MaxPool1d(p[i]))
            layers += [nn.BatchNorm1d(c[i]), nn.ReLU()]
            if i < 2:
                layers.append(nn.Dropout(drop))
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(2 * c[2], len(CELL_TYPES)))

    @property
    def device(self) -> torch.device:
        return self.head[1].weight.device

    def strand_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[n, 4]`` of one strand of ``x: [n, L, 4]`` (no reverse-complement averaging)."""
        h = self.body(x.transpose(1, 2))  # [n, C, L']
        return self.head(torch.cat([h.amax(dim=2), h.mean(dim=2)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One-hot or soft sequences ``[n, L, 4]`` (float) -> logits ``[n, 4]``, averaged over both strands."""
        if x.dim() != 3 or x.shape[2] != len(ALPHABET):
            raise ValueError(f"expected sequences [n, L, {len(ALPHABET)}], got shape {list(x.shape)}")
        x = x.to(self.head[1].weight.dtype)
        n = x.shape[0]
        both = self.strand_logits(torch.cat([x, reverse_complement(x)], dim=0))  # [2n, 4]
        return both.view(2, n, -1).mean(dim=0)


def checkpoint_path(which: str) -> Path:
    """Path of oracle ``which``: a half ("a", "b") or a role ("reward" = a, "heldout" = b)."""
    half = ROLES.get(which, which)
    if half not in ROLES.values():
        raise ValueError(f"unknown oracle {which!r}; use 'reward', 'heldout', 'a' or 'b'")
    return CHECKPOINT_DIR / f"oracle_{half}.pt"


def load_oracle(which: str = "reward", device: str | torch.device | None = None) -> Oracle:
    """A fresh frozen :class:`Oracle` in eval mode from its shipped checkpoint (read once per process)."""
    path = checkpoint_path(which)
    if not path.exists():
        raise FileNotFoundError(f"oracle checkpoint {path} is missing; train it with "
                                f"`python -m domains.dna.train_oracle --half {ROLES.get(which, which)}`")
    model = Oracle.from_checkpoint(read_checkpoint(str(path)))
    return model.to(device) if device is not None else model
