"""DNA enhancer design on real ENCODE DNase data: 200 bp sequences accessible in one of four cell types.

``DNAEnhancer``: ``SequenceSpace(list("ACGT"), 200)`` designs scored by CNN accessibility oracles (per cell
type logits, HepG2 specificity), JASPAR motif scores and GC content; ``evaluate_soft`` gives differentiable
scores of relaxed sequences. Two oracles trained on disjoint chromosome halves: "reward" (for optimizers)
and "heldout" (for judging designs). ``metrics``: DRAKES' 3-mer and motif correlations, accessible fraction,
diversity and the reference set of top real sequences. See ``docs/dna.md``.
"""

from .data import (ALPHABET, CELL_TYPES, HALVES, LENGTH, SPLITS, decode, encode, labels, load_dhs, load_tokens,
                   one_hot)
from .domain import OBJECTIVES, DNAEnhancer, dna_space
from .metrics import (accessible_fraction, diversity, kmer_correlation, kmer_counts, kmer_frequencies,
                      motif_correlation, motif_hits, summarize, top_real_sequences)
from .motifs import HIT_THRESHOLD, MotifSet
from .oracle import Oracle, load_oracle, reverse_complement

__all__ = ["DNAEnhancer", "dna_space", "OBJECTIVES", "CELL_TYPES", "ALPHABET", "LENGTH", "SPLITS", "HALVES",
           "load_dhs", "load_tokens", "labels", "encode", "decode", "one_hot", "Oracle", "load_oracle",
           "reverse_complement", "MotifSet", "HIT_THRESHOLD", "kmer_counts", "kmer_frequencies", "kmer_correlation",
           "motif_hits", "motif_correlation", "diversity", "accessible_fraction", "top_real_sequences", "summarize"]
