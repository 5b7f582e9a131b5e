"""ProteinMPNN as a masked-diffusion prior over the sequences of one backbone.

:class:`MPNNDenoiser` has the interface of :class:`workbench.generative.ConvDenoiser`: relaxed one-hots
``[B, L, 21]`` (20 amino acids + MASK) and times ``[B]`` -> logits ``[B, L, 20]``. The known weight of a
position is ``1 - its MASK mass``; the decoder reads known positions in a fixed order (a seeded random
permutation) and every masked position sees all known ones and no other masked one, so each masked position
gets ProteinMPNN's conditional ``p(x_i | known residues, backbone)`` in one pass: an any-order denoiser (the
time is not used). The residue features are ``x[..., :20] @ W_s`` (the sequence embedding), so relaxed
inputs carry gradients (DRAKES). The structure encoder runs once per backbone; its output is held as
non-persistent buffers (they follow ``.to(device)`` and ``deepcopy``, and stay out of state dicts), so
fine-tuning changes the decoder, the sequence embedding and the output layer, and the encoder is frozen.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from workbench.generative import MaskedDiffusion

from .mpnn import Encoding, ProteinMPNN, backbone_key, encode_backbone, load_mpnn
from .structure import ALPHABET, Backbone, load_backbone

PRIOR_CHECKPOINT = "vanilla_v_48_020"
ORDER_SEED = 0
#: rows per decoder chunk, as a number of (row, residue, neighbour) edges: bounds the [B, L, K, 128] buffers
EDGES_PER_CHUNK = 1 << 19


def decoding_rank(length: int, seed: int = ORDER_SEED) -> torch.Tensor:
    """A fixed random decoding order: the rank of each position ``[L]`` (int64), from a seeded generator."""
    order = torch.randperm(length, generator=torch.Generator().manual_seed(seed))
    return torch.empty_like(order).scatter_(0, order, torch.arange(length))


def rank_before(rank: torch.Tensor, neighbors: torch.Tensor) -> torch.Tensor:
    """``[L, K]`` bool: neighbour j of i comes before i in the order given by ``rank [L]``."""
    return rank[neighbors] < rank[:, None].to(neighbors.device)


class MPNNDenoiser(nn.Module):
    """ProteinMPNN's decoder on one encoded backbone as a masked-diffusion denoiser (see the module docstring).

    ``mpnn`` is copied (the caller's network is left untouched); ``rank [L]`` is the decoding order among known
    positions (default: :func:`decoding_rank`)."""

    def __init__(self, mpnn: ProteinMPNN, encoding: Encoding, rank: torch.Tensor | None = None,
                 name: str = "") -> None:
        super().__init__()
        length = encoding.nodes.shape[0]
        self.mpnn = copy.deepcopy(mpnn)
        self.length = length
        self.name = name
        rank = decoding_rank(length) if rank is None else rank
        self.register_buffer("nodes", encoding.nodes.detach().clone(), persistent=False)
        self.register_buffer("edges", encoding.edges.detach().clone(), persistent=False)
        self.register_buffer("neighbors", encoding.neighbors.clone(), persistent=False)
        self.register_buffer("before", rank_before(rank.to(encoding.neighbors.device), encoding.neighbors),
                             persistent=False)

    @property
    def config(self) -> dict[str, Any]:
        return {"kind": "proteinmpnn", "backbone": self.name, "length": self.length}

    @property
    def encoding(self) -> Encoding:
        return Encoding(self.nodes, self.edges, self.neighbors)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """Relaxed one-hots ``x [B, L, 21]`` (last = MASK), times ``t [B]`` (unused) -> logits ``[B, L, 20]``."""
        if x.dim() != 3 or x.shape[1] != self.length or x.shape[2] != len(ALPHABET) + 1:
            raise ValueError(f"expected relaxed one-hots [B, {self.length}, {len(ALPHABET) + 1}], got {list(x.shape)}")
        encoding = self.encoding
        rows = max(1, EDGES_PER_CHUNK // (self.length * self.neighbors.shape[1]))
        out = [self.mpnn.decode(encoding, chunk[..., :-1], 1.0 - chunk[..., -1], self.before)
               for chunk in x.float().split(rows)]
        return torch.cat(out) if len(out) > 1 else out[0]


_PRIORS: dict[tuple[str, str, str], MaskedDiffusion] = {}


def build_prior(backbone: str | Backbone, checkpoint: str = PRIOR_CHECKPOINT,
                device: str | torch.device = "cpu") -> MaskedDiffusion:
    """A fresh ``MaskedDiffusion(MPNNDenoiser, vocab_size=20, length=L)`` for ``backbone``, frozen, in eval mode."""
    backbone = load_backbone(backbone)
    denoiser = MPNNDenoiser(load_mpnn(checkpoint, device), encode_backbone(checkpoint, backbone, device),
                            name=f"{backbone.name}/{checkpoint}")
    prior = MaskedDiffusion(denoiser, vocab_size=len(ALPHABET), length=backbone.length).to(device).eval()
    prior.meta = {"backbone": backbone.name, "checkpoint": checkpoint, "order_seed": ORDER_SEED}
    for p in prior.parameters():
        p.requires_grad_(False)
    return prior


def load_prior(backbone: str | Backbone, checkpoint: str = PRIOR_CHECKPOINT,
               device: str | torch.device = "cpu") -> MaskedDiffusion:
    """:func:`build_prior`, built once per (backbone, checkpoint, device) and process and shared by its callers
    (do not modify it; samplers that fine-tune ``clone()`` it)."""
    backbone = load_backbone(backbone)
    key = (backbone_key(backbone), checkpoint, str(torch.device(device)))
    if key not in _PRIORS:
        _PRIORS[key] = build_prior(backbone, checkpoint, device)
    return _PRIORS[key]
