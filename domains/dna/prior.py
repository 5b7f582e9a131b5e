"""The DNA enhancer prior: a masked-diffusion model over 200 bp sequences, trained on the training split.

Two shipped configurations: ``"full"`` (a 4.2M-parameter dilated CNN trained on a GPU)
and ``"tiny"`` (a small model trained in about a minute on a CPU, for tests and CI).
Train them with ``python -m domains.dna.train_prior --config full|tiny``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.generative import ConvDenoiser, MaskedDiffusion
from workbench.checkpoints import config_checkpoint, config_of

from .data import ALPHABET, LENGTH

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CONFIGS: dict[str, dict[str, Any]] = {
    "full": {"denoiser": {"hidden": 192, "blocks": 10, "kernel": 9, "dilations": [1, 2, 4, 8, 16, 32, 1, 2, 4, 8],
                          "time_dim": 128, "dropout": 0.1},
             "train": {"steps": 20_000, "batch_size": 256, "lr": 1e-3, "warmup": 1000, "ema": 0.9995,
                       "eval_every": 1000}},
    "tiny": {"denoiser": {"hidden": 64, "blocks": 4, "kernel": 9, "dilations": [1, 4, 16, 1], "time_dim": 64,
                          "dropout": 0.0},
             "train": {"steps": 300, "batch_size": 64, "lr": 3e-3, "warmup": 50, "ema": 0.99, "eval_every": 300}},
}


def checkpoint_path(config: str) -> Path:
    return config_checkpoint(CHECKPOINT_DIR, CONFIGS, config)


def new_prior(config: str) -> MaskedDiffusion:
    """An untrained prior of configuration ``config``."""
    denoiser = ConvDenoiser(len(ALPHABET), **config_of(CONFIGS, config)["denoiser"])
    return MaskedDiffusion(denoiser, len(ALPHABET), LENGTH)


def load_prior(config: str = "full", device: str | torch.device = "cpu") -> MaskedDiffusion:
    """The shipped prior of configuration ``config`` on ``device`` (cached per process)."""
    return MaskedDiffusion.load_shipped(checkpoint_path(config), device,
                                        f"python -m domains.dna.train_prior --config {config}")
