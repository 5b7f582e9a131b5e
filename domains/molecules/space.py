"""``MoleculeSpace``: SELFIES token rows whose readable form is the canonical SMILES.

A ``SequenceSpace`` over the SELFIES alphabet (``LENGTH`` tokens, padded) whose ``invalid_rows`` also
decodes each row and reports why it is no molecule (an empty molecule, RDKit's sanitization message), so the
evaluation engine marks such rows failed with that message instead of scoring them. ``to_frame`` shows
``smiles`` (canonical) and ``selfies``; ``encode`` takes SMILES, ``from_frame`` SMILES or SELFIES.

Stored studies keep the spec of a plain ``SequenceSpace`` (kind "sequence"). ``Study.results()`` frames the
rows with the live domain's space, so it shows ``smiles`` and ``selfies``; ``StudyResults`` opened from storage
alone rebuild the plain space and show the SELFIES string in ``sequence``, to which ``Molecules.with_smiles`` (or
``tokens.decode``) adds the canonical SMILES.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import torch

from workbench.spaces import SequenceSpace

from . import tokens
from .vocab import alphabet, length


class MoleculeSpace(SequenceSpace):
    """SELFIES designs ``[n, LENGTH]`` (ids ``0..len(ALPHABET)-1``; padding ``len(ALPHABET)``, written at the end
    by ``encode`` and ``sample``, and ignored wherever it stands)."""

    def __init__(self, min_length: int = 1) -> None:
        super().__init__(alphabet(), length(), min_length=min_length)

    def invalid_rows(self, x: torch.Tensor) -> dict[int, str]:
        """Token ids out of range, fewer than ``min_length`` symbols, or no molecule (with the reason).

        Unlike ``SequenceSpace``, padding may also stand between symbols: it writes nothing, like SELFIES'
        ``[nop]`` (a masked-diffusion prior sometimes unmasks padding before the last symbol).
        """
        bad: dict[int, str] = {}
        out_of_range = ((x < 0) | (x > self.pad_index)).any(dim=1)
        lengths = (x != self.pad_index).sum(dim=1)
        for r in torch.nonzero(out_of_range).flatten().tolist():
            col = int(torch.nonzero((x[r] < 0) | (x[r] > self.pad_index)).flatten()[0])
            bad[r] = f"token index {int(x[r, col])} at position {col} is not in the alphabet of {self.vocab_size}"
        for r in torch.nonzero(~out_of_range & (lengths < self.min_length)).flatten().tolist():
            bad[r] = f"sequence length {int(lengths[r])} is below the minimum {self.min_length}"
        rows = [r for r in range(len(x)) if r not in bad]
        if rows:
            for r, selfies in zip(rows, tokens.to_selfies(x[rows])):
                _, error = tokens.decode_one(selfies)
                if error is not None:
                    bad[r] = error
        return dict(sorted(bad.items()))

    def selfies(self, x: torch.Tensor) -> list[str]:
        """Token rows -> SELFIES strings."""
        return tokens.to_selfies(self.check_batch(x))

    def decode(self, x: torch.Tensor) -> list[str | None]:
        """Token rows -> canonical SMILES (None where the row is no molecule)."""
        return tokens.decode(self.check_batch(x))

    def encode(self, sequences: Iterable[str] | str) -> torch.Tensor:
        """SMILES -> token rows (a ValueError names the first SMILES that does not fit; see ``tokens.encode``)."""
        return tokens.encode(sequences)

    def to_frame(self, x: torch.Tensor) -> pd.DataFrame:
        selfies = self.selfies(x)
        return pd.DataFrame({"smiles": [tokens.decode_one(s)[0] for s in selfies], "selfies": selfies})

    def from_frame(self, frame: pd.DataFrame) -> torch.Tensor:
        """Designs from a ``smiles`` column, else from SELFIES in ``selfies`` or ``sequence`` (stored results)."""
        if "smiles" in frame.columns:
            return self.encode(frame["smiles"].tolist())
        for column in ("selfies", "sequence"):
            if column in frame.columns:
                return tokens.from_selfies(frame[column].astype(str).tolist())
        raise ValueError(f"expected a 'smiles', 'selfies' or 'sequence' column, got {list(frame.columns)}")
