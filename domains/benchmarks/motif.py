"""PlantedMotif: a tiny DNA-like sequence benchmark whose reward counts a planted motif.

Its data are random sequences, a share of which carry the motif; its prior is a small
masked-diffusion model trained on them in seconds on a CPU. It exists to check that the
reward-guided samplers are generic: the same code that designs enhancers runs here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from workbench.domain import Domain
from workbench.generative import MaskedDiffusion, train_prior
from workbench.spaces import SequenceSpace

ALPHABET = list("ACGT")
OBJECTIVES = {"motif_count": "maximize", "gc": "maximize"}
_PRIORS: dict[tuple, MaskedDiffusion] = {}  # trained priors, shared by instances with the same data


class PlantedMotif(Domain):
    """Sequences of ``length`` over ACGT; ``motif_count`` = occurrences of ``motif`` (overlaps count),
    ``gc`` = share of G and C (conflicts with an AT-rich motif, for two-objective fronts)."""

    name = "planted_motif"

    def __init__(self, motif: str = "TATAAT", length: int = 32, objectives: tuple[str, ...] = ("motif_count",),
                 n_data: int = 4000, plant_rate: float = 0.3, seed: int = 0, prior_steps: int = 400) -> None:
        unknown = [o for o in objectives if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objectives {unknown}; choose from {sorted(OBJECTIVES)}")
        bad = sorted(set(motif) - set(ALPHABET))
        if not motif or bad or len(motif) > length:
            raise ValueError(f"motif must be 1..{length} letters of ACGT, got {motif!r}")
        super().__init__(SequenceSpace(ALPHABET, length), [(o, OBJECTIVES[o]) for o in objectives])
        self.motif = motif
        self.motif_tokens = torch.tensor([ALPHABET.index(c) for c in motif])
        self.n_data, self.plant_rate, self.seed, self.prior_steps = n_data, plant_rate, seed, prior_steps

    # ------------------------------------------------------------------ data
    def tokens(self) -> torch.Tensor:
        """The data set as tokens ``[n_data, length]`` (seeded)."""
        g = torch.Generator().manual_seed(self.seed)
        length, k = self.space.length, len(self.motif)
        x = torch.randint(0, 4, (self.n_data, length), generator=g)
        planted = torch.rand(self.n_data, generator=g) < self.plant_rate
        starts = torch.randint(0, length - k + 1, (self.n_data,), generator=g)
        cols = starts.unsqueeze(1) + torch.arange(k)
        rows = torch.nonzero(planted).flatten()
        x[rows.unsqueeze(1), cols[rows]] = self.motif_tokens
        return x

    def dataset(self) -> pd.DataFrame:
        return pd.DataFrame({"sequence": self.space.decode(self.tokens())})

    def prior(self) -> MaskedDiffusion:
        """A small masked-diffusion prior trained on :meth:`tokens` (cached per data configuration)."""
        key = (self.motif, self.space.length, self.n_data, self.plant_rate, self.seed, self.prior_steps)
        if key not in _PRIORS:
            torch.manual_seed(self.seed)  # weight initialization
            model = MaskedDiffusion.for_space(self.space, hidden=64, blocks=4, kernel=5, dilations=[1, 2, 4, 8],
                                              dropout=0.0)
            data = self.tokens()
            train_prior(model, data[: -200], data[-200:], steps=self.prior_steps, batch_size=128, lr=3e-3,
                                   warmup=50, ema=0.99, seed=self.seed, eval_every=self.prior_steps, log=None)
            _PRIORS[key] = model
        return _PRIORS[key]

    # ------------------------------------------------------------ objectives
    def _scores(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """probs ``[n, L, 4]`` (one-hot or relaxed) -> objective values ``[n]`` each."""
        k = len(self.motif)
        windows = probs.unfold(1, k, 1)  # [n, L - k + 1, 4, k]
        idx = self.motif_tokens.to(probs.device).view(1, 1, 1, k).expand(windows.shape[0], windows.shape[1], 1, k)
        match = windows.gather(2, idx).squeeze(2).prod(dim=-1)  # [n, L - k + 1]
        out = {"motif_count": match.sum(dim=1), "gc": probs[..., 1:3].sum(dim=(1, 2)) / probs.shape[1]}
        return {o.name: out[o.name] for o in self.objectives}

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._scores(torch.nn.functional.one_hot(x.long(), 4).float())

    def evaluate_soft(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        if probs.dim() != 3 or probs.shape[1:] != (self.space.length, 4):
            raise ValueError(f"expected relaxed sequences [n, {self.space.length}, 4], got {list(probs.shape)}")
        return self._scores(probs)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["motif"] = self.motif
        return out
