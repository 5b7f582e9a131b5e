"""The shipped DHS data set: 47,872 ENCODE DNase hypersensitive sites (200 bp, hg38), each accessible in
exactly one of four cell types (DNA-Diffusion's selection; MIT licence, see ``data/``).

Splits are by chromosome: ``test`` is chr1, ``validation`` chr2, ``train`` the rest. The training
chromosomes are further split into two disjoint halves (``HALVES``) so that the reward oracle (half
"a") and the held-out evaluation oracle (half "b") never see the same sequences.
Tokens follow ``ALPHABET``: A, C, G, T = 0, 1, 2, 3 (the order of ``SequenceSpace(list("ACGT"), 200)``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

DATA_DIR = Path(__file__).resolve().parent / "data"
DATA_FILE = DATA_DIR / "encode_dhs_4celltypes.csv.gz"
CELL_TYPES = ("GM12878", "hESC", "K562", "HepG2")
ALPHABET = "ACGT"
LENGTH = 200
SPLITS = ("train", "validation", "test")
TEST_CHROMOSOME, VALIDATION_CHROMOSOME = "chr1", "chr2"

#: Disjoint halves of the 22 training chromosomes, assigned greedily by row count (largest first, each to
#: the half with fewer rows so far): 19,475 / 19,779 rows, each cell type 24-26 % of either half.
HALVES: dict[str, tuple[str, ...]] = {
    "a": ("chr6", "chr7", "chr11", "chr8", "chr12", "chrX", "chr14", "chr20", "chr13", "chr19", "chrY"),
    "b": ("chr3", "chr5", "chr4", "chr10", "chr9", "chr17", "chr16", "chr15", "chr18", "chr22", "chr21"),
}

# byte -> token (255 = not a base); lowercase (soft-masked genome sequence) reads as the same base
_LOOKUP = np.full(256, 255, dtype=np.uint8)
for _i, _base in enumerate(ALPHABET):
    _LOOKUP[ord(_base)] = _LOOKUP[ord(_base.lower())] = _i


@lru_cache(maxsize=1)
def _read() -> pd.DataFrame:
    if not DATA_FILE.exists():
        raise FileNotFoundError(f"DNA data file {DATA_FILE} is missing (it ships with the repository)")
    return pd.read_csv(DATA_FILE, dtype={"chr": str, "sequence": str, "split": str})


def load_dhs(split: str | None = None, half: str | None = None) -> pd.DataFrame:
    """The DHS table (columns ``dhs_id, chr, start, sequence, GM12878, hESC, K562, HepG2, split``).

    ``split``: one of ``SPLITS`` or None for all rows; ``half``: "a" or "b" keeps the rows of that half's
    chromosomes (training rows only). Returns a copy in the file's row order.
    """
    frame = _read()
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        frame = frame[frame["split"] == split]
    if half is not None:
        if half not in HALVES:
            raise ValueError(f"half must be 'a' or 'b', got {half!r}")
        frame = frame[frame["chr"].isin(HALVES[half])]
    return frame.copy()


def labels(frame: pd.DataFrame) -> torch.Tensor:
    """The 0/1 accessibility labels ``[n, 4]`` float32, columns in ``CELL_TYPES`` order."""
    return torch.tensor(frame[list(CELL_TYPES)].to_numpy(dtype=np.float32))


def encode(sequences: Iterable[str] | str, length: int = LENGTH) -> torch.Tensor:
    """DNA strings -> tokens ``[n, length]`` int64 (A, C, G, T = 0..3; lowercase accepted as the same base).

    Raises a ValueError naming the first sequence of the wrong length, or the first character that is not
    a base (``N`` and IUPAC ambiguity codes are rejected: the oracles know only the four bases).
    """
    seqs = [sequences] if isinstance(sequences, str) else list(sequences)
    for k, s in enumerate(seqs):
        if not isinstance(s, str):
            raise TypeError(f"sequence {k} is a {type(s).__name__}, not a string")
        if len(s) != length:
            raise ValueError(f"sequence {k} has length {len(s)}; expected {length}")
    if not seqs:
        return torch.empty((0, length), dtype=torch.int64)
    raw = np.frombuffer("".join(seqs).encode("latin-1", errors="replace"), dtype=np.uint8).reshape(len(seqs), length)
    tokens = _LOOKUP[raw]
    bad = np.argwhere(tokens == 255)
    if len(bad):
        k, pos = (int(v) for v in bad[0])
        raise ValueError(f"sequence {k} has invalid character {seqs[k][pos]!r} at position {pos}; "
                         f"expected one of {ALPHABET} (lowercase allowed)")
    return torch.from_numpy(tokens.astype(np.int64))


def decode(tokens: torch.Tensor) -> list[str]:
    """Tokens ``[n, L]`` -> DNA strings (uppercase)."""
    table = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
    arr = table[tokens.detach().cpu().numpy()]
    return [row.tobytes().decode() for row in arr]


def one_hot(tokens: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Tokens ``[n, L]`` (values 0..3) -> one-hot ``[n, L, 4]`` of ``dtype``, on the tokens' device."""
    if tokens.dim() != 2:
        raise ValueError(f"expected tokens [n, L], got shape {list(tokens.shape)}")
    if tokens.dtype.is_floating_point:
        raise TypeError(f"expected integer tokens, got {tokens.dtype}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= len(ALPHABET)):
        raise ValueError(f"tokens must lie in 0..{len(ALPHABET) - 1} (A, C, G, T), got values "
                         f"{int(tokens.min())}..{int(tokens.max())}")
    return torch.nn.functional.one_hot(tokens.long(), len(ALPHABET)).to(dtype)


def load_tokens(split: str | None = None, half: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens ``[n, 200]`` int64, labels ``[n, 4]`` float32) of :func:`load_dhs` rows."""
    frame = load_dhs(split, half)
    return encode(frame["sequence"].tolist()), labels(frame)
