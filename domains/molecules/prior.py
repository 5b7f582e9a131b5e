"""The molecule prior: masked diffusion (MDLM) over SELFIES token rows, trained on MOSES train.

Its vocabulary is the SELFIES alphabet plus the padding token (what ``MaskedDiffusion.for_space`` makes of a
variable-length ``SequenceSpace``), so it writes molecules of any length up to ``LENGTH``; MASK is one more id.
The denoiser is the workbench's dilated CNN (``ConvDenoiser``; its receptive field covers the 47 tokens).
Two configurations: ``"full"`` (trained on a GPU, half-precision weights; loading casts them back to float32)
and ``"tiny"`` (trained in about three minutes on a CPU, for tests). Train them with
``python -m domains.molecules.train_prior --config full|tiny``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.generative import ConvDenoiser, MaskedDiffusion
from workbench.checkpoints import config_checkpoint, config_of

from .vocab import alphabet, length

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CONFIGS: dict[str, dict[str, Any]] = {
    "full": {"denoiser": {"hidden": 320, "blocks": 12, "kernel": 5, "dilations": [1, 2, 4, 8] * 3,
                          "time_dim": 128, "dropout": 0.0},
             "train": {"steps": 40_000, "batch_size": 512, "lr": 1e-3, "warmup": 1000, "ema": 0.9995,
                       "eval_every": 2000}},
    "tiny": {"denoiser": {"hidden": 128, "blocks": 6, "kernel": 5, "dilations": [1, 2, 4, 8, 1, 2], "time_dim": 64,
                          "dropout": 0.0},
             "train": {"steps": 1000, "batch_size": 128, "lr": 2e-3, "warmup": 100, "ema": 0.995,
                       "eval_every": 500}},
}


def checkpoint_path(config: str) -> Path:
    return config_checkpoint(CHECKPOINT_DIR, CONFIGS, config)


def vocab_size() -> int:
    """Token ids the prior writes: the SELFIES alphabet plus padding."""
    return len(alphabet()) + 1


def new_prior(config: str) -> MaskedDiffusion:
    """An untrained prior of configuration ``config``."""
    denoiser = ConvDenoiser(vocab_size(), **config_of(CONFIGS, config)["denoiser"])
    return MaskedDiffusion(denoiser, vocab_size(), length())


def load_prior(config: str = "full", device: str | torch.device = "cpu") -> MaskedDiffusion:
    """The shipped prior of configuration ``config`` on ``device`` (cached per process; do not modify)."""
    return MaskedDiffusion.load_shipped(checkpoint_path(config), device,
                                        f"python -m domains.molecules.train_prior --config {config}")
