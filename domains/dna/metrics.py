"""Evaluation metrics of generated DNA sequences, after DRAKES (Wang et al., 2024), on token tensors.

- ``kmer_correlation``: Pearson correlation of the 3-mer frequency vectors (64 values) of a generated and a
  reference set ("3-mer Corr");
- ``motif_correlation``: Spearman correlation, across JASPAR motifs, of the total number of motif hits in
  each set ("JASPAR Corr"); hits are positions with a relative PWM score >= ``motifs.HIT_THRESHOLD`` (0.8);
- ``accessible_fraction``: share of sequences an oracle calls accessible (sigmoid > 0.5) in a cell type
  ("ATAC-Acc");
- ``diversity``: mean pairwise Hamming distance over the length;
- ``top_real_sequences``: the reference set, the real sequences the held-out oracle scores highest.
DRAKES' reference is the top 0.1 % of real sequences by measured activity; this data has binary labels only,
so the held-out oracle's logit ranks them instead (see ``docs/dna.md``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from .data import ALPHABET, CELL_TYPES, HALVES, encode, load_dhs, one_hot
from .motifs import HIT_THRESHOLD, MotifSet
from .oracle import ROLES, load_oracle

#: default size of the reference set: about the top 1 % of the 28,093 sequences the held-out oracle never saw
TOP_N = 300
POOLS = ("unseen", "test", "all")


def _check_tokens(x: torch.Tensor, what: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.dtype.is_floating_point:
        raise ValueError(f"{what} must be integer tokens [n, L], got "
                         f"{list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= len(ALPHABET)):
        raise ValueError(f"{what} must hold tokens 0..{len(ALPHABET) - 1} (A, C, G, T)")
    return x.long()


def kmer_counts(x: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Counts of each k-mer in each sequence: tokens ``[n, L]`` -> ``[n, 4**k]`` int64 (k-mer index =
    its bases read as a base-4 number, first base most significant: AAA = 0, AAC = 1, ..., TTT = 63)."""
    x = _check_tokens(x)
    n, length = x.shape
    if not 1 <= k <= length:
        raise ValueError(f"k must be between 1 and the sequence length {length}, got {k}")
    powers = len(ALPHABET) ** torch.arange(k - 1, -1, -1, device=x.device)
    index = (x.unfold(1, k, 1) * powers).sum(dim=2)  # [n, L - k + 1]
    rows = torch.arange(n, device=x.device).unsqueeze(1) * len(ALPHABET) ** k
    flat = torch.bincount((rows + index).flatten(), minlength=n * len(ALPHABET) ** k)
    return flat.view(n, len(ALPHABET) ** k)


def kmer_frequencies(x: torch.Tensor, k: int = 3) -> torch.Tensor:
    """k-mer frequencies of a whole set: tokens ``[n, L]`` -> ``[4**k]`` float64 summing to 1."""
    total = kmer_counts(x, k).sum(dim=0).to(torch.float64)
    return total / total.sum()


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two vectors ``[d]``."""
    a, b = a.to(torch.float64).flatten(), b.to(torch.float64).flatten()
    a, b = a - a.mean(), b - b.mean()
    denom = float(a.norm() * b.norm())
    if denom == 0.0:
        raise ValueError("correlation is undefined: one of the vectors is constant")
    return float((a * b).sum()) / denom


def kmer_correlation(generated: torch.Tensor, reference: torch.Tensor, k: int = 3) -> float:
    """Pearson correlation of the k-mer frequency vectors of two sets of tokens ``[n, L]``, ``[m, L]``."""
    return pearson(kmer_frequencies(generated, k), kmer_frequencies(reference.to(generated.device), k))


def motif_hits(x: torch.Tensor, motifs: MotifSet, threshold: float = HIT_THRESHOLD, chunk: int = 1024) -> torch.Tensor:
    """Total hits of each motif over a set: tokens ``[n, L]`` -> ``[m]`` int64 (chunks of ``chunk`` rows)."""
    x = _check_tokens(x)
    total = torch.zeros(len(motifs), dtype=torch.int64, device=x.device)
    for i in range(0, len(x), chunk):
        total += motifs.hit_counts(one_hot(x[i:i + chunk]), threshold).sum(dim=0)
    return total


def motif_correlation(generated: torch.Tensor, reference: torch.Tensor, motifs: MotifSet | None = None,
                      threshold: float = HIT_THRESHOLD) -> float:
    """Spearman correlation, across motifs, of the summed hit counts of two sets of tokens.

    ``motifs``: default every exported JASPAR CORE vertebrate matrix. Sets of different sizes compare
    fairly (a rank correlation ignores the scale).
    """
    motifs = motifs if motifs is not None else MotifSet.load()
    a = motif_hits(generated, motifs, threshold).cpu().numpy()
    b = motif_hits(reference.to(generated.device), motifs, threshold).cpu().numpy()
    if a.min() == a.max() or b.min() == b.max():
        raise ValueError("motif correlation is undefined: every motif has the same hit count in one of the sets")
    return float(spearmanr(a, b).statistic)


def diversity(x: torch.Tensor) -> float:
    """Mean Hamming distance between all pairs of distinct rows of tokens ``[n, L]``, divided by ``L``.

    Exact in O(n L) time and O(L) extra memory: the number of matching pairs at a position is
    ``sum_b c_b (c_b - 1) / 2`` for the base counts ``c_b`` there, so no n x n (or n x n x L) tensor is formed.
    """
    x = _check_tokens(x)
    n, length = x.shape
    if n < 2:
        raise ValueError(f"diversity needs at least 2 sequences, got {n}")
    cells = torch.arange(length, device=x.device) * len(ALPHABET) + x  # [n, L]: (position, base) index
    counts = torch.bincount(cells.flatten(), minlength=length * len(ALPHABET)).to(torch.float64)  # [L * 4]
    matches = (counts * (counts - 1)).sum() / 2
    pairs = n * (n - 1) / 2
    return float(1.0 - matches / (pairs * length))


def accessible_fraction(logits: torch.Tensor, cell: str = "HepG2") -> float:
    """Share of sequences called accessible in ``cell`` (sigmoid of its logit > 0.5) from oracle logits ``[n, 4]``."""
    if logits.dim() != 2 or logits.shape[1] != len(CELL_TYPES):
        raise ValueError(f"expected oracle logits [n, {len(CELL_TYPES)}], got shape {list(logits.shape)}")
    return float((logits[:, _cell_index(cell)] > 0).to(torch.float64).mean())


def _cell_index(cell: str) -> int:
    lookup = {c.lower(): j for j, c in enumerate(CELL_TYPES)}
    if cell.lower() not in lookup:
        raise ValueError(f"unknown cell type {cell!r}; choose from {list(CELL_TYPES)}")
    return lookup[cell.lower()]


def _pool(pool: str) -> pd.DataFrame:
    """The real sequences a reference set is drawn from (see :func:`top_real_sequences`)."""
    frame = load_dhs()
    if pool == "unseen":
        return frame[~frame["chr"].isin(HALVES[ROLES["heldout"]])]
    if pool == "test":
        return frame[frame["split"] == "test"]
    if pool == "all":
        return frame
    raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")


def heldout_logits(pool: str = "unseen", device: str | torch.device = "cpu") -> pd.DataFrame:
    """The held-out oracle's logits of every sequence of ``pool``: the pool's rows plus one ``<cell>_logit``
    column per cell type (cached per process and device; treat as read-only)."""
    return _heldout_logits(pool, str(torch.device(device)))


@lru_cache(maxsize=8)
def _heldout_logits(pool: str, device: str, batch: int = 2048) -> pd.DataFrame:
    frame = _pool(pool)
    oracle = load_oracle("heldout", device)
    tokens = encode(frame["sequence"].tolist()).to(device)
    with torch.inference_mode():
        logits = torch.cat([oracle(one_hot(tokens[i:i + batch])) for i in range(0, len(tokens), batch)])
    scored = frame.copy()
    for j, cell in enumerate(CELL_TYPES):
        scored[f"{cell}_logit"] = logits[:, j].double().cpu().numpy()
    return scored


def top_real_sequences(cell: str = "HepG2", n: int = TOP_N, pool: str = "unseen",
                       device: str | torch.device = "cpu") -> pd.DataFrame:
    """The ``n`` real sequences with the highest held-out-oracle logit in ``cell``, best first.

    ``pool``: "unseen" (default) = every sequence the held-out oracle did not train on (chromosome half "a",
    validation chr2 and test chr1: 28,093 rows), "test" = chr1 only (4,565), "all" = all 47,872 (includes the
    held-out oracle's own training rows, whose scores are inflated). Returns the DHS rows with their logits;
    ``encode(result["sequence"])`` gives the tokens.
    """
    column = f"{CELL_TYPES[_cell_index(cell)]}_logit"
    scored = heldout_logits(pool, device)
    if not 1 <= n <= len(scored):
        raise ValueError(f"n must be between 1 and the pool size {len(scored)}, got {n}")
    return scored.sort_values(column, ascending=False, kind="stable").head(n).copy()


def summarize(generated: torch.Tensor, reference: torch.Tensor, logits: torch.Tensor, cell: str = "HepG2",
              motifs: MotifSet | None = None) -> dict[str, float]:
    """All DRAKES-style metrics of a generated set in one dict: median logit in ``cell``, accessible fraction,
    3-mer and motif correlations with ``reference``, and diversity."""
    j = _cell_index(cell)
    return {"median_logit": float(np.median(logits[:, j].double().cpu().numpy())),
            "accessible_fraction": accessible_fraction(logits, cell),
            "kmer_correlation": kmer_correlation(generated, reference),
            "motif_correlation": motif_correlation(generated, reference, motifs),
            "diversity": diversity(generated)}
