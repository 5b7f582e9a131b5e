"""Digit classifiers: the reward oracle and the held-out oracle of the MNIST domain.

``DigitClassifier`` maps images ``[n, 1, R, R]`` (R = 28 or 14, pixels in [0, 1], white digits on black) to
logits ``[n, 10]``; ``features`` gives its 128-d penultimate layer, the feature space of the FID analogue and
of the diversity metric (:mod:`.metrics`). Any float input is accepted and gradients flow to it, so soft
images of a diffusion sampler can be scored and differentiated.

Two classifiers ship per resolution, trained on the disjoint halves of the training split
(``data.SPLITS``): half "a" is the **reward** classifier an optimizer sees, half "b" the **held-out**
classifier designs are judged by. Checkpoints are ``{"format", "config", "state"}`` dicts read with
``weights_only=True`` (``workbench.checkpoints``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.checkpoints import Checkpointed, read_checkpoint

from .data import N_CLASSES, check_resolution

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
#: classifier role -> the training half it learned from
ROLES = {"reward": "a", "heldout": "b"}
#: mean and standard deviation of MNIST training pixels (byte / 255), used to standardize inputs
PIXEL_MEAN, PIXEL_STD = 0.1307, 0.3081


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class DigitClassifier(Checkpointed):
    """Stages of 3 x 3 convolutions (each with batch norm and ReLU) with 2 x 2 max pooling between stages,
    global average pooling, a linear layer to ``feature_dim`` with ReLU (the features), dropout, linear 10.

    The shipped recipe's stages are [32, 32] -> pool -> [64, 64] -> pool -> [128]: at 28 px the last stage
    sees 7 x 7 maps and each of its units a 24 x 24 window, enough for whole-digit features before the
    average pooling. Global average pooling makes the network work at any resolution (28 and 14 are used).
    config: ``stages`` (a list of lists of channel widths), ``feature_dim``, ``dropout``; training adds
    ``half``, ``resolution``, ``seed``, ``recipe``, ``best_epoch``, ``history``, ``metrics``.
    """

    checkpoint_format = "mnist-classifier/1"
    checkpoint_kind = "MNIST digit classifier"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        stages = config["stages"]
        if not stages or any(not stage for stage in stages):
            raise ValueError(f"config 'stages' must be a non-empty list of non-empty lists of widths, got {stages}")
        layers: list[nn.Module] = []
        width = 1
        for k, stage in enumerate(stages):
            if k:
                layers.append(nn.MaxPool2d(2))
            for c in stage:
                layers += _block(width, int(c))
                width = int(c)
        self.body = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Linear(width, int(config["feature_dim"])), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(float(config.get("dropout", 0.0))),
                                  nn.Linear(int(config["feature_dim"]), N_CLASSES))

    @property
    def device(self) -> torch.device:
        return self.head[1].weight.device

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[n, 1, R, R]`` (any float dtype, [0, 1]) -> penultimate features ``[n, feature_dim]``."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected images [n, 1, R, R], got shape {list(x.shape)}")
        if not x.dtype.is_floating_point:
            raise ValueError(f"expected float images in [0, 1], got dtype {x.dtype}")
        h = self.body((x.to(self.head[1].weight.dtype) - PIXEL_MEAN) / PIXEL_STD)  # [n, C, R/4, R/4]
        return self.embed(h.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[n, 1, R, R]`` -> logits ``[n, 10]`` (softmax = class probabilities)."""
        return self.head(self.features(x))


def checkpoint_path(which: str, resolution: int) -> Path:
    """Path of classifier ``which`` (a half "a"/"b" or a role "reward"/"heldout") at ``resolution``."""
    half = ROLES.get(which, which)
    if half not in ROLES.values():
        raise ValueError(f"unknown classifier {which!r}; use 'reward', 'heldout', 'a' or 'b'")
    return CHECKPOINT_DIR / f"classifier_{half}_{check_resolution(resolution)}.pt"


@lru_cache(maxsize=None)
def _load(path: str, device: str) -> DigitClassifier:
    model = DigitClassifier.from_checkpoint(read_checkpoint(path))
    return model.to(device)


def load_classifier(role: str = "reward", resolution: int = 28,
                    device: str | torch.device | None = None) -> DigitClassifier:
    """The frozen classifier of ``role`` ("reward" = half a, "heldout" = half b; or "a" / "b") in eval mode.

    One instance per (checkpoint, device) and process, shared by its callers: do not modify it.
    """
    path = checkpoint_path(role, resolution)
    if not path.exists():
        raise FileNotFoundError(f"classifier checkpoint {path} is missing; train it with `python -m "
                                f"domains.images.train_classifier --half {ROLES.get(role, role)} "
                                f"--resolution {resolution}`")
    return _load(str(path), str(torch.device(device if device is not None else "cpu")))
