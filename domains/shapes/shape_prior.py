"""The 3-D shape prior: a Gaussian diffusion over 32^3 occupancy grids with a 3-D convolutional U-Net.

The prior is the core's :class:`~workbench.generative.GaussianDiffusion` with ``bins=2`` (occupancy is 0 or 1:
samples are quantized to solid / empty and the ELBO is a discrete likelihood in bits per voxel, between 0 and 1)
over designs ``[n, 1, 32, 32, 32]`` in [0, 1]. It is class-conditional on the corpus family (0 wing, 1 fuselage,
2 car; -1 or no condition: any family), trained with labels dropped 10 % of the time.

The denoiser, :class:`VoxelUNet`, is the core's 3-D :class:`~workbench.generative.UNet` on 2x2x2 patches: each
block of 8 voxels becomes 8 channels of a 16^3 grid (space to depth, as a vision transformer's patches), the U-Net
runs there (down to 8^3 or 4^3, with self-attention at the coarse levels) and its 8 output channels go back to the
voxels. Convolutions with one channel at 32^3 were most of the cost of a plain 3-D U-Net on the CPU (their
backward pass alone was a third of a training step); the patched network does the same work 8x smaller.

Two shipped configurations: ``"full"`` (trained on a GPU: ``python -m domains.shapes.train_shape_prior --config
full --seconds 500 --device cuda``) and ``"tiny"`` (a few minutes on one CPU thread; for tests and the CPU study).
Checkpoints are ``{format, config, meta, state_dict}`` read with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.checkpoints import config_checkpoint, config_of
from workbench.generative import GaussianDiffusion, UNet

from .corpus import FAMILIES
from .voxels import RESOLUTION

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CONFIGS: dict[str, dict[str, Any]] = {
    "full": {"denoiser": {"patch": 2, "base": 40, "mults": [1, 2, 2], "blocks": 2,
                          "attention": [False, True, True], "time_dim": 128, "dropout": 0.1},
             "train": {"steps": 20_000, "batch_size": 64, "lr": 3e-4, "warmup": 500, "ema": 0.999,
                       "eval_every": 1000}},
    "tiny": {"denoiser": {"patch": 2, "base": 16, "mults": [1, 2, 2], "blocks": 1,
                          "attention": [False, False, False], "time_dim": 32, "dropout": 0.0},
             "train": {"steps": 360, "batch_size": 16, "lr": 2e-3, "warmup": 40, "ema": 0.99, "eval_every": 120}},
}
_LOADED: dict[tuple[str, str], GaussianDiffusion] = {}


class VoxelUNet(nn.Module):
    """Denoiser for occupancy grids: ``[B, 1, D, D, D]`` (D a multiple of ``patch``), time ``[B]``, optional family
    labels ``[B]`` -> ``[B, 1, D, D, D]``. Each ``patch^3`` block of voxels becomes the ``patch^3`` channels of one
    cell (space to depth), the core 3-D :class:`~workbench.generative.UNet` (``base``, ``mults``, ``blocks``,
    ``attention`` as there) runs on the ``D / patch`` grid of cells, and its output goes back to voxels."""

    def __init__(self, patch: int = 2, base: int = 16, mults: list[int] | tuple[int, ...] = (1, 2),
                 blocks: int = 1, attention: list[bool] | tuple[bool, ...] | None = None, time_dim: int = 64,
                 num_classes: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        self.patch = int(patch)
        self.unet = UNet(self.patch ** 3, 3, base, mults, blocks, attention, time_dim, num_classes, dropout)
        self.config = {"kind": "voxel_unet", "patch": self.patch, "base": base, "mults": list(mults),
                       "blocks": blocks, "attention": list(self.unet.config["attention"]), "time_dim": time_dim,
                       "num_classes": num_classes, "dropout": dropout}

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """x: ``[B, 1, D, D, D]``, t: ``[B]`` in [0, 1], condition: ``[B]`` labels (-1: none) or None."""
        p = self.patch
        if x.dim() != 5 or x.shape[1] != 1 or any(s % p for s in x.shape[2:]):
            raise ValueError(f"VoxelUNet takes grids [B, 1, D, D, D] with D a multiple of {p}, got {list(x.shape)}")
        b, _, d, h, w = x.shape
        cells = x.reshape(b, d // p, p, h // p, p, w // p, p).permute(0, 2, 4, 6, 1, 3, 5)
        out = self.unet(cells.reshape(b, p ** 3, d // p, h // p, w // p), t, condition)
        out = out.reshape(b, p, p, p, d // p, h // p, w // p).permute(0, 4, 1, 5, 2, 6, 3)
        return out.reshape(b, 1, d, h, w)


def checkpoint_path(config: str) -> Path:
    return config_checkpoint(CHECKPOINT_DIR, CONFIGS, config, prefix="shape_prior")


def new_prior(config: str) -> GaussianDiffusion:
    """An untrained prior of configuration ``config`` over ``[1, 32, 32, 32]`` grids, conditional on the family."""
    cfg = config_of(CONFIGS, config)
    denoiser = VoxelUNet(num_classes=len(FAMILIES), **cfg["denoiser"])
    return GaussianDiffusion(denoiser, (1, RESOLUTION, RESOLUTION, RESOLUTION), 0.0, 1.0, bins=2)


def read_prior(path: str | Path, device: str | torch.device = "cpu") -> GaussianDiffusion:
    """Rebuild a saved shape prior (``weights_only=True``; half-precision weights are cast back to float32)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != GaussianDiffusion.checkpoint_format:
        raise ValueError(f"{path} is not a Gaussian-diffusion checkpoint ({GaussianDiffusion.checkpoint_format})")
    options = dict(blob["config"]["denoiser"])
    if options.pop("kind", None) != "voxel_unet":
        raise ValueError(f"{path} does not hold a VoxelUNet shape prior")
    denoiser = VoxelUNet(**options)
    denoiser.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    model = GaussianDiffusion.from_config(denoiser, blob["config"])
    model.meta = blob.get("meta", {})
    return model.to(device).eval()


def load_prior(config: str = "full", device: str | torch.device = "cpu") -> GaussianDiffusion:
    """The shipped prior of configuration ``config`` on ``device`` (loaded once per process and device; shared by
    its callers, do not modify it); a missing checkpoint names the command that trains it."""
    path = checkpoint_path(config)
    if not path.exists():
        raise FileNotFoundError(f"shape prior checkpoint {path} is missing; train it with "
                                f"`python -m domains.shapes.train_shape_prior --config {config}`")
    key = (config, str(torch.device(device)))
    if key not in _LOADED:
        _LOADED[key] = read_prior(path, device)
    return _LOADED[key]
