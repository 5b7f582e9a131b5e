"""Sequences over an alphabet: DNA, protein, SELFIES or layout tokens."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .base import Space


class SequenceSpace(Space):
    """Token sequences of length ``length`` (or ``min_length``..``length``, right-padded).

    A design is a row of token indices ``[length]`` (int64); index ``pad_index``
    (= len(alphabet)) marks padding of shorter sequences. ``to_frame`` shows each
    design as one readable string.
    """

    kind = "sequence"
    storage_dtype = np.dtype("<i2")

    def __init__(self, alphabet: Sequence[str], length: int, min_length: int | None = None, separator: str = "") -> None:
        self.alphabet: list[str] = list(alphabet)
        if len(self.alphabet) < 2 or len(set(self.alphabet)) != len(self.alphabet):
            raise ValueError(f"alphabet needs at least 2 distinct tokens, got {self.alphabet}")
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        self.length = int(length)
        self.min_length = int(length if min_length is None else min_length)
        if not 1 <= self.min_length <= self.length:
            raise ValueError(f"need 1 <= min_length <= length, got {self.min_length} and {self.length}")
        self.separator = separator
        self.pad_index = len(self.alphabet)
        self._lookup = {t: i for i, t in enumerate(self.alphabet)}

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.length,)

    @property
    def dtype(self) -> torch.dtype:
        return torch.int64

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """Uniform tokens ``[n, length]``; lengths uniform in [min_length, length]."""
        device = device or "cpu"
        x = torch.randint(0, self.vocab_size, (n, self.length), generator=generator, device=device)
        if self.min_length < self.length:
            lengths = torch.randint(self.min_length, self.length + 1, (n, 1), generator=generator, device=device)
            x = torch.where(torch.arange(self.length, device=device) < lengths, x, self.pad_index)
        return x

    def invalid_rows(self, x: torch.Tensor) -> dict[int, str]:
        bad: dict[int, str] = {}
        out_of_range = (x < 0) | (x > self.pad_index)
        is_pad = x == self.pad_index
        lengths = (~is_pad).sum(dim=1)
        # padding must be a suffix: once padded, stays padded
        pad_gap = (is_pad[:, :-1] & ~is_pad[:, 1:]).any(dim=1) if self.length > 1 else torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for r in torch.nonzero(out_of_range.any(dim=1) | pad_gap | (lengths < self.min_length)).flatten().tolist():
            if bool(out_of_range[r].any()):
                col = int(torch.nonzero(out_of_range[r]).flatten()[0])
                bad[r] = f"token index {int(x[r, col])} at position {col} is not in the alphabet of {self.vocab_size}"
            elif bool(pad_gap[r]):
                bad[r] = "padding must only appear at the end of a sequence"
            else:
                bad[r] = f"sequence length {int(lengths[r])} is below the minimum {self.min_length}"
        return bad

    def decode(self, x: torch.Tensor) -> list[str]:
        """Token rows ``[n, length]`` -> strings; an id outside the alphabet reads "?" (a stored failed row
        still shows)."""
        table = np.asarray(self.alphabet + ["", "?"], dtype=object)
        arr = x.detach().cpu().numpy().astype(np.int64)
        arr = np.where((arr < 0) | (arr > self.pad_index), self.pad_index + 1, arr)
        return [self.separator.join(table[row]) if self.separator else "".join(table[row]) for row in arr]

    def encode(self, sequences: Iterable[str] | str) -> torch.Tensor:
        """Strings -> token rows ``[n, length]``, with errors naming the bad character or length."""
        if isinstance(sequences, str):
            sequences = [sequences]
        rows = []
        for k, seq in enumerate(sequences):
            tokens = seq.split(self.separator) if self.separator else list(seq)
            if not self.min_length <= len(tokens) <= self.length:
                raise ValueError(f"sequence {k} has length {len(tokens)}; expected {self._length_text()}")
            try:
                ids = [self._lookup[t] for t in tokens]
            except KeyError as err:
                raise ValueError(f"sequence {k} has invalid token {err.args[0]!r}; alphabet is {self.alphabet}") from None
            rows.append(ids + [self.pad_index] * (self.length - len(ids)))
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, self.length)

    def _length_text(self) -> str:
        return str(self.length) if self.min_length == self.length else f"{self.min_length} to {self.length}"

    def to_frame(self, x: torch.Tensor) -> pd.DataFrame:
        return pd.DataFrame({"sequence": self.decode(self.check_batch(x))})

    def from_frame(self, frame: pd.DataFrame) -> torch.Tensor:
        if "sequence" not in frame.columns:
            raise ValueError("expected a 'sequence' column")
        return self.encode(frame["sequence"].tolist())

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "alphabet": self.alphabet, "length": self.length,
                "min_length": self.min_length, "separator": self.separator}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SequenceSpace:
        return cls(spec["alphabet"], spec["length"], spec.get("min_length"), spec.get("separator", ""))
