"""Scores of sequences on a backbone: ProtParam terms and ProteinMPNN fold fit, for hard and relaxed sequences.

All scorers take probabilities ``[B, L, 20]`` over ``ALPHABET`` (one-hot rows for hard sequences):

- :func:`instability`: the instability index of Guruprasad et al. (1990), ``10 / L * sum_i DIWV[s_i, s_i+1]``
  with Biopython's dipeptide table. For relaxed rows it is the expectation under independent positions,
  ``10 / L * sum_i p_i^T DIWV p_i+1`` (exact: the index is bilinear in adjacent residues);
- :func:`gravy`: the mean Kyte-Doolittle hydropathy, ``mean_i p_i . kd`` (linear, so exact in expectation);
- :func:`isoelectric_points`: Biopython's pI of hard sequences (no relaxed form);
- :class:`FoldFit`: ProteinMPNN's score of a sequence on the backbone, the mean per-residue log-likelihood
  ``1/L sum_i log p(s_i | s_<i, backbone)`` in a random decoding order, averaged over ``orders`` fixed
  (seeded) random orders; the 20 amino acids are renormalized without ProteinMPNN's X. Relaxed rows go
  into the network as embeddings ``p_j @ W_s`` and score ``1/L sum_i sum_a p_ia log q_ia`` (the expected
  log-likelihood with the relaxed context plugged in), which is exactly the hard score on one-hot rows.
"""

from __future__ import annotations

import torch

from .mpnn import encode_backbone, load_mpnn
from .prior import EDGES_PER_CHUNK, decoding_rank, rank_before
from .structure import ALPHABET, Backbone

#: seeds of the fold-fit decoding orders are FOLD_FIT_SEED + k (distinct from the prior's order)
FOLD_FIT_SEED = 1000
_TABLES: dict[tuple[str, str], torch.Tensor] = {}


def _table(kind: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Biopython's DIWV dipeptide table ``[20, 20]`` or Kyte-Doolittle hydropathy ``[20]`` in ``ALPHABET`` order."""
    key = (kind, str(device))
    if key not in _TABLES:
        from Bio.SeqUtils import ProtParamData

        if kind == "diwv":
            values = [[ProtParamData.DIWV[a][b] for b in ALPHABET] for a in ALPHABET]
        else:
            values = [ProtParamData.kd[a] for a in ALPHABET]
        _TABLES[key] = torch.tensor(values, dtype=torch.float64, device=device)
    return _TABLES[key].to(dtype)


def _check(probs: torch.Tensor) -> torch.Tensor:
    if probs.dim() != 3 or probs.shape[-1] != len(ALPHABET):
        raise ValueError(f"expected probabilities [B, L, {len(ALPHABET)}], got shape {list(probs.shape)}")
    if not probs.dtype.is_floating_point:
        raise TypeError(f"expected float probabilities, got {probs.dtype}")
    return probs


def instability(probs: torch.Tensor) -> torch.Tensor:
    """Instability index ``[B]`` of sequences ``probs [B, L, 20]`` (expected value for relaxed rows)."""
    probs = _check(probs)
    pairs = torch.einsum("nia,ab,nib->n", probs[:, :-1], _table("diwv", probs.device, probs.dtype), probs[:, 1:])
    return 10.0 * pairs / probs.shape[1]


def gravy(probs: torch.Tensor) -> torch.Tensor:
    """GRAVY (mean Kyte-Doolittle hydropathy) ``[B]`` of ``probs [B, L, 20]``."""
    probs = _check(probs)
    return (probs @ _table("kd", probs.device, probs.dtype)).mean(dim=1)


def isoelectric_points(sequences: list[str]) -> torch.Tensor:
    """Biopython's isoelectric point ``[B]`` float64 of one-letter sequences."""
    from Bio.SeqUtils.IsoelectricPoint import IsoelectricPoint

    return torch.tensor([IsoelectricPoint(s).pi() for s in sequences], dtype=torch.float64)


class FoldFit:
    """ProteinMPNN checkpoint ``checkpoint``'s fold fit on ``backbone`` (see the module docstring).

    The network and the backbone's encoding are loaded once per device; ``orders`` fixed decoding orders
    (seeds ``FOLD_FIT_SEED + k``) make the score deterministic; one decoder pass per order and chunk."""

    def __init__(self, checkpoint: str, backbone: Backbone, orders: int = 4) -> None:
        if orders < 1:
            raise ValueError(f"orders must be >= 1, got {orders}")
        self.checkpoint = checkpoint
        self.backbone = backbone
        self.ranks = torch.stack([decoding_rank(backbone.length, FOLD_FIT_SEED + k) for k in range(orders)])

    def per_residue(self, probs: torch.Tensor) -> torch.Tensor:
        """Expected log-likelihood of each residue ``[B, L]`` averaged over the orders (differentiable in ``probs``)."""
        probs = _check(probs)
        if probs.shape[1] != self.backbone.length:
            raise ValueError(f"sequences of length {probs.shape[1]} do not fit backbone {self.backbone.name} "
                             f"({self.backbone.length} residues)")
        model = load_mpnn(self.checkpoint, probs.device)
        encoded = encode_backbone(self.checkpoint, self.backbone, probs.device)
        rows = max(1, EDGES_PER_CHUNK // (probs.shape[1] * encoded.neighbors.shape[1]))
        probs = probs.float()
        known = torch.ones(probs.shape[:2], device=probs.device)
        per_order = []
        for rank in self.ranks:
            before = rank_before(rank.to(probs.device), encoded.neighbors)
            parts = [(chunk * torch.log_softmax(model.decode(encoded, chunk, ones, before), -1)).sum(-1)
                     for chunk, ones in zip(probs.split(rows), known.split(rows))]
            per_order.append(torch.cat(parts))
        return torch.stack(per_order).mean(dim=0)

    def __call__(self, probs: torch.Tensor) -> torch.Tensor:
        """Mean per-residue log-likelihood ``[B]`` (nats) of sequences ``probs [B, L, 20]``."""
        return self.per_residue(probs).mean(dim=1)
