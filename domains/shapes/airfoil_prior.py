"""A Gaussian-diffusion prior over airfoil sections, in standardized units.

A section ``v [18]`` is standardized per parameter with the mean and standard deviation of the clean UIUC
airfoils (``Standardizer``): ``z = (v - mean) / std``; designs of the prior's space are ``z`` in ``[-BOX, BOX]``
(``TensorSpace((18,), -BOX, BOX)``), which covers 96% of the clean airfoils entirely (the rest, with some
parameter beyond 4 standard deviations, are left out of training). The denoiser is the core's residual MLP;
training is the core's ``train_prior`` on a seeded 90 / 10 split of the airfoils by name
(``python -m domains.shapes.train_airfoil_prior``, one CPU thread, about two minutes). The checkpoint is the
core's state-dict format (loaded with ``weights_only=True``) and stores the standardization, which
``load_prior`` checks against the shipped database.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.generative import GaussianDiffusion, MLPDenoiser
from workbench.spaces import TensorSpace

from . import sections
from .airfoil_data import load_database

CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "airfoil_prior.pt"
TRAIN_COMMAND = "python -m domains.shapes.train_airfoil_prior"
BOX = 4.0  # standardized designs live in [-BOX, BOX]
VALID_FRACTION = 0.1
SPLIT_SEED = 0
CONFIG: dict[str, Any] = {
    "denoiser": {"hidden": 128, "layers": 4, "time_dim": 64, "dropout": 0.0},
    "train": {"steps": 8000, "batch_size": 256, "lr": 1e-3, "warmup": 300, "ema": 0.999, "eval_every": 1000},
}


@dataclass(frozen=True)
class Standardizer:
    """Per-parameter affine map between sections ``v [..., 18]`` and standardized designs ``z [..., 18]``."""

    mean: np.ndarray  # [18]
    std: np.ndarray  # [18]

    def to_z(self, v: Any) -> np.ndarray:
        return (sections.check(v) - self.mean) / self.std

    def to_sections(self, z: torch.Tensor) -> torch.Tensor:
        """Standardized designs ``[n, 18]`` (torch, any dtype; gradients flow) -> sections ``[n, 18]`` float64,
        TE thickness floored at 0 (a negative one would be a crossed trailing edge)."""
        mean = torch.as_tensor(self.mean, device=z.device)
        std = torch.as_tensor(self.std, device=z.device)
        v = mean + std * z.double()
        te = v[:, sections.TE_THICKNESS:].clamp_min(0.0)
        return torch.cat([v[:, :sections.TE_THICKNESS], te], dim=1)

    def to_spec(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


@lru_cache(maxsize=1)
def standardizer() -> Standardizer:
    """Mean and std of the clean airfoils of the shipped database."""
    db = load_database()
    v = db.vectors[db.clean()]
    return Standardizer(v.mean(0), v.std(0))


def space() -> TensorSpace:
    """The prior's design space: standardized sections in ``[-BOX, BOX]``."""
    return TensorSpace((sections.SECTION_SIZE,), -BOX, BOX)


def split() -> tuple[np.ndarray, np.ndarray]:
    """Indices into the database of the training and held-out airfoils (clean ones only; seeded by name
    order, so it is the same on every machine)."""
    db = load_database()
    clean = np.flatnonzero(db.clean())
    order = np.random.default_rng(SPLIT_SEED).permutation(len(clean))
    n_valid = int(round(VALID_FRACTION * len(clean)))
    return np.sort(clean[order[n_valid:]]), np.sort(clean[order[:n_valid]])


def designs(indices: np.ndarray, inside_box: bool = True) -> torch.Tensor:
    """Standardized designs ``[m, 18]`` float32 of database rows ``indices``; with ``inside_box`` the rows with
    a parameter beyond ``BOX`` standard deviations are left out."""
    z = standardizer().to_z(load_database().vectors[indices])
    if inside_box:
        z = z[(np.abs(z) <= BOX).all(1)]
    return torch.from_numpy(z).float()


@lru_cache(maxsize=1)
def reference_designs() -> torch.Tensor:
    """Standardized training airfoils ``[m, 18]`` float64: the set ``database_distance`` measures against."""
    train_idx, _ = split()
    return torch.from_numpy(standardizer().to_z(load_database().vectors[train_idx]))


def database_distance(v: torch.Tensor) -> torch.Tensor:
    """Distance ``[n]`` from sections ``v [n, 18]`` (torch, differentiable) to the nearest training airfoil, in
    standardized units (Euclidean over the 18 standardized parameters)."""
    st = standardizer()
    z = (v.double() - torch.as_tensor(st.mean, device=v.device)) / torch.as_tensor(st.std, device=v.device)
    return torch.cdist(z, reference_designs().to(v.device)).min(dim=1).values


@lru_cache(maxsize=4)
def near_threshold(quantile: float = 0.99) -> float:
    """The ``quantile`` of the held-out airfoils' ``database_distance``: a design at most this far from a training
    airfoil is as close to the data as that share of unseen real airfoils (0.99 -> about 4.6)."""
    _, valid_idx = split()
    return float(torch.quantile(database_distance(torch.from_numpy(load_database().vectors[valid_idx])), quantile))


def new_prior(config: dict[str, Any] | None = None) -> GaussianDiffusion:
    """An untrained prior (residual MLP denoiser, v-prediction, cosine schedule) over ``space()``."""
    cfg = CONFIG if config is None else config
    denoiser = MLPDenoiser(sections.SECTION_SIZE, **cfg["denoiser"])
    return GaussianDiffusion(denoiser, (sections.SECTION_SIZE,), -BOX, BOX)


def load_prior(device: str | torch.device = "cpu", path: str | Path = CHECKPOINT) -> GaussianDiffusion:
    """The shipped prior on ``device`` (cached per process; do not modify); a ValueError if it was trained with
    another standardization than the shipped database's."""
    prior = GaussianDiffusion.load_shipped(path, device, TRAIN_COMMAND)
    stored = prior.meta.get("standardizer")
    current = standardizer()
    if stored is None or not (np.allclose(stored["mean"], current.mean) and np.allclose(stored["std"], current.std)):
        raise ValueError(f"{path} was trained on another standardization than data/uiuc_kulfan.npz gives; retrain it "
                         f"with `{TRAIN_COMMAND}`")
    return prior
