"""RDKit parsing with the error message kept: ``parse`` (SMILES -> molecule or RDKit's reason) and ``canonical``.

RDKit reports parse and sanitization problems on its error log; here they are captured (RDKit >= 2025.09) or
blocked, never printed, and returned as text so a failed design carries the reason.
"""

from __future__ import annotations

import re

from rdkit import Chem, rdBase

_STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ", re.MULTILINE)


def _rdkit_messages(capture: object) -> str:
    text = _STAMP.sub("", getattr(capture, "messages", "") or "").strip()
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def parse(smiles: str) -> tuple[Chem.Mol | None, str | None]:
    """(sanitized molecule, None) or (None, RDKit's message) for one SMILES; RDKit logs nothing."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None, "empty SMILES"
    capture_cls = getattr(rdBase, "CaptureErrorLog", None)  # RDKit >= 2025.09; older versions: no message
    with rdBase.BlockLogs(), (capture_cls() if capture_cls is not None else rdBase.BlockLogs()) as capture:
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return None, _rdkit_messages(capture) or "RDKit could not parse the SMILES"
        try:
            Chem.SanitizeMol(mol)
            mol = Chem.RemoveHs(mol)  # as MolFromSmiles does by default: explicit [H] atoms become implicit
        except Exception as err:  # noqa: BLE001 - RDKit raises several sanitization exception types
            return None, f"{type(err).__name__}: {err}"
    if mol.GetNumAtoms() == 0:
        return None, "the molecule has no atoms"
    return mol, None


def canonical(smiles: str) -> str:
    """RDKit's canonical SMILES of ``smiles``; a ValueError naming it and RDKit's message if it is invalid."""
    mol, error = parse(smiles)
    if mol is None:
        raise ValueError(f"invalid SMILES {smiles!r}: {error}")
    return Chem.MolToSmiles(mol)
