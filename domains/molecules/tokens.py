"""SMILES <-> SELFIES token rows: ``encode`` (RDKit-checked SMILES -> ``[n, LENGTH]`` ids), ``decode`` (ids ->
canonical SMILES), ``from_selfies`` / ``to_selfies``; ``parse`` and ``canonical`` come from ``chem``.

SELFIES (Krenn et al., 2020) make every token string a molecule, so a sampler never writes an unparsable
string; the only failures left are an empty molecule (e.g. a lone ``[Branch1]``) and the rare molecule RDKit
cannot sanitize, both reported as messages, never raised, by ``decode_one``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import selfies as sf
import torch
from rdkit import Chem

from .chem import canonical, parse
from .vocab import alphabet, length

__all__ = ["canonical", "parse", "encode", "decode", "decode_one", "from_selfies", "to_selfies",
           "selfies_symbols"]


def selfies_symbols(smiles: str) -> list[str]:
    """SELFIES symbols of a valid SMILES, stereochemistry removed (MOSES has none, nor has the vocabulary)."""
    mol, error = parse(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES {smiles!r}: {error}")
    Chem.RemoveStereochemistry(mol)
    try:
        encoded = sf.encoder(Chem.MolToSmiles(mol), strict=True)
    except sf.EncoderError as err:
        raise ValueError(f"SMILES {smiles!r} cannot be written in SELFIES: {err}") from None
    return list(sf.split_selfies(encoded))


def encode(smiles: Iterable[str] | str) -> torch.Tensor:
    """SMILES -> token rows ``[n, LENGTH]`` int64, right-padded with ``len(ALPHABET)``.

    A ValueError names the first SMILES that RDKit rejects, that needs a SELFIES symbol outside the vocabulary
    (charges, isotopes, several fragments, elements MOSES lacks) or that is longer than ``LENGTH`` symbols.
    """
    items = [smiles] if isinstance(smiles, str) else list(smiles)
    vocab = {s: i for i, s in enumerate(alphabet())}
    size, pad = length(), len(vocab)
    rows = np.full((len(items), size), pad, dtype=np.int64)
    for k, smi in enumerate(items):
        try:
            symbols = selfies_symbols(smi)
        except ValueError as err:
            raise ValueError(f"SMILES {k}: {err}") from None
        unknown = sorted({s for s in symbols if s not in vocab})
        if unknown:
            raise ValueError(f"SMILES {k} {smi!r} needs SELFIES symbols {unknown} that are not in the molecule "
                             f"vocabulary (built from MOSES: neutral C, N, O, S, P, F, Cl, Br; one fragment)")
        if len(symbols) > size:
            raise ValueError(f"SMILES {k} {smi!r} has {len(symbols)} SELFIES symbols; at most {size} fit a design")
        rows[k, :len(symbols)] = [vocab[s] for s in symbols]
    return torch.from_numpy(rows)


def from_selfies(strings: Iterable[str] | str) -> torch.Tensor:
    """SELFIES strings -> token rows ``[n, LENGTH]`` (padded); a ValueError names the first that does not fit."""
    items = [strings] if isinstance(strings, str) else list(strings)
    vocab = {s: i for i, s in enumerate(alphabet())}
    size = length()
    rows = np.full((len(items), size), len(vocab), dtype=np.int64)
    for k, text in enumerate(items):
        try:
            symbols = list(sf.split_selfies(text))
        except (ValueError, TypeError) as err:
            raise ValueError(f"SELFIES {k} {text!r} is malformed: {err}") from None
        unknown = sorted({s for s in symbols if s not in vocab})
        if unknown or len(symbols) > size:
            reason = f"symbols {unknown} are not in the vocabulary" if unknown else f"{len(symbols)} symbols > {size}"
            raise ValueError(f"SELFIES {k} {text!r} does not fit the designs: {reason}")
        rows[k, :len(symbols)] = [vocab[s] for s in symbols]
    return torch.from_numpy(rows)


def to_selfies(tokens: torch.Tensor) -> list[str]:
    """Token rows ``[n, L]`` -> SELFIES strings (padding, wherever it is, writes nothing)."""
    table = np.asarray(alphabet() + [""], dtype=object)
    arr = np.asarray(tokens.detach().cpu().numpy() if isinstance(tokens, torch.Tensor) else tokens)
    if arr.ndim != 2:
        raise ValueError(f"expected token rows [n, L], got shape {list(arr.shape)}")
    if arr.size and (arr.min() < 0 or arr.max() >= len(table)):
        raise ValueError(f"token ids must be in 0..{len(table) - 1}, got {int(arr.min())}..{int(arr.max())}")
    return ["".join(table[row]) for row in arr]


@lru_cache(maxsize=200_000)
def decode_one(selfies: str) -> tuple[str | None, str | None]:
    """(canonical SMILES, None) or (None, the reason) for one SELFIES string (cached)."""
    try:
        smiles = sf.decoder(selfies)
    except sf.DecoderError as err:
        return None, f"SELFIES decoding failed: {err}"
    if not smiles:
        return None, f"the SELFIES {selfies!r} decodes to an empty molecule"
    mol, error = parse(smiles)
    if mol is None:
        return None, f"RDKit rejects {smiles!r} (from SELFIES): {error}"
    return Chem.MolToSmiles(mol), None


def decode(tokens: torch.Tensor) -> list[str | None]:
    """Token rows ``[n, L]`` -> canonical SMILES (None where the row is no molecule; see ``decode_one``)."""
    return [decode_one(s)[0] for s in to_selfies(tokens)]
