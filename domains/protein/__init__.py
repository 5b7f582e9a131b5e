"""Protein inverse folding on real backbones: sequences for a fixed structure (the protein task of DRAKES).

``ProteinDesign``: ``SequenceSpace(list("ACDEFGHIKLMNPQRSTVWY"), L)`` designs for one backbone (shipped: 1A8O:A,
4CUP:A, 1GBT:A, 7CFN:N, or any PDB / mmCIF chain), scored by ProteinMPNN fold fit (a checkpoint other than the
prior's; a third, CA-only one as the held-out oracle) and ProtParam terms; ``evaluate_soft`` gives
differentiable scores of relaxed sequences. ``prior()`` is ProteinMPNN as an any-order masked-diffusion prior,
so every reward-guided sampler runs on it. ``metrics``: recovery, stable fraction, held-out and prior
log-likelihoods, diversity. Needs the ``proteinmpnn`` (weights) and ``biopython`` packages; see
``docs/protein.md``.
"""

from .domain import OBJECTIVES, ORACLES, STABLE_BELOW, ProteinDesign
from .metrics import diversity, heldout_log_likelihood, prior_log_likelihood, recovery, stable_fraction, summarize
from .mpnn import CHECKPOINTS, Encoding, ProteinMPNN, encode_backbone, load_mpnn
from .objectives import FoldFit, gravy, instability, isoelectric_points
from .prior import MPNNDenoiser, build_prior, decoding_rank, load_prior
from .structure import ALPHABET, SHIPPED, Backbone, load_backbone, parse_structure

__all__ = ["ProteinDesign", "OBJECTIVES", "ORACLES", "STABLE_BELOW", "ALPHABET", "SHIPPED", "Backbone",
           "load_backbone", "parse_structure", "CHECKPOINTS", "ProteinMPNN", "Encoding", "load_mpnn", "encode_backbone",
           "MPNNDenoiser", "build_prior", "load_prior", "decoding_rank", "FoldFit", "instability", "gravy",
           "isoelectric_points", "recovery", "diversity", "stable_fraction", "heldout_log_likelihood",
           "prior_log_likelihood", "summarize"]
