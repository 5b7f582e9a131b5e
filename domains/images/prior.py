"""The MNIST image prior: a class-conditional Gaussian-diffusion U-Net over digit images.

Two shipped configurations: ``"full"`` (28 x 28, a 3.7M-parameter U-Net trained on a GPU) and
``"tiny"`` (14 x 14, a small U-Net for tests and the CPU setting). Both are trained on the 50,000
training images with their labels, dropping the label 10% of the time, so one network samples a
given digit (``condition``) or any digit (no condition). Train them with
``python -m domains.images.train_prior --config full|tiny``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.generative import GaussianDiffusion, UNet
from workbench.checkpoints import config_checkpoint, config_of

from .data import N_CLASSES

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
BINS = 256  # 8-bit images: the ELBO is a discrete likelihood, bits per dimension in [0, 8]
CONFIGS: dict[str, dict[str, Any]] = {
    "full": {"resolution": 28,
             "denoiser": {"base": 48, "mults": [1, 2, 2], "blocks": 2, "attention": [False, False, True],
                          "time_dim": 128, "dropout": 0.1},
             "train": {"steps": 12_000, "batch_size": 256, "lr": 5e-4, "warmup": 500, "ema": 0.9995,
                       "eval_every": 2000}},
    "tiny": {"resolution": 14,
             "denoiser": {"base": 32, "mults": [1, 2], "blocks": 1, "attention": [False, True], "time_dim": 64,
                          "dropout": 0.0},
             "train": {"steps": 6000, "batch_size": 256, "lr": 1e-3, "warmup": 300, "ema": 0.999,
                       "eval_every": 2000}},
}


def checkpoint_path(config: str) -> Path:
    return config_checkpoint(CHECKPOINT_DIR, CONFIGS, config)


def new_prior(config: str) -> GaussianDiffusion:
    """An untrained prior of configuration ``config``."""
    cfg = config_of(CONFIGS, config)
    r = cfg["resolution"]
    denoiser = UNet(channels=1, dims=2, num_classes=N_CLASSES, **cfg["denoiser"])
    return GaussianDiffusion(denoiser, (1, r, r), 0.0, 1.0, bins=BINS)


def load_prior(config: str = "full", device: str | torch.device = "cpu") -> GaussianDiffusion:
    """The shipped prior of configuration ``config`` on ``device`` (cached per process)."""
    return GaussianDiffusion.load_shipped(checkpoint_path(config), device,
                                          f"python -m domains.images.train_prior --config {config}")
