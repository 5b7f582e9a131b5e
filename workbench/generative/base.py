"""What every diffusion prior shares: call counters, cloning, and checkpoints as state dicts."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .denoisers import build_denoiser

_SHIPPED: dict[tuple, DiffusionModel] = {}  # DiffusionModel.load_shipped's models, per (class, file, device)


class DiffusionModel(nn.Module):
    """A prior made of a ``denoiser`` network and a JSON ``config()``; subclasses set ``checkpoint_format``
    and ``checkpoint_kind`` and rebuild themselves in ``from_config``. ``calls`` / ``rows`` count denoiser
    invocations and the states they processed."""

    checkpoint_format = "workbench.diffusion/1"
    checkpoint_kind = "diffusion"
    denoiser: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.rows = 0
        self.meta: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def bits_per_dim(self, x0: torch.Tensor, samples: int = 32, generator: torch.Generator | None = None,
                     batch_size: int = 1024) -> torch.Tensor:
        """Negative ELBO per design in bits per dimension (per token of a sequence) ``[B]``."""
        dims = math.prod(self.shape)
        return -self.log_likelihood(x0, samples, generator, batch_size) / (dims * math.log(2.0))

    @classmethod
    def from_config(cls, denoiser: nn.Module, config: dict[str, Any]) -> DiffusionModel:
        raise NotImplementedError

    def clone(self) -> DiffusionModel:
        """An independent copy (same weights, zeroed counters), e.g. the model DRAKES fine-tunes."""
        twin = copy.deepcopy(self)
        twin.calls, twin.rows = 0, 0
        if hasattr(twin, "correction"):  # a tuned copy samples without the original's corrector
            twin.correction = None
        return twin

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        """Write the config and weights (a state dict; no pickled code)."""
        torch.save({"format": self.checkpoint_format, "config": self.config(), "meta": meta or {},
                    "state_dict": {k: v.detach().cpu() for k, v in self.denoiser.state_dict().items()}}, path)

    @classmethod
    def load_shipped(cls, path: str | Path, device: str | torch.device, train_command: str) -> DiffusionModel:
        """A checkpoint that ships with a domain, loaded once per (file, device) and process and shared by its
        callers (do not modify it); a missing file is a FileNotFoundError naming ``train_command``."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"prior checkpoint {path} is missing; train it with `{train_command}`")
        key = (cls, str(path), str(device))
        if key not in _SHIPPED:
            _SHIPPED[key] = cls.load(path, device)
        return _SHIPPED[key]

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> DiffusionModel:
        """Rebuild a saved prior; loads with ``weights_only=True``."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != cls.checkpoint_format:
            raise ValueError(f"{path} is not a {cls.checkpoint_kind} checkpoint ({cls.checkpoint_format})")
        denoiser = build_denoiser(blob["config"]["denoiser"])
        denoiser.load_state_dict(blob["state_dict"])
        model = cls.from_config(denoiser, blob["config"])
        model.meta = blob.get("meta", {})
        return model.to(device).eval()
