"""The Space protocol: how a design is encoded as a tensor row, and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import pandas as pd
import torch


class Space(ABC):
    """A set of designs, each encoded as one row of a tensor.

    Subclasses fix the row shape (``shape``), how rows are sampled and
    validated, and how a batch converts to a readable DataFrame and back.
    ``storage_dtype`` is the numpy dtype rows are stored with (no pickle).
    """

    kind: str = "abstract"
    storage_dtype: np.dtype = np.dtype("<f8")

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """Shape of one encoded design (the batch tensor is ``[n, *shape]``)."""

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """Draw ``n`` designs uniformly: returns ``[n, *shape]``."""

    @abstractmethod
    def invalid_rows(self, x: torch.Tensor) -> dict[int, str]:
        """Rows of ``x`` that are not valid designs, mapped to the reason."""

    @abstractmethod
    def to_frame(self, x: torch.Tensor) -> pd.DataFrame:
        """Readable DataFrame, one row per design of ``x: [n, *shape]``."""

    @abstractmethod
    def from_frame(self, frame: pd.DataFrame) -> torch.Tensor:
        """Inverse of ``to_frame``: returns ``[n, *shape]``; clear error on bad columns."""

    @abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """JSON-able description, enough to rebuild the space with ``space_from_spec``."""

    @property
    def dtype(self) -> torch.dtype:
        """Torch dtype of encoded designs."""
        return torch.float64

    def check_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Raise a ValueError naming the problem unless ``x`` has shape ``[n, *shape]``."""
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dim() != 1 + len(self.shape) or tuple(x.shape[1:]) != tuple(self.shape):
            raise ValueError(f"expected designs of shape [n, {', '.join(map(str, self.shape))}], got {list(x.shape)}")
        return x

    def validate(self, x: torch.Tensor) -> torch.Tensor:
        """Check shape and content of a batch; raise a ValueError naming the first bad row."""
        x = self.check_batch(x)
        bad = self.invalid_rows(x)
        if bad:
            row, reason = next(iter(sorted(bad.items())))
            more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
            raise ValueError(f"invalid design in row {row}: {reason}{more}")
        return x

    def encode_rows(self, x: torch.Tensor) -> list[bytes]:
        """Compact bytes per row for storage."""
        arr = np.ascontiguousarray(x.detach().cpu().numpy().astype(self.storage_dtype, copy=False))
        width = arr[0].nbytes if len(arr) else 0
        raw = arr.tobytes()
        return [raw[i * width:(i + 1) * width] for i in range(len(arr))]

    def decode_rows(self, rows: list[bytes]) -> torch.Tensor:
        """Inverse of ``encode_rows``: returns ``[n, *shape]``."""
        if not rows:
            return torch.empty((0, *self.shape), dtype=self.dtype)
        arr = np.frombuffer(b"".join(rows), dtype=self.storage_dtype).reshape(len(rows), *self.shape)
        return torch.from_numpy(arr.copy()).to(self.dtype)
