"""MOSES metrics of generated molecules (Polykovskiy et al., 2020), computed with RDKit.

- ``validity``: share of generated strings that are molecules (RDKit parses and sanitizes them);
- ``uniqueness``: share of distinct canonical SMILES among the valid ones (MOSES' unique@k with ``k``);
- ``novelty``: share of the distinct valid molecules that are not in the training set;
- ``internal_diversity``: ``1 - (mean T^p)^(1/p)`` over pairs of distinct molecules, ``T`` the Tanimoto
  similarity of Morgan fingerprints (radius 2, 2048 bits); p = 1 is MOSES' IntDiv1, p = 2 IntDiv2 (MOSES'
  own code also averages in each molecule's similarity to itself, which lowers the value slightly);
- ``scaffold_similarity`` / ``fragment_similarity``: cosine similarity of the counts of Bemis-Murcko scaffolds
  (with at least ``min_rings`` = 2 rings, as in MOSES) / of BRICS fragments over a generated and a reference set
  (MOSES' Scaf and Frag);
- ``nearest_neighbor_similarity``: mean, over generated molecules, of the Tanimoto similarity to the nearest
  reference molecule (MOSES' SNN);
- ``frechet_chemnet_distance``: FCD with the ChemNet weights shipped in the optional ``fcd_torch`` wheel (MIT);
  a clear ImportError without it.
Inputs are SMILES lists (``tokens.decode`` turns designs into them; None counts as invalid).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem.Scaffolds import MurckoScaffold

from .objectives import fingerprint
from .chem import parse

FCD_HINT = "pip install --no-deps fcd_torch==1.0.7 (its wheel ships the ChemNet weights)"


def canonical_or_none(smiles: Iterable[str | None]) -> list[str | None]:
    """Canonical SMILES of each string, None where it is no molecule."""
    out: list[str | None] = []
    for smi in smiles:
        mol = parse(smi)[0] if smi else None
        out.append(Chem.MolToSmiles(mol) if mol is not None else None)
    return out


def _molecules(smiles: Iterable[str | None]) -> list[Chem.Mol]:
    mols = [parse(s)[0] if s else None for s in smiles]
    return [m for m in mols if m is not None]


def validity(smiles: Sequence[str | None]) -> float:
    """Share of strings that are molecules."""
    if not smiles:
        raise ValueError("validity of an empty set is undefined")
    return sum(s is not None for s in canonical_or_none(smiles)) / len(smiles)


def uniqueness(smiles: Sequence[str | None], k: int | None = None) -> float:
    """Distinct canonical SMILES over valid ones, among the first ``k`` valid molecules (all when None)."""
    valid = [s for s in canonical_or_none(smiles) if s is not None]
    valid = valid[:k] if k else valid
    if not valid:
        raise ValueError("uniqueness needs at least one valid molecule")
    return len(set(valid)) / len(valid)


def novelty(smiles: Sequence[str | None], training: Iterable[str] | None = None) -> float:
    """Share of distinct valid molecules not in ``training`` (default: MOSES train, as canonical SMILES)."""
    unique = {s for s in canonical_or_none(smiles) if s is not None}
    if not unique:
        raise ValueError("novelty needs at least one valid molecule")
    known = training_set() if training is None else set(training)
    return sum(s not in known for s in unique) / len(unique)


@lru_cache(maxsize=1)
def training_set() -> frozenset[str]:
    """MOSES train as a set of SMILES, as stored (RDKit canonical SMILES of its time; see ``docs/molecules.md``)."""
    from .data import load_moses

    return frozenset(load_moses("train")["smiles"])


def _fingerprints(smiles: Iterable[str | None]) -> list:
    return [fingerprint(m) for m in _molecules(smiles)]


def internal_diversity(smiles: Sequence[str | None], p: int = 1) -> float:
    """``1 - (mean over distinct pairs of T^p)^(1/p)`` of the valid molecules (Morgan r = 2, 2048 bits)."""
    fps = _fingerprints(smiles)
    n = len(fps)
    if n < 2:
        raise ValueError(f"internal diversity needs at least 2 valid molecules, got {n}")
    total = 0.0
    for i in range(n - 1):
        sims = np.asarray(DataStructs.BulkTanimotoSimilarity(fps[i], fps[i + 1:]))
        total += float((sims ** p).sum())
    return 1.0 - (total / (n * (n - 1) / 2)) ** (1.0 / p)


def scaffold(mol: Chem.Mol, min_rings: int = 2) -> str | None:
    """Canonical SMILES of the Bemis-Murcko scaffold, None with fewer than ``min_rings`` rings."""
    core = MurckoScaffold.GetScaffoldForMol(mol)
    text = Chem.MolToSmiles(core)
    if not text or core.GetRingInfo().NumRings() < min_rings:
        return None
    return text


def scaffold_counts(smiles: Iterable[str | None], min_rings: int = 2) -> Counter:
    """How often each scaffold occurs in a set."""
    return Counter(s for s in (scaffold(m, min_rings) for m in _molecules(smiles)) if s is not None)


def fragment_counts(smiles: Iterable[str | None]) -> Counter:
    """How often each BRICS fragment occurs in a set: every molecule cut at all its BRICS bonds, each piece
    (with its dummy attachment atoms) counted as often as it occurs, as MOSES counts them."""
    counts: Counter = Counter()
    for mol in _molecules(smiles):
        counts.update(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split("."))
    return counts


def cosine(a: Counter, b: Counter) -> float:
    """Cosine similarity of two count vectors given as Counters (keys = dimensions)."""
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    if norm == 0.0:
        raise ValueError("cosine similarity is undefined: one of the sets has no scaffolds / fragments")
    return dot / norm


def scaffold_similarity(generated: Sequence[str | None], reference: Sequence[str | None], min_rings: int = 2) -> float:
    """Cosine similarity of the scaffold counts of two sets (MOSES' Scaf)."""
    return cosine(scaffold_counts(generated, min_rings), scaffold_counts(reference, min_rings))


def fragment_similarity(generated: Sequence[str | None], reference: Sequence[str | None]) -> float:
    """Cosine similarity of the BRICS fragment counts of two sets (MOSES' Frag)."""
    return cosine(fragment_counts(generated), fragment_counts(reference))


def nearest_neighbor_similarity(generated: Sequence[str | None], reference: Sequence[str | None]) -> float:
    """Mean over generated molecules of the Tanimoto similarity to the nearest reference molecule (SNN)."""
    gen, ref = _fingerprints(generated), _fingerprints(reference)
    if not gen or not ref:
        raise ValueError("nearest-neighbour similarity needs valid molecules in both sets")
    return float(np.mean([max(DataStructs.BulkTanimotoSimilarity(fp, ref)) for fp in gen]))


def frechet_chemnet_distance(generated: Sequence[str | None], reference: Sequence[str | None],
                             device: str = "cpu") -> float:
    """FCD between the valid molecules of two sets (ChemNet from the optional ``fcd_torch`` package)."""
    try:
        from fcd_torch import FCD
    except ImportError as err:
        raise ImportError(f"the Frechet ChemNet distance needs the optional package fcd_torch: {FCD_HINT}") from err
    gen = [s for s in canonical_or_none(generated) if s is not None]
    ref = [s for s in canonical_or_none(reference) if s is not None]
    if len(gen) < 2 or len(ref) < 2:
        raise ValueError("FCD needs at least 2 valid molecules in each set")
    return float(FCD(device=device, n_jobs=1)(gen, ref))


def summarize(generated: Sequence[str | None], reference: Sequence[str | None],
              training: Iterable[str] | None = None, fcd: bool = False) -> dict[str, float]:
    """The MOSES metrics of ``generated`` in one dict (reference: e.g. ``load_sample()["smiles"]``)."""
    out = {"validity": validity(generated), "uniqueness": uniqueness(generated),
           "novelty": novelty(generated, training), "internal_diversity": internal_diversity(generated),
           "internal_diversity_2": internal_diversity(generated, p=2),
           "scaffold_similarity": scaffold_similarity(generated, reference),
           "fragment_similarity": fragment_similarity(generated, reference),
           "nearest_neighbor_similarity": nearest_neighbor_similarity(generated, reference)}
    if fcd:
        out["fcd"] = frechet_chemnet_distance(generated, reference)
    return out
