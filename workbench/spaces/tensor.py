"""Dense tensors: images, voxel grids, point clouds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .base import Space


class TensorSpace(Space):
    """Designs that are dense float tensors of a fixed ``shape`` with values in [low, high]."""

    kind = "tensor"
    storage_dtype = np.dtype("<f4")

    def __init__(self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0) -> None:
        self._shape = tuple(int(s) for s in shape)
        if not self._shape or any(s < 1 for s in self._shape):
            raise ValueError(f"shape must be non-empty with positive sizes, got {shape}")
        if not low < high:
            raise ValueError(f"need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        u = torch.rand((n, *self._shape), generator=generator, device=device or "cpu")
        return self.low + u * (self.high - self.low)

    def invalid_rows(self, x: torch.Tensor) -> dict[int, str]:
        flat = x.reshape(len(x), -1)
        bad_mask = ~torch.isfinite(flat) | (flat < self.low) | (flat > self.high)
        return {r: f"values must be finite and within [{self.low}, {self.high}]"
                for r in torch.nonzero(bad_mask.any(dim=1)).flatten().tolist()}

    def to_frame(self, x: torch.Tensor) -> pd.DataFrame:
        """One summary row per design (the tensors themselves stay in storage)."""
        flat = self.check_batch(x).detach().cpu().reshape(len(x), -1).double()
        return pd.DataFrame({"shape": ["x".join(map(str, self._shape))] * len(x),
                             "mean": flat.mean(dim=1).numpy(), "std": flat.std(dim=1).numpy() if flat.shape[1] > 1 else 0.0})

    def from_frame(self, frame: pd.DataFrame) -> torch.Tensor:
        raise ValueError("a TensorSpace cannot be rebuilt from a summary table; pass the tensors themselves")

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self._shape), "low": self.low, "high": self.high}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TensorSpace:
        return cls(tuple(spec["shape"]), spec["low"], spec["high"])
