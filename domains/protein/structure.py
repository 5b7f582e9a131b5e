"""Protein backbones from PDB / mmCIF files: N, CA, C, O coordinates and the native sequence of one chain.

Four real structures ship in ``data/`` (from Biopython's test suite, see ``docs/data.md``); any other
file can be read by path. A backbone must be one unbroken chain of standard amino acids: a peptide bond
longer than ``MAX_PEPTIDE_BOND`` Angstrom (a missing segment), a residue without all four backbone atoms,
or a non-standard residue is a ValueError naming the residue. Selenomethionine (MSE), the usual
crystallographic stand-in for methionine, is read as M (as ProteinMPNN's own parser does).
"""

from __future__ import annotations

import gzip
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

DATA_DIR = Path(__file__).resolve().parent / "data"
#: the 20 amino acids, in ProteinMPNN's token order (its 21st token, X, is never used here)
ALPHABET = "ACDEFGHIKLMNPQRSTVWY"
THREE_TO_ONE = {"ALA": "A", "CYS": "C", "ASP": "D", "GLU": "E", "PHE": "F", "GLY": "G", "HIS": "H", "ILE": "I",
                "LYS": "K", "LEU": "L", "MET": "M", "ASN": "N", "PRO": "P", "GLN": "Q", "ARG": "R", "SER": "S",
                "THR": "T", "VAL": "V", "TRP": "W", "TYR": "Y", "MSE": "M"}
BACKBONE_ATOMS = ("N", "CA", "C", "O")
#: a C(i)-N(i+1) distance above this (Angstrom) is a chain break (a peptide bond is about 1.33)
MAX_PEPTIDE_BOND = 2.0
#: shipped structures: id -> (file in data/, default chain, its length)
SHIPPED: dict[str, tuple[str, str, int]] = {"1A8O": ("1A8O.cif.gz", "A", 70), "4CUP": ("4CUP.cif.gz", "A", 115),
                                            "1GBT": ("1GBT.cif.gz", "A", 223), "7CFN": ("7CFN.cif.gz", "N", 128)}


@dataclass(frozen=True)
class Backbone:
    """One protein chain: ``coords [L, 4, 3]`` float32 (N, CA, C, O in Angstrom), its native ``sequence``
    (L one-letter codes), ``residues`` (the file's residue numbers with insertion codes) and ``name``."""

    name: str
    chain: str
    coords: torch.Tensor
    sequence: str
    residues: tuple[str, ...]

    @property
    def length(self) -> int:
        return len(self.sequence)

    def tokens(self) -> torch.Tensor:
        """The native sequence as tokens ``[L]`` int64 (indices into ``ALPHABET``)."""
        return torch.tensor([ALPHABET.index(c) for c in self.sequence], dtype=torch.int64)


def _read_text(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        return handle.read()


def _structure(path: Path):
    """Parse ``path`` (.pdb / .ent / .cif, optionally .gz) with Biopython; ValueError naming the file on failure."""
    from Bio.PDB import MMCIFParser, PDBParser

    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    is_cif = name.lower().endswith((".cif", ".mmcif"))
    try:
        text = _read_text(path)
        parser = MMCIFParser(QUIET=True) if is_cif else PDBParser(QUIET=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = parser.get_structure(path.stem, io.StringIO(text))
        model = next(iter(structure), None)
    except Exception as err:  # Biopython raises many kinds (KeyError, ValueError, PDBConstructionException...)
        raise ValueError(f"cannot parse structure file {path}: {type(err).__name__}: {err}") from err
    if model is None or not len(model):
        raise ValueError(f"cannot parse structure file {path}: it holds no atoms")
    return model


def parse_structure(path: str | Path, chain: str, name: str | None = None) -> Backbone:
    """The backbone of ``chain`` in the first model of a PDB or mmCIF file (``.gz`` allowed).

    Residues with N, CA and C atoms form the chain (waters and ligands are skipped); each must be a standard
    amino acid (or MSE) with all of N, CA, C, O, and consecutive residues must be peptide-bonded."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"structure file {path} does not exist")
    model = _structure(path)
    if chain not in model:
        raise ValueError(f"{path.name} has no chain {chain!r}; its chains are {[c.id for c in model]}")
    residues = [r for r in model[chain] if all(a in r for a in ("N", "CA", "C"))]
    if not residues:
        raise ValueError(f"chain {chain} of {path.name} has no amino-acid residues")
    coords, letters, labels = [], [], []
    for k, res in enumerate(residues):
        label = f"{res.get_resname()} {res.id[1]}{res.id[2].strip()}"
        letter = THREE_TO_ONE.get(res.get_resname())
        if letter is None:
            raise ValueError(f"{path.name} chain {chain}: non-standard residue {label} at position {k}; only the 20 "
                             "standard amino acids (and MSE as M) are supported")
        missing = [a for a in BACKBONE_ATOMS if a not in res]
        if missing:
            raise ValueError(f"{path.name} chain {chain}: residue {label} at position {k} lacks backbone atoms "
                             f"{missing}")
        coords.append([res[a].coord.tolist() for a in BACKBONE_ATOMS])
        letters.append(letter)
        labels.append(f"{res.id[1]}{res.id[2].strip()}")
    xyz = torch.tensor(coords, dtype=torch.float32)
    bonds = (xyz[:-1, 2] - xyz[1:, 0]).norm(dim=-1)
    broken = torch.nonzero(bonds > MAX_PEPTIDE_BOND).flatten().tolist()
    if broken:
        k = broken[0]
        raise ValueError(f"{path.name} chain {chain}: chain break between residue {residues[k].get_resname()} "
                         f"{labels[k]} and {residues[k + 1].get_resname()} {labels[k + 1]} (positions {k} and "
                         f"{k + 1}; C-N distance {float(bonds[k]):.2f} A > {MAX_PEPTIDE_BOND} A); "
                         f"{len(broken)} break(s) in all")
    return Backbone(name or f"{path.name.split('.')[0]}:{chain}", chain, xyz, "".join(letters), tuple(labels))


_LOADED: dict[tuple[str, str], Backbone] = {}


def load_backbone(spec: str | Backbone | tuple[str | Path, str]) -> Backbone:
    """A backbone from ``"1A8O"`` / ``"1A8O:A"`` (shipped; the default chain if none is given), ``"path.pdb:B"``,
    ``(path, chain)`` or a :class:`Backbone` (returned as it is). Parsed once per process."""
    if isinstance(spec, Backbone):
        return spec
    if isinstance(spec, tuple):
        path, chain = str(spec[0]), str(spec[1])
    elif isinstance(spec, (str, Path)):
        text = str(spec)
        path, _, chain = text.rpartition(":")
        if not path or not chain.isalnum():  # no chain given (or a drive letter's colon)
            path, chain = text, ""
    else:
        raise TypeError(f"a backbone is 'PDBID[:CHAIN]', 'path:CHAIN', (path, chain) or a Backbone; got {spec!r}")
    key = path.upper()
    if key in SHIPPED:
        file, default, _ = SHIPPED[key]
        chain = chain or default
        path, name = str(DATA_DIR / file), f"{key}:{chain}"
    else:
        if not chain:
            raise ValueError(f"{path!r} is not a shipped structure ({sorted(SHIPPED)}); give a file and a chain, "
                             "e.g. 'my.pdb:A'")
        name = None
    if (path, chain) not in _LOADED:
        _LOADED[(path, chain)] = parse_structure(path, chain, name)
    return _LOADED[(path, chain)]
