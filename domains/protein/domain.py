"""Protein inverse folding: sequences for one fixed backbone, the protein task of DRAKES.

Objectives (any subset; default directions in brackets, override with ``(name, direction)``):
  - ``"fold_fit"`` [maximize]: ProteinMPNN's mean per-residue log-likelihood of the sequence on the backbone
    (nats; :class:`.objectives.FoldFit`), from a checkpoint other than the prior's;
  - ``"instability"`` [minimize]: the ProtParam instability index (below 40: predicted stable);
  - ``"gravy"`` [minimize]: the mean Kyte-Doolittle hydropathy (lower: more hydrophilic);
  - ``"pi"`` [maximize]: the isoelectric point (Biopython; no differentiable form).
The prior is ProteinMPNN ``vanilla_v_48_020`` as a masked-diffusion model (:mod:`.prior`). ``oracle="reward"``
scores fold fit with ``soluble_v_48_020`` (what an optimizer sees); ``"heldout"`` with the CA-only model
``ca_v_48_020``, a third network the optimization never sees (for judging designs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import torch

from workbench.domain import Domain
from workbench.generative import MaskedDiffusion, Partial
from workbench.objectives import Objective, as_objectives
from workbench.spaces import SequenceSpace

from .mpnn import CHECKPOINTS, weights_file
from .objectives import FoldFit, gravy, instability, isoelectric_points
from .prior import PRIOR_CHECKPOINT, load_prior
from .structure import ALPHABET, Backbone, load_backbone

#: objective name -> its default direction
OBJECTIVES = {"fold_fit": "maximize", "instability": "minimize", "gravy": "minimize", "pi": "maximize"}
#: the oracle roles -> the ProteinMPNN checkpoint that scores "fold_fit"
ORACLES = {"reward": "soluble_v_48_020", "heldout": "ca_v_48_020"}
#: the instability index below which a protein is predicted stable (Guruprasad et al., 1990)
STABLE_BELOW = 40.0


def _check_checkpoint(name: str, role: str) -> str:
    if name not in CHECKPOINTS:
        raise ValueError(f"unknown {role} checkpoint {name!r}; choose from {sorted(CHECKPOINTS)}")
    return name


class ProteinDesign(Domain):
    """Sequences ``SequenceSpace(list(ALPHABET), L)`` for one backbone; see the module docstring.

    ``backbone``: ``"1A8O"`` / ``"1A8O:A"`` (shipped: 1A8O:A, 4CUP:A, 1GBT:A, 7CFN:N), ``"file.pdb:B"``,
    ``(path, chain)`` or a :class:`Backbone`. ``orders``: decoding orders averaged by the fold fit.

    >>> dom = ProteinDesign("1A8O:A", objectives=("fold_fit", "instability"))
    >>> dom.evaluate(dom.encode(dom.native))      # {"fold_fit": [1], "instability": [1]}, float64
    """

    name = "protein_design"

    def __init__(self, backbone: str | Backbone | tuple = "1A8O:A",
                 objectives: Sequence[str | tuple | Objective] | str = ("fold_fit",), oracle: str = "reward",
                 device: str | torch.device | None = None, orders: int = 4, prior_checkpoint: str = PRIOR_CHECKPOINT,
                 reward_checkpoint: str = ORACLES["reward"], heldout_checkpoint: str = ORACLES["heldout"]) -> None:
        objs = as_objectives(objectives, default="maximize", directions=OBJECTIVES)
        bad = [o.name for o in objs if o.name not in OBJECTIVES]
        if bad:
            raise ValueError(f"unknown objectives {bad}; choose from {list(OBJECTIVES)}")
        if oracle not in ORACLES:
            raise ValueError(f"oracle must be one of {list(ORACLES)}, got {oracle!r}")
        self.checkpoints = {"prior": _check_checkpoint(prior_checkpoint, "prior"),
                            "reward": _check_checkpoint(reward_checkpoint, "reward"),
                            "heldout": _check_checkpoint(heldout_checkpoint, "held-out")}
        if heldout_checkpoint in (prior_checkpoint, reward_checkpoint):
            raise ValueError(f"the held-out checkpoint {heldout_checkpoint!r} must differ from the prior's and the "
                             "reward's: the optimization must never see it")
        if any(o.name == "fold_fit" for o in objs):
            weights_file(self.checkpoints[oracle])  # fail now, not at every evaluation, if the weights are missing
        self.backbone = load_backbone(backbone)
        super().__init__(SequenceSpace(list(ALPHABET), self.backbone.length), objs)
        self.oracle_role = oracle
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.orders = int(orders)
        self._fold_fit: dict[str, FoldFit] = {}

    # ------------------------------------------------------------------ scoring
    def fold_fit(self, x: torch.Tensor, role: str | None = None) -> torch.Tensor:
        """Fold fit ``[n]`` of tokens ``[n, L]`` or probabilities ``[n, L, 20]`` under the checkpoint of ``role``
        ("reward", "heldout" or "prior"; default: this domain's oracle); differentiable for probabilities."""
        role = role or self.oracle_role
        if role not in self.checkpoints:
            raise ValueError(f"role must be one of {list(self.checkpoints)}, got {role!r}")
        if role not in self._fold_fit:
            self._fold_fit[role] = FoldFit(self.checkpoints[role], self.backbone, self.orders)
        probs = x if x.is_floating_point() else self.one_hot(x)
        return self._fold_fit[role](probs)

    def scores(self, probs: torch.Tensor, sequences: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Every objective ``[n]`` of sequences ``probs [n, L, 20]`` (one-hot or relaxed); "pi" needs the hard
        ``sequences``. Differentiable with respect to ``probs`` (but for "pi")."""
        length = self.backbone.length
        if probs.dim() != 3 or tuple(probs.shape[1:]) != (length, len(ALPHABET)):
            raise ValueError(f"expected sequences [n, {length}, {len(ALPHABET)}], got shape {list(probs.shape)}")
        out: dict[str, torch.Tensor] = {}
        for objective in self.objectives:
            name = objective.name
            if name == "fold_fit":
                out[name] = self.fold_fit(probs)
            elif name == "instability":
                out[name] = instability(probs)
            elif name == "gravy":
                out[name] = gravy(probs)
            elif sequences is None:
                raise ValueError("'pi' (the isoelectric point) has no differentiable form; leave it out of the "
                                 "objectives of gradient-based samplers (DRAKES, DPS)")
            else:
                out[name] = isoelectric_points(sequences).to(probs.device)
        return out

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives by name, each ``[n]`` float64 on ``x``'s device, of tokens ``x: [n, L]`` (int64)."""
        x = self.check_tokens(x)
        with torch.no_grad():  # float64 one-hots: the ProtParam sums are exact; the fold fit runs in float32
            pi = any(o.name == "pi" for o in self.objectives)
            out = self.scores(self.one_hot(x).double(), self.decode(x) if pi else None)
        return {k: v.to(torch.float64) for k, v in out.items()}

    def evaluate_soft(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable objectives ``[n]`` of relaxed sequences ``probs: [n, L, 20]`` (rows sum to 1); on
        one-hot rows they equal :meth:`evaluate`'s values. "pi" has no relaxed form (a ValueError)."""
        if not probs.dtype.is_floating_point:
            raise TypeError(f"evaluate_soft expects float probabilities [n, L, 20], got {probs.dtype}; "
                            "use evaluate() for tokens")
        return self.scores(probs)

    # ------------------------------------------------------------- sequences
    @property
    def native(self) -> str:
        """The backbone's own sequence."""
        return self.backbone.sequence

    def native_tokens(self) -> torch.Tensor:
        """The native sequence as tokens ``[L]`` int64."""
        return self.backbone.tokens()

    def check_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[n, L]`` of the space, or a ValueError naming the first bad row."""
        x = self.space.check_batch(torch.as_tensor(x))
        bad = self.space.invalid_rows(x)
        if bad:
            row, reason = min(bad.items())
            raise ValueError(f"row {row} is not a sequence of {self.backbone.length} amino acids: {reason}")
        return x

    def one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens ``[n, L]`` -> one-hot ``[n, L, 20]`` float32."""
        return torch.nn.functional.one_hot(self.check_tokens(x), len(ALPHABET)).float()

    def encode(self, sequences: Iterable[str] | str) -> torch.Tensor:
        """One-letter sequences (case-insensitive, the backbone's length) -> tokens ``[n, L]`` int64; a ValueError
        names a letter that is not one of the 20 amino acids, with its position."""
        if isinstance(sequences, str):
            sequences = [sequences]
        rows = []
        for k, seq in enumerate(sequences):
            seq = str(seq).upper()
            if len(seq) != self.backbone.length:
                raise ValueError(f"sequence {k} has length {len(seq)}; backbone {self.backbone.name} has "
                                 f"{self.backbone.length} residues")
            for i, letter in enumerate(seq):
                if letter not in ALPHABET:
                    raise ValueError(f"sequence {k} has invalid letter {letter!r} at position {i}; amino acids are "
                                     f"{ALPHABET}")
            rows.append([ALPHABET.index(c) for c in seq])
        return torch.tensor(rows, dtype=torch.int64).reshape(-1, self.backbone.length)

    def decode(self, x: torch.Tensor) -> list[str]:
        """Tokens ``[n, L]`` -> one-letter sequences."""
        return self.space.decode(self.check_tokens(x))

    def partial(self, fixed: Sequence[int] | torch.Tensor) -> Partial:
        """A :class:`~workbench.generative.Partial` that keeps the native residues at ``fixed`` (positions, or a
        bool mask ``[L]``) for infilling the rest."""
        mask = torch.as_tensor(fixed)
        if mask.dtype != torch.bool:
            positions = mask.long().reshape(-1)
            if positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= self.backbone.length):
                raise ValueError(f"fixed positions must lie in 0..{self.backbone.length - 1}")
            mask = torch.zeros(self.backbone.length, dtype=torch.bool)
            mask[positions] = True
        if tuple(mask.shape) != (self.backbone.length,):
            raise ValueError(f"a fixed mask must have shape [{self.backbone.length}], got {list(mask.shape)}")
        return Partial(self.native_tokens(), mask)

    def prior(self) -> MaskedDiffusion:
        """ProteinMPNN (``prior_checkpoint``) on this backbone as a masked-diffusion prior (shared; do not modify)."""
        return load_prior(self.backbone, self.checkpoints["prior"], self.device)

    def dataset(self) -> pd.DataFrame:
        """The native sequence of the backbone (one row: ``backbone``, ``sequence``)."""
        return pd.DataFrame({"backbone": [self.backbone.name], "sequence": [self.native]})

    def render(self, x: torch.Tensor, ax: Any = None, per_row: int = 50) -> Any:
        """The sequence logo of designs ``x: [n, L]`` (tokens), coloured by chemistry, with the backbone's native
        sequence under each row (red where the designs' most frequent residue differs from it)."""
        from workbench.report.logo import AMINO_ACID_COLOURS, sequence_logo

        sequences = self.decode(x)
        title = (f"{len(sequences)} design{'s' * (len(sequences) != 1)} for {self.backbone.name} "
                 f"({self.backbone.length} residues)")
        return sequence_logo(sequences, ALPHABET, AMINO_ACID_COLOURS, ax=ax, per_row=per_row, reference=self.native,
                             title=title)

    def describe(self) -> dict[str, Any]:
        spec = super().describe()
        spec["settings"] = {"backbone": self.backbone.name, "length": self.backbone.length, "oracle": self.oracle_role,
                            "orders": self.orders, "checkpoints": dict(self.checkpoints),
                            "fold_fit_checkpoint": self.checkpoints[self.oracle_role]}
        return spec
