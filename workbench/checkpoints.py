"""Trained models as checkpoints: ``{"format", "config", "state"}`` written with torch.save, read with
``weights_only=True`` (no pickled code), so a domain ships small, safe model files."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn


class Checkpointed(nn.Module):
    """A module rebuilt from ``config`` (a JSON-like dict): ``cls(config)`` then its state dict.

    Subclasses set ``checkpoint_format`` (e.g. "dna-oracle/1") and ``checkpoint_kind`` (for
    error messages) and keep their constructor argument as ``self.config``.
    """

    checkpoint_format = "module/1"
    checkpoint_kind = "model"
    config: dict[str, Any]

    def checkpoint(self) -> dict[str, Any]:
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        return {"format": self.checkpoint_format, "config": self.config, "state": state}

    def save(self, path: str | Path, half: bool = False) -> None:
        """``half``: store float weights of more than 4,096 entries as float16 (half the file; loading casts them
        back to the module's float32; buffers and small tensors stay exact)."""
        ckpt = self.checkpoint()
        if half:
            ckpt["state"] = {k: v.half() if v.is_floating_point() and v.numel() > 4096 else v
                             for k, v in ckpt["state"].items()}
        torch.save(ckpt, Path(path))

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> Checkpointed:
        """A frozen model in eval mode (gradients with respect to its inputs still flow)."""
        if ckpt.get("format") != cls.checkpoint_format:
            raise ValueError(f"not a {cls.checkpoint_kind} checkpoint (format {ckpt.get('format')!r}, "
                             f"expected {cls.checkpoint_format!r})")
        model = cls(ckpt["config"])
        model.load_state_dict(ckpt["state"])
        model.eval()
        model.requires_grad_(False)
        return model


def config_of(configs: Mapping[str, Any], config: str, what: str = "prior") -> Any:
    """``configs[config]``; a ValueError naming the known configurations when there is no such one."""
    if config not in configs:
        raise ValueError(f"unknown {what} configuration {config!r}; choose from {sorted(configs)}")
    return configs[config]


def config_checkpoint(folder: Path, configs: Mapping[str, Any], config: str, prefix: str = "prior") -> Path:
    """``folder / f"{prefix}_{config}.pt"``, the shipped checkpoint of a named configuration of ``configs``."""
    config_of(configs, config, prefix)
    return Path(folder) / f"{prefix}_{config}.pt"


@lru_cache(maxsize=None)
def read_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint at ``path`` on the CPU (cached per process; treat as read-only)."""
    return torch.load(path, map_location="cpu", weights_only=True)
