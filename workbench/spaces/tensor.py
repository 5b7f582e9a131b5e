"""Dense tensors: images, voxel grids, point clouds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .base import Space


class TensorSpace(Space):
    """Designs that are dense float tensors of a fixed ``shape`` with values in [low, high].

    ``levels`` (2..256, e.g. 256 for 8-bit images) restricts values to that many evenly spaced
    levels from low to high; such designs are stored losslessly as one byte per value.
    """

    kind = "tensor"

    def __init__(self, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0, levels: int | None = None) -> None:
        self._shape = tuple(int(s) for s in shape)
        if not self._shape or any(s < 1 for s in self._shape):
            raise ValueError(f"shape must be non-empty with positive sizes, got {shape}")
        if not low < high:
            raise ValueError(f"need low < high, got {low}, {high}")
        if levels is not None and not 2 <= levels <= 256:
            raise ValueError(f"levels must be in 2..256 (or None for continuous values), got {levels}")
        self.low, self.high = float(low), float(high)
        self.levels = None if levels is None else int(levels)
        self.storage_dtype = np.dtype("<f4") if self.levels is None else np.dtype("u1")

    def _level_index(self, x: torch.Tensor) -> torch.Tensor:
        """Values -> (fractional) level indices."""
        return (x.double() - self.low) * ((self.levels - 1) / (self.high - self.low))

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        u = torch.rand((n, *self._shape), generator=generator, device=device or "cpu")
        if self.levels is not None:
            u = torch.floor(u * self.levels).clamp_max(self.levels - 1) / (self.levels - 1)
        return self.low + u * (self.high - self.low)

    def invalid_rows(self, x: torch.Tensor) -> dict[int, str]:
        flat = x.reshape(len(x), -1)
        bad_mask = ~torch.isfinite(flat) | (flat < self.low) | (flat > self.high)
        bad = {r: f"values must be finite and within [{self.low}, {self.high}]"
               for r in torch.nonzero(bad_mask.any(dim=1)).flatten().tolist()}
        if self.levels is not None:
            index = self._level_index(flat)
            off = (index - index.round()).abs() > 1e-3
            for r in torch.nonzero(off.any(dim=1)).flatten().tolist():
                bad.setdefault(r, f"values must be one of {self.levels} evenly spaced levels in "
                                  f"[{self.low}, {self.high}]")
        return bad

    def encode_rows(self, x: torch.Tensor) -> list[bytes]:
        if self.levels is None:
            return super().encode_rows(x)
        return super().encode_rows(self._level_index(x.detach()).round().clamp(0, self.levels - 1).to(torch.uint8))

    def decode_rows(self, rows: list[bytes]) -> torch.Tensor:
        if self.levels is None:
            return super().decode_rows(rows)
        index = super().decode_rows(rows)
        return (self.low + index.double() * ((self.high - self.low) / (self.levels - 1))).to(self.dtype)

    def to_frame(self, x: torch.Tensor) -> pd.DataFrame:
        """One summary row per design (the tensors themselves stay in storage)."""
        flat = self.check_batch(x).detach().cpu().reshape(len(x), -1).double()
        return pd.DataFrame({"shape": ["x".join(map(str, self._shape))] * len(x),
                             "mean": flat.mean(dim=1).numpy(), "std": flat.std(dim=1).numpy() if flat.shape[1] > 1 else 0.0})

    def from_frame(self, frame: pd.DataFrame) -> torch.Tensor:
        raise ValueError("a TensorSpace cannot be rebuilt from a summary table; pass the tensors themselves")

    def to_spec(self) -> dict[str, Any]:
        spec = {"kind": self.kind, "shape": list(self._shape), "low": self.low, "high": self.high}
        if self.levels is not None:
            spec["levels"] = self.levels
        return spec

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TensorSpace:
        return cls(tuple(spec["shape"]), spec["low"], spec["high"], spec.get("levels"))
