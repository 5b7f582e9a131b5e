"""Small-molecule design: SELFIES token rows scored by RDKit.

Objectives (any subset; default directions in ``OBJECTIVES``, override with ``(name, direction)``):
  - ``"qed"`` (maximize): drug-likeness, 0..1;
  - ``"sa"`` (maximize): synthetic accessibility ``(10 - SA) / 9``, 1 = easiest;
  - ``"logp"`` (maximize): Crippen logP;
  - ``"mw"`` (minimize): molecular weight, Da;
  - ``"tpsa"`` (minimize): topological polar surface area, A^2;
  - ``"similarity"`` (maximize): Tanimoto similarity (Morgan, radius 2, 2048 bits) to ``lead``.
Constraints (``CONSTRAINTS``, counts that must be <= 0): ``"pains"``, ``"brenk"``, ``"large_rings"``,
``"bridgeheads"``.
Rows that are no molecule fail with the reason (the space's ``invalid_rows``). See ``docs/molecules.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import torch

from workbench.domain import Domain
from workbench.generative import MaskedDiffusion
from workbench.objectives import Constraint, Objective, as_constraints, as_objectives

from . import tokens
from .data import load_moses
from .objectives import ALERTS, POOL_THRESHOLD, Scorer, lead_fingerprint
from .prior import CONFIGS as PRIOR_CONFIGS
from .prior import load_prior
from .render import draw_grid
from .space import MoleculeSpace
from .surrogate import TARGETS, Surrogate, load_surrogate
from .surrogate import resolve as resolve_surrogate

#: objective name -> default direction
OBJECTIVES = {"qed": "maximize", "sa": "maximize", "logp": "maximize", "mw": "minimize", "tpsa": "minimize",
              "similarity": "maximize"}
CONSTRAINTS = ALERTS


class Molecules(Domain):
    """Molecules as SELFIES token rows ``[n, LENGTH]``, scored by RDKit (see the module docstring).

    ``lead``: the SMILES that ``"similarity"`` compares with (required for it). ``prior``: "full" or "tiny".
    ``surrogate`` (for ``evaluate_soft``): "full", "tiny", "auto" (full when its checkpoint exists) or the path of
    a checkpoint written by ``train_surrogate --out``.
    ``workers`` / ``pool_threshold``: batches of more than ``pool_threshold`` molecules are scored in a pool of
    ``workers`` processes (default: the CPU count, at most 8), smaller ones inline.

    >>> dom = Molecules(objectives=("qed", "sa"), constraints=("pains",))
    >>> dom.evaluate(dom.encode(["CC(=O)Oc1ccccc1C(=O)O"]))   # {"qed": [1], "sa": [1], "pains": [1]}
    """

    name = "molecules"

    def __init__(self, objectives: Sequence[str | tuple | Objective] | str = ("qed", "sa"),
                 constraints: Sequence[str | tuple | Constraint] = ("pains", "brenk"), lead: str | None = None,
                 prior: str = "full", device: str | torch.device | None = None, workers: int | None = None,
                 pool_threshold: int = POOL_THRESHOLD, surrogate: str = "auto") -> None:
        objs = as_objectives(objectives, directions=OBJECTIVES, default="maximize")
        cons = as_constraints(constraints)
        bad = [o.name for o in objs if o.name not in OBJECTIVES]
        if bad:
            raise ValueError(f"unknown objectives {bad}; choose from {list(OBJECTIVES)}")
        bad = [c.name for c in cons if c.name not in CONSTRAINTS]
        if bad:
            raise ValueError(f"unknown constraints {bad}; choose from {list(CONSTRAINTS)}")
        if prior not in PRIOR_CONFIGS:
            raise ValueError(f"prior must be one of {sorted(PRIOR_CONFIGS)}, got {prior!r}")
        names = [o.name for o in objs]
        if "similarity" in names and lead is None:
            raise ValueError("the 'similarity' objective needs a lead molecule: Molecules(..., lead='SMILES')")
        if lead is not None:
            lead_fingerprint(lead)  # a ValueError naming the lead when RDKit rejects it
            lead = tokens.canonical(lead)
        super().__init__(MoleculeSpace(), objs, cons)
        self.lead = lead
        self.prior_config = prior
        self.surrogate_config = resolve_surrogate(surrogate)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.scorer = Scorer(workers, pool_threshold)
        self._names = tuple(names + [c.name for c in cons])
        self._surrogate: Surrogate | None = None

    # ------------------------------------------------------------------ scoring
    def score(self, smiles: Sequence[str | None]) -> pd.DataFrame:
        """RDKit scores of SMILES: one column per objective and constraint (NaN where no molecule)."""
        values = self.scorer(list(smiles), self._names, self.lead)
        return pd.DataFrame(values, columns=list(self._names))

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives and constraints by name, each ``[n]`` float64 (CPU), of token rows ``x: [n, LENGTH]``;
        NaN for rows that are no molecule (the evaluation engine reports those with the reason first)."""
        x = self.space.check_batch(torch.as_tensor(x))
        smiles = [tokens.decode_one(s)[0] for s in tokens.to_selfies(x)]
        values = torch.from_numpy(self.scorer(smiles, self._names, self.lead))
        return {name: values[:, j] for j, name in enumerate(self._names)}

    def surrogate(self, device: str | torch.device | None = None) -> Surrogate:
        """The differentiable surrogate of the RDKit scores (loaded on first use)."""
        if self._surrogate is None:
            self._surrogate = load_surrogate(self.surrogate_config, device or self.device)
        if device is not None and self._surrogate.mean.device != torch.device(device):
            self._surrogate = self._surrogate.to(device)
        return self._surrogate

    def evaluate_soft(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The surrogate's differentiable scores ``[n]`` of relaxed token rows ``probs: [n, LENGTH, V]`` (V = the
        alphabet, or the alphabet plus padding as the prior writes them); gradients flow to ``probs``.

        Approximations of RDKit's values (see ``docs/molecules.md`` for their accuracy). ``"pains"`` and
        ``"bridgeheads"`` are 0 (no gradient; MOSES holds almost no PAINS hits or bridged rings to learn from), so
        the stored RDKit counts alone enforce them.
        ``"similarity"`` has no surrogate, so studies that optimize it need a derivative-free sampler (SVDD, SMC,
        best-of-N).
        """
        if not probs.dtype.is_floating_point:
            raise TypeError(f"evaluate_soft expects float probabilities [n, {self.space.length}, V], got "
                            f"{probs.dtype}; use evaluate() for tokens")
        vocab = self.space.vocab_size
        if probs.dim() != 3 or probs.shape[1] != self.space.length or probs.shape[2] not in (vocab, vocab + 1):
            raise ValueError(f"expected relaxed rows [n, {self.space.length}, {vocab} or {vocab + 1}], got "
                             f"{list(probs.shape)}")
        missing = [n for n in self._names if n not in TARGETS and n not in ("pains", "bridgeheads")]
        if missing:
            raise ValueError(f"{missing} have no differentiable surrogate; use a derivative-free sampler "
                             "(SVDD, SMC, best-of-N) for them")
        if probs.shape[2] == vocab:  # no padding column: nothing is padding
            probs = torch.cat([probs, torch.zeros_like(probs[..., :1])], dim=2)
        model = self.surrogate(probs.device)
        out = model(probs.float())
        zeros = torch.zeros(len(probs), dtype=out.dtype, device=out.device)
        return {name: out[:, model.targets.index(name)] if name in model.targets else zeros for name in self._names}

    # ------------------------------------------------------------- molecules
    def encode(self, smiles: Iterable[str] | str) -> torch.Tensor:
        """SMILES -> token rows ``[n, LENGTH]``; a ValueError names the first SMILES that is invalid or does not
        fit the vocabulary or length."""
        return tokens.encode(smiles)

    def decode(self, x: torch.Tensor) -> list[str | None]:
        """Token rows -> canonical SMILES (None where a row is no molecule)."""
        return self.space.decode(torch.as_tensor(x))

    def with_smiles(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of stored results (SELFIES in ``sequence``, as ``StudyResults`` opened without this domain show
        them) with the canonical ``smiles`` column added; a frame that has ``smiles`` already comes back as is."""
        if "smiles" in frame.columns:
            return frame.copy()
        if "sequence" not in frame.columns:
            raise ValueError(f"expected a 'sequence' column of SELFIES strings, got {list(frame.columns)}")
        out = frame.copy()
        out.insert(list(out.columns).index("sequence"), "smiles",
                   [tokens.decode_one(s)[0] for s in out["sequence"].astype(str)])
        return out

    def prior(self) -> MaskedDiffusion:
        """The masked-diffusion prior trained on MOSES train (``prior="full"`` or ``"tiny"``)."""
        return load_prior(self.prior_config, self.device)

    def dataset(self, split: str = "train") -> pd.DataFrame:
        """The MOSES molecules of ``split`` ("train", "test", "test_scaffolds"): one ``smiles`` column; needs the
        molsets package (``data.load_sample()`` is the committed 2,000-molecule sample)."""
        return load_moses(split)

    def render(self, x: torch.Tensor, ax: Any = None, legend: str | Sequence[str] = "smiles", per_row: int = 4) -> Any:
        """Draw designs ``x`` in a grid on ``ax``; ``legend``: "smiles", "scores" (this domain's objectives) or
        one string per design. Returns the Axes."""
        smiles = self.decode(x)
        if legend == "smiles":
            labels = [s or "(no molecule)" for s in smiles]
        elif legend == "scores":
            frame = self.score(smiles)
            labels = [" ".join(f"{c} {v:.2f}" for c, v in row.items() if c in {o.name for o in self.objectives})
                      for _, row in frame.iterrows()]
        else:
            labels = list(legend)
        return draw_grid(smiles, labels, ax, per_row)

    def describe(self) -> dict[str, Any]:
        spec = super().describe()
        spec["settings"] = {"lead": self.lead, "prior": self.prior_config, "surrogate": self.surrogate_config}
        return spec
