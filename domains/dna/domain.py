"""DNA enhancer design: 200 bp sequences scored by accessibility oracles, JASPAR motifs and GC content.

Objectives (any subset, each maximized unless a direction is given):
  - ``"gm12878"``, ``"hesc"``, ``"k562"``, ``"hepg2"``: the oracle's accessibility logit in that cell type;
  - ``"hepg2_specificity"``: the HepG2 logit minus the largest of the other three (HepG2-specific sites);
  - ``"motif:<NAME>"``: the best relative PWM score (0..1, both strands) of a JASPAR factor, e.g.
    ``"motif:HNF4A"``; a name with several matrices scores the best of them; a matrix id (``MA0114.5``)
    selects one matrix;
  - ``"gc"``: the fraction of G and C.
``oracle="reward"`` scores with oracle "a" (what an optimizer should see); ``"heldout"`` with oracle "b"
(trained on the other chromosome half; for judging designs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import torch

from workbench.domain import Domain
from workbench.generative import MaskedDiffusion
from workbench.objectives import Objective, as_objectives
from workbench.spaces import SequenceSpace

from .data import ALPHABET, CELL_TYPES, LENGTH, decode, encode, load_dhs, one_hot
from .motifs import MotifSet
from .oracle import ROLES, Oracle, load_oracle
from .prior import CONFIGS as PRIOR_CONFIGS
from .prior import load_prior

#: objective name -> column of the oracle's logits
CELL_OBJECTIVES = {c.lower(): j for j, c in enumerate(CELL_TYPES)}
OBJECTIVES = (*CELL_OBJECTIVES, "hepg2_specificity", "gc", "motif:<NAME>")
_HEPG2 = CELL_TYPES.index("HepG2")


def dna_space() -> SequenceSpace:
    """200 bp sequences over A, C, G, T (tokens 0..3)."""
    return SequenceSpace(list(ALPHABET), LENGTH)


class DNAEnhancer(Domain):
    """Cell-type-specific enhancers: ``SequenceSpace(list("ACGT"), 200)`` designs, see the module docstring.

    >>> dom = DNAEnhancer(objectives=("hepg2", ("k562", "minimize"), "motif:HNF4A"))
    >>> dom.evaluate(dom.encode(dom.dataset()["sequence"][:8]))   # {"hepg2": [8], "k562": [8], ...}
    """

    name = "dna_enhancer"

    def __init__(self, objectives: Sequence[str | tuple | Objective] | str = ("hepg2",), oracle: str = "reward",
                 device: str | torch.device | None = None, prior: str = "full") -> None:
        objs = as_objectives(objectives, default="maximize")
        bad = [o.name for o in objs if not (o.name in OBJECTIVES or o.name.startswith("motif:"))]
        if bad:
            raise ValueError(f"unknown objectives {bad}; choose from {list(OBJECTIVES)}")
        if oracle not in ROLES:
            raise ValueError(f"oracle must be one of {list(ROLES)}, got {oracle!r}")
        super().__init__(dna_space(), objs)
        self.oracle_role = oracle
        if prior not in PRIOR_CONFIGS:
            raise ValueError(f"prior must be one of {sorted(PRIOR_CONFIGS)}, got {prior!r}")
        self.prior_config = prior
        self.oracle: Oracle = load_oracle(oracle, device)
        self._motif_names = [o.name[len("motif:"):] for o in objs if o.name.startswith("motif:")]
        if any(not m for m in self._motif_names):
            raise ValueError("a motif objective needs a factor name, e.g. 'motif:HNF4A'")
        self.motifs: MotifSet | None = None
        self._motif_groups: list[list[int]] = []
        if self._motif_names:
            self.motifs = MotifSet.load(self._motif_names)
            self._motif_groups = [self.motifs.find(m) for m in self._motif_names]
        self._needs_oracle = any(o.name in CELL_OBJECTIVES or o.name == "hepg2_specificity" for o in objs)

    # ------------------------------------------------------------------ scoring
    def scores(self, onehot: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every objective ``[n]`` of one-hot or soft sequences ``[n, 200, 4]``, with the oracle called once
        and the motifs scanned once; differentiable with respect to ``onehot``."""
        if onehot.dim() != 3 or tuple(onehot.shape[1:]) != (LENGTH, len(ALPHABET)):
            raise ValueError(f"expected sequences [n, {LENGTH}, {len(ALPHABET)}], got shape {list(onehot.shape)}")
        out: dict[str, torch.Tensor] = {}
        if self._needs_oracle:
            if self.oracle.device != onehot.device:
                self.oracle.to(onehot.device)
            logits = self.oracle(onehot)  # [n, 4]
            for name, j in CELL_OBJECTIVES.items():
                out[name] = logits[:, j]
            others = torch.cat([logits[:, :_HEPG2], logits[:, _HEPG2 + 1:]], dim=1)
            out["hepg2_specificity"] = logits[:, _HEPG2] - others.amax(dim=1)
        if self.motifs is not None:
            rel = self.motifs.max_scores(onehot)  # [n, m]
            for name, group in zip(self._motif_names, self._motif_groups):
                out[f"motif:{name}"] = rel[:, group].amax(dim=1)
        out["gc"] = onehot[..., 1:3].sum(dim=2).mean(dim=1)
        return {o.name: out[o.name] for o in self.objectives}

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives by name, each ``[n]`` float64 on ``x``'s device, of tokens ``x: [n, 200]`` (int64)."""
        x = self.space.check_batch(torch.as_tensor(x))
        with torch.no_grad():
            return {k: v.to(torch.float64) for k, v in self.scores(one_hot(x)).items()}

    def evaluate_soft(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable objectives ``[n]`` of relaxed sequences ``probs: [n, 200, 4]`` (rows sum to 1);
        on one-hot rows they equal :meth:`evaluate`'s values. Gradients flow to ``probs``."""
        if not probs.dtype.is_floating_point:
            raise TypeError(f"evaluate_soft expects float probabilities [n, {LENGTH}, 4], got {probs.dtype}; "
                            "use evaluate() for tokens")
        return self.scores(probs)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The oracle's logits ``[n, 4]`` (``CELL_TYPES`` order) of tokens ``x: [n, 200]``."""
        x = self.space.check_batch(torch.as_tensor(x))
        if self.oracle.device != x.device:
            self.oracle.to(x.device)
        with torch.no_grad():
            return self.oracle(one_hot(x))

    # ------------------------------------------------------------- sequences
    def encode(self, sequences: Iterable[str] | str) -> torch.Tensor:
        """DNA strings (200 bp; A, C, G, T, lowercase allowed; no N) -> tokens ``[n, 200]`` int64."""
        return encode(sequences, LENGTH)

    def decode(self, x: torch.Tensor) -> list[str]:
        """Tokens ``[n, 200]`` -> uppercase DNA strings."""
        return decode(self.space.validate(torch.as_tensor(x)))

    def prior(self) -> MaskedDiffusion:
        """The masked-diffusion prior trained on the training split (``prior="full"`` or ``"tiny"``)."""
        return load_prior(self.prior_config, self.oracle.device)

    def dataset(self) -> pd.DataFrame:
        """The 47,872 real DHS sequences: ``dhs_id, chr, start, sequence``, the 0/1 labels per cell type
        (``CELL_TYPES``; exactly one is 1) and ``split`` (train, validation = chr2, test = chr1)."""
        return load_dhs()

    def render(self, x: torch.Tensor, ax: Any = None, per_row: int = 50) -> Any:
        """The sequence logo of designs ``x: [n, 200]`` (tokens), in rows of ``per_row`` positions: letters as tall
        as their frequency times the position's information content (2 bits where all designs agree)."""
        from workbench.report.logo import NUCLEOTIDE_COLOURS, sequence_logo

        sequences = self.decode(x)
        return sequence_logo(sequences, ALPHABET, NUCLEOTIDE_COLOURS, ax=ax, per_row=per_row,
                             title=f"{len(sequences)} design{'s' * (len(sequences) != 1)}, {LENGTH} bp")

    def describe(self) -> dict[str, Any]:
        spec = super().describe()
        spec["settings"] = {"oracle": self.oracle_role, "oracle_half": ROLES[self.oracle_role],
                            "prior": self.prior_config}
        return spec
