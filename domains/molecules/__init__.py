"""Small-molecule design on RDKit: SELFIES token designs of MOSES-like molecules.

``Molecules``: ``MoleculeSpace`` designs (SELFIES ids, right-padded; shown as canonical SMILES) scored by RDKit
(QED, synthetic accessibility, logP, weight, TPSA, Tanimoto similarity to a lead; PAINS, Brenk and large-ring
alerts as constraints), batches over a process pool; ``evaluate_soft`` through a CNN surrogate of those
scores (for DRAKES and DPS; stored numbers always come from RDKit). ``prior()``: a masked-diffusion model trained
on MOSES train. ``metrics``: the MOSES metrics. Data: ``data.load_moses`` (from the ``molsets`` wheel, see
``docs/data.md``). See ``docs/molecules.md``.

Names are imported on first use (PEP 562): ``python -m domains.molecules.train_prior`` needs only torch and the
repository (no RDKit or selfies), so nothing chemical is imported with the package.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .data import SPLITS, load_moses, load_sample, read_token_file
    from .domain import CONSTRAINTS, OBJECTIVES, Molecules
    from .metrics import (fragment_similarity, frechet_chemnet_distance, internal_diversity,
                          nearest_neighbor_similarity, novelty, scaffold_similarity, summarize, uniqueness, validity)
    from .objectives import ALERTS, PROPERTIES, Scorer, score_smiles
    from .prior import load_prior
    from .space import MoleculeSpace
    from .surrogate import Surrogate, load_surrogate
    from .tokens import canonical, decode, encode
    from .vocab import alphabet, length

#: public name -> the submodule that defines it
_EXPORTS = {
    "Molecules": "domain", "OBJECTIVES": "domain", "CONSTRAINTS": "domain",
    "MoleculeSpace": "space", "encode": "tokens", "decode": "tokens", "canonical": "tokens",
    "alphabet": "vocab", "length": "vocab",
    "load_moses": "data", "load_sample": "data", "read_token_file": "data", "SPLITS": "data",
    "PROPERTIES": "objectives", "ALERTS": "objectives", "Scorer": "objectives", "score_smiles": "objectives",
    "load_prior": "prior", "Surrogate": "surrogate", "load_surrogate": "surrogate",
    **{name: "metrics" for name in ("validity", "uniqueness", "novelty", "internal_diversity", "scaffold_similarity",
                                    "fragment_similarity", "nearest_neighbor_similarity",
                                    "frechet_chemnet_distance", "summarize")},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
