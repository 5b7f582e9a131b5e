"""RDKit scores of molecules: properties, similarity to a lead, structural alerts; batches over a process pool.

Properties (``PROPERTIES``): ``qed`` (Bickerton's quantitative estimate of drug-likeness, 0..1), ``sa`` (Ertl
and Schuffenhauer's synthetic accessibility from RDKit's Contrib ``sascorer``, 1 easy .. 10 hard, reported as
``(10 - SA) / 9`` so 1 is easiest), ``logp`` (Crippen), ``mw`` (average molecular weight, Da), ``tpsa``
(topological polar surface area, A^2), ``similarity`` (Tanimoto of Morgan fingerprints, radius 2, 2048 bits, to
a lead). Alerts (``ALERTS``, counts): ``pains`` (RDKit's PAINS A, B and C filters), ``brenk`` (Brenk's
unwanted groups), ``large_rings`` (rings of more than 6 atoms), ``bridgeheads`` (bridgehead atoms: bridged ring
systems, which RDKit accepts but which are rare in drug-like sets and, as SELFIES samples write them, often
strained beyond existence, e.g. a benzene ring bridged across its meta positions by three atoms).

``score_smiles`` scores a list in this process; ``Scorer`` sends large lists to a pool of spawned worker
processes (RDKit holds the GIL, so threads would not help) and keeps small ones inline.
"""

from __future__ import annotations

import atexit
import importlib.util
import math
import multiprocessing
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np
from rdkit import Chem, DataStructs, RDConfig, rdBase
from rdkit.Chem import QED, Crippen, Descriptors, rdFingerprintGenerator, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from .chem import parse

PROPERTIES = ("qed", "sa", "logp", "mw", "tpsa", "similarity")
ALERTS = ("pains", "brenk", "large_rings", "bridgeheads")
SCORES = PROPERTIES + ALERTS
FINGERPRINT_RADIUS, FINGERPRINT_BITS = 2, 2048
LARGE_RING = 6  # rings with more atoms than this count as alerts
POOL_THRESHOLD = 256  # batches larger than this go to the process pool


@lru_cache(maxsize=1)
def sascorer() -> ModuleType:
    """RDKit's Contrib ``SA_Score/sascorer.py`` (shipped inside the rdkit wheel), imported by path."""
    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.exists(path):
        raise ImportError(f"RDKit's SA score module is missing ({path}); this RDKit build has no Contrib directory")
    spec = importlib.util.spec_from_file_location("rdkit_contrib_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def _fingerprinter() -> Any:
    return rdFingerprintGenerator.GetMorganGenerator(radius=FINGERPRINT_RADIUS, fpSize=FINGERPRINT_BITS)


def fingerprint(mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
    """Morgan fingerprint, radius 2, 2048 bits."""
    return _fingerprinter().GetFingerprint(mol)


@lru_cache(maxsize=64)
def lead_fingerprint(smiles: str) -> DataStructs.ExplicitBitVect:
    """Fingerprint of a lead SMILES; a ValueError naming it when RDKit rejects it."""
    mol, error = parse(smiles)
    if mol is None:
        raise ValueError(f"invalid lead SMILES {smiles!r}: {error}")
    return fingerprint(mol)


@lru_cache(maxsize=2)
def _catalog(name: str) -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog({"pains": FilterCatalogParams.FilterCatalogs.PAINS,
                       "brenk": FilterCatalogParams.FilterCatalogs.BRENK}[name])
    return FilterCatalog(params)


def alert_count(mol: Chem.Mol, name: str) -> int:
    """Number of ``name`` ("pains" or "brenk") filter entries that match ``mol``."""
    return len(_catalog(name).GetMatches(mol))


def large_rings(mol: Chem.Mol) -> int:
    """Rings (SSSR) with more than ``LARGE_RING`` atoms."""
    return sum(len(ring) > LARGE_RING for ring in mol.GetRingInfo().AtomRings())


def sa(mol: Chem.Mol) -> float:
    """Synthetic accessibility normalized to 0..1, higher = easier: ``(10 - SA) / 9``."""
    return (10.0 - sascorer().calculateScore(mol)) / 9.0


def score_mol(mol: Chem.Mol, names: Sequence[str], lead: str | None = None) -> list[float]:
    """The scores ``names`` (from ``SCORES``) of one molecule."""
    out = []
    for name in names:
        if name == "qed":
            out.append(QED.qed(mol))
        elif name == "sa":
            out.append(sa(mol))
        elif name == "logp":
            out.append(Crippen.MolLogP(mol))
        elif name == "mw":
            out.append(Descriptors.MolWt(mol))
        elif name == "tpsa":
            out.append(rdMolDescriptors.CalcTPSA(mol))
        elif name == "similarity":
            if lead is None:
                raise ValueError("the similarity score needs a lead SMILES")
            out.append(DataStructs.TanimotoSimilarity(fingerprint(mol), lead_fingerprint(lead)))
        elif name in ("pains", "brenk"):
            out.append(float(alert_count(mol, name)))
        elif name == "large_rings":
            out.append(float(large_rings(mol)))
        elif name == "bridgeheads":
            out.append(float(rdMolDescriptors.CalcNumBridgeheadAtoms(mol)))
        else:
            raise ValueError(f"unknown score {name!r}; choose from {list(SCORES)}")
    return out


def score_smiles(smiles: Sequence[str | None], names: Sequence[str], lead: str | None = None) -> np.ndarray:
    """Scores ``[n, len(names)]`` float64 of SMILES in this process; NaN rows for None or invalid SMILES."""
    names = tuple(names)
    if "similarity" in names and lead is not None:
        lead_fingerprint(lead)  # a bad lead is the caller's error, not a failed row
    out = np.full((len(smiles), len(names)), math.nan)
    with rdBase.BlockLogs():  # e.g. QED's RemoveHs warns about a lone [H]
        for i, smi in enumerate(smiles):
            if smi is None:
                continue
            mol, _ = parse(smi)
            if mol is not None:
                out[i] = score_mol(mol, names, lead)
    return out


def _pool_chunk(args: tuple[list[str | None], tuple[str, ...], str | None]) -> np.ndarray:
    return score_smiles(*args)


class Scorer:
    """Scores lists of SMILES, inline up to ``threshold`` molecules and in a pool of ``workers`` spawned
    processes above (started on first use, kept for later calls, shut down at exit).

    Spawned workers import the caller's main module (without its ``if __name__ == "__main__":`` block), as
    every ``spawn`` pool does; should the pool fail to start, batches are scored inline with one warning.
    """

    def __init__(self, workers: int | None = None, threshold: int = POOL_THRESHOLD, chunk: int = 128) -> None:
        self.workers = max(1, min(8, os.cpu_count() or 1) if workers is None else int(workers))
        self.threshold = int(threshold)
        self.chunk = int(chunk)
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False

    def __call__(self, smiles: Sequence[str | None], names: Sequence[str], lead: str | None = None) -> np.ndarray:
        """Scores ``[n, len(names)]`` (NaN rows for None or invalid SMILES)."""
        smiles, names = list(smiles), tuple(names)
        if len(smiles) <= self.threshold or self.workers < 2 or self._broken:
            return score_smiles(smiles, names, lead)
        if "similarity" in names and lead is not None:
            lead_fingerprint(lead)
        parts = [(smiles[i:i + self.chunk], names, lead) for i in range(0, len(smiles), self.chunk)]
        try:
            return np.concatenate(list(self._executor().map(_pool_chunk, parts)), axis=0)
        except (BrokenProcessPool, RuntimeError, OSError) as err:
            self._broken = True
            self.close()
            warnings.warn(f"the RDKit scoring pool failed ({type(err).__name__}: {err}); scoring inline from now on",
                          RuntimeWarning, stacklevel=2)
            return score_smiles(smiles, names, lead)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_warm_up)
            atexit.register(self.close)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes (a later large batch starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}


def _warm_up() -> None:
    """Worker start-up: load the SA fragment table and the alert catalogs once."""
    sascorer().readFragmentScores()
    _catalog("pains")
    _catalog("brenk")
