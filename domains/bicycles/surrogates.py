"""Small MLP ensembles standing in for FEA, the validity check and CFD of the bicycle data sets.

A :class:`Surrogate` maps design rows (one float per column, as a ``MixedSpace`` encodes them:
a categorical as its choice index, a switch as 0/1) to predictions in original units, and
returns the mean and the standard deviation over its ensemble members.

Input encoding (fixed per model, stored in its checkpoint):
  - real columns: optionally ``log`` (strictly positive, heavy-tailed ones: tube diameters and
    wall thicknesses), then standardized with a mean and standard deviation computed after
    clipping the training values to their 0.5 / 99.5 % quantiles (a few corrupt rows, e.g.
    ``Stack`` = 544 m, would otherwise set the scale), then clamped to +-``clamp`` standard
    deviations, so designs far outside the data saturate instead of extrapolating wildly;
  - tube sections (optional): for each (outer diameter, wall thickness) pair the log of the
    cross-section area and of the section modulus ``I / (OD / 2)`` of the tube (inner diameter
    ``max(OD - 2 t, 0)``: a wall thicker than the radius makes a solid bar); these are what
    stresses and stiffnesses depend on, and they are standardized like the real columns;
  - binary columns: 0/1 as they are; categorical columns: one-hot.
Targets: regression targets are optionally ``log``-transformed, then standardized; the member
outputs are mapped back to original units before the mean / std over members are taken.
Classifiers output logits; members' probabilities are averaged.

A checkpoint is a plain dict of tensors, strings, numbers and lists (``torch.save``), loadable with
``torch.load(path, weights_only=True)``: ``{"format", "config", "state"}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from workbench.checkpoints import Checkpointed, read_checkpoint

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
MODELS = ("structure", "validity", "drag")


class EnsembleMLP(nn.Module):
    """``members`` independent MLPs evaluated in one batched matmul per layer (SiLU activations)."""

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int], members: int) -> None:
        super().__init__()
        sizes = [n_in, *hidden, n_out]
        self.members = members
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            w = torch.empty(members, a, b)
            for m in range(members):  # default nn.Linear initialisation, member by member
                nn.init.kaiming_uniform_(w[m].T, a=math.sqrt(5))
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.empty(members, 1, b).uniform_(-bound, bound)))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """``f: [n, d]`` (shared by all members) or ``[members, n, d]`` -> ``[members, n, n_out]``."""
        h = f.unsqueeze(0).expand(self.members, -1, -1) if f.dim() == 2 else f
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = nn.functional.silu(h)
        return h


class Surrogate(Checkpointed):
    """Input encoding + :class:`EnsembleMLP` + output transform, built from a JSON-like ``config``.

    config keys: ``name``, ``task`` ("regression" | "classification"), ``columns`` (input names),
    ``kinds`` ("real" | "binary" | "categorical" per column), ``choices`` (column -> list of labels),
    ``log_inputs`` (real columns taken as log), ``targets`` (output names), ``log_targets``,
    ``sections`` ([outer diameter column, thickness column] pairs), ``hidden``, ``members``, ``clamp``
    and any ``metrics`` recorded by training.
    """

    checkpoint_format = "bicycles-surrogate/1"
    checkpoint_kind = "bicycle surrogate"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        cols, kinds = list(config["columns"]), list(config["kinds"])
        if len(cols) != len(kinds):
            raise ValueError("config: columns and kinds differ in length")
        self.columns = cols
        self.targets = list(config["targets"])
        self.task = config["task"]
        self.real_idx = [i for i, k in enumerate(kinds) if k == "real"]
        self.binary_idx = [i for i, k in enumerate(kinds) if k == "binary"]
        self.cat_idx = [i for i, k in enumerate(kinds) if k == "categorical"]
        self.cat_sizes = [len(config["choices"][cols[i]]) for i in self.cat_idx]
        log_in = set(config.get("log_inputs", []))
        self.sections = [(cols.index(od), cols.index(t)) for od, t in config.get("sections", [])]
        n_real, n_out = len(self.real_idx) + 2 * len(self.sections), len(self.targets)
        log_mask = [cols[i] in log_in for i in self.real_idx] + [False] * (2 * len(self.sections))
        self.register_buffer("log_in", torch.tensor(log_mask, dtype=torch.bool))
        self.register_buffer("in_shift", torch.zeros(n_real))
        self.register_buffer("in_scale", torch.ones(n_real))
        log_out = set(config.get("log_targets", []))
        self.register_buffer("log_out", torch.tensor([t in log_out for t in self.targets], dtype=torch.bool))
        self.register_buffer("out_shift", torch.zeros(n_out))
        self.register_buffer("out_scale", torch.ones(n_out))
        self.clamp = float(config.get("clamp", 6.0))
        n_in = n_real + len(self.binary_idx) + sum(self.cat_sizes)
        self.net = EnsembleMLP(n_in, n_out, config["hidden"], config["members"])

    @property
    def device(self) -> torch.device:
        return self.in_shift.device

    # ------------------------------------------------------------------ encoding
    def _real_raw(self, x: torch.Tensor) -> torch.Tensor:
        r = x[:, self.real_idx]
        if self.sections:
            od = x[:, [i for i, _ in self.sections]].clamp_min(1e-6)
            inner = (od - 2 * x[:, [j for _, j in self.sections]]).clamp(min=0.0)
            inner = torch.minimum(inner, od * 0.999)  # a zero or negative wall still has some section
            area = (math.pi / 4) * (od ** 2 - inner ** 2)
            modulus = (math.pi / 32) * (od ** 4 - inner ** 4) / od
            r = torch.cat([r, torch.log(area), torch.log(modulus)], dim=1)
        return torch.where(self.log_in, torch.log(r.clamp_min(1e-12)), r)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Design rows ``[n, len(columns)]`` (any float dtype, on this model's device) -> features ``[n, F]``."""
        if x.dim() != 2 or x.shape[1] != len(self.columns):
            raise ValueError(f"{self.config['name']}: expected inputs [n, {len(self.columns)}], got {list(x.shape)}")
        x = x.to(self.in_shift.dtype)
        real = ((self._real_raw(x) - self.in_shift) / self.in_scale).clamp(-self.clamp, self.clamp)
        parts = [real, x[:, self.binary_idx]]
        for i, size in zip(self.cat_idx, self.cat_sizes):
            code = x[:, i].round().long().clamp(0, size - 1)
            parts.append(nn.functional.one_hot(code, size).to(x.dtype))
        return torch.cat(parts, dim=1)

    def fit_normalization(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Set input (and, for regression, target) shift and scale from training data ``x``, ``y``."""
        r = self._real_raw(x.to(self.in_shift.dtype))
        lo, hi = torch.quantile(r, 0.005, dim=0), torch.quantile(r, 0.995, dim=0)
        r = torch.minimum(torch.maximum(r, lo), hi)
        self.in_shift.copy_(r.mean(0))
        self.in_scale.copy_(r.std(0).clamp_min(1e-8))
        if y is not None and self.task == "regression":
            t = self.transform_targets(y, standardize=False)
            self.out_shift.copy_(t.mean(0))
            self.out_scale.copy_(t.std(0).clamp_min(1e-8))

    def transform_targets(self, y: torch.Tensor, standardize: bool = True) -> torch.Tensor:
        """Original units ``[n, k]`` -> the space the network is trained in."""
        y = y.to(self.out_shift.dtype)
        t = torch.where(self.log_out, torch.log(y.clamp_min(1e-12)), y)
        return (t - self.out_shift) / self.out_scale if standardize else t

    def untransform(self, t: torch.Tensor) -> torch.Tensor:
        """Network outputs (standardized) -> original units."""
        t = t * self.out_scale + self.out_shift
        return torch.where(self.log_out, torch.exp(t), t)

    # ---------------------------------------------------------------- prediction
    def members_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``[members, n, k]`` (standardized targets or logits)."""
        return self.net(self.features(x))

    def member_predictions(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's prediction ``[members, n, k]`` in original units (probabilities for classifiers)."""
        out = self.members_forward(x.to(self.device))
        return torch.sigmoid(out) if self.task == "classification" else self.untransform(out)

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) over members, each ``[n, k]``, in original units (probabilities for classifiers)."""
        p = self.member_predictions(x)
        return p.mean(0), p.std(0, unbiased=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predict(x)


def checkpoint_path(name: str) -> Path:
    if name not in MODELS:
        raise ValueError(f"unknown surrogate {name!r}; known: {MODELS}")
    return CHECKPOINT_DIR / f"{name}.pt"


def load_surrogate(name: str, device: str | torch.device | None = None, path: str | Path | None = None) -> Surrogate:
    """A fresh :class:`Surrogate` (``"structure"``, ``"validity"`` or ``"drag"``) from its shipped checkpoint.

    The file is read once per process; each call builds its own module, so models moved to
    different devices do not interfere.
    """
    path = Path(path) if path is not None else checkpoint_path(name)
    if not path.exists():
        raise FileNotFoundError(f"surrogate checkpoint {path} is missing; train with `python -m domains.bicycles.train`")
    model = Surrogate.from_checkpoint(read_checkpoint(str(path)))
    return model.to(device) if device is not None else model


def encode_frame(frame: pd.DataFrame, config: dict[str, Any]) -> torch.Tensor:
    """Readable rows (column names as in ``config["columns"]``) -> float64 design rows for a surrogate."""
    out = np.empty((len(frame), len(config["columns"])), dtype=np.float64)
    for j, (col, kind) in enumerate(zip(config["columns"], config["kinds"])):
        if kind == "categorical":
            lookup = {c: i for i, c in enumerate(config["choices"][col])}
            unknown = set(frame[col]) - set(lookup)
            if unknown:
                raise ValueError(f"column {col!r}: unknown values {sorted(map(str, unknown))}")
            out[:, j] = frame[col].map(lookup).to_numpy(dtype=np.float64)
        else:
            out[:, j] = frame[col].to_numpy(dtype=np.float64)
    return torch.from_numpy(out)
