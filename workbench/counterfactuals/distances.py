"""Distances between mixed designs, chunked so memory never grows with (designs x data x features).

Gower distance (Gower 1971) of two rows of a :class:`MixedSpace`: the mean over features of
``|a - b| / range`` for real and integer features, and of the mismatch ``a != b`` for categorical
and binary ones. ``range`` is the feature's range in the data set where it has one, else the
width of its bounds.

Every distance here is an L1 distance between *embedded* rows: numeric features divided by their
range, categorical ones one-hot coded and halved (two one-hot rows that differ are 2 apart in L1).
Gower is that L1 distance divided by the number of features, so a batch of distances is one
``torch.cdist(p=1)`` call per chunk of data rows: memory ``O(rows x chunk)``, never the dense
``rows x data x features`` tensor of the reference implementation.
"""

from __future__ import annotations

import torch

from ..spaces import MixedSpace

# elements of one [rows, chunk] distance block
_CHUNK_ELEMENTS = {"cpu": 2 ** 21, "cuda": 2 ** 26}


def _chunk_rows(n: int, device: torch.device) -> int:
    return max(1, _CHUNK_ELEMENTS.get(device.type, 2 ** 21) // max(1, n))


class GowerMetric:
    """Gower distance, sparsity and k-nearest-neighbour distance on a :class:`MixedSpace`.

    ``ranges: [d]`` are the per-feature ranges of numeric features (None: the data set's range
    where ``data`` is given and the feature varies there, else the width of its bounds).
    ``tolerance`` is the fraction of a numeric feature's range below which a change is not
    counted by :meth:`changed` (0.355 -> 0.354 on a feature ranging over [0, 1] is no change
    with the default 0.01).
    """

    def __init__(self, space: MixedSpace, data: torch.Tensor | None = None, tolerance: float = 0.01,
                 device: torch.device | str = "cpu") -> None:
        if not isinstance(space, MixedSpace):
            raise TypeError(f"Gower distance needs a MixedSpace, got {type(space).__name__}")
        if not 0.0 <= tolerance < 1.0:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance}")
        self.space = space
        self.device = torch.device(device)
        self.tolerance = float(tolerance)
        d = space.dim
        categorical = torch.zeros(d, dtype=torch.bool)
        categorical[space.categorical_idx] = True
        self.categorical = categorical.to(self.device)  # [d] mismatch features
        low, high = space.bounds[0].clone(), space.bounds[1].clone()
        ranges = high - low
        if data is not None and data.shape[0] > 0:
            observed = data.max(dim=0).values.cpu() - data.min(dim=0).values.cpu()
            use = (observed > 0) & torch.isfinite(observed)
            ranges = torch.where(use, observed, ranges)
        ranges[categorical] = 1.0
        self.ranges = ranges.to(self.device)  # [d]
        self.low = low.to(self.device)
        self.n_choices = [len(space.variables[i].choices) for i in space.categorical_idx]
        self.numeric_idx = torch.nonzero(~categorical).flatten().to(self.device)
        self.categorical_idx = torch.tensor(space.categorical_idx, dtype=torch.long, device=self.device)

    @property
    def dim(self) -> int:
        return self.space.dim

    def to(self, device: torch.device | str) -> GowerMetric:
        """The same metric with its tensors on ``device``."""
        device = torch.device(device)
        if device == self.device:
            return self
        other = object.__new__(GowerMetric)
        other.__dict__.update({k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()})
        other.device = device
        return other

    # ------------------------------------------------------------ to one row
    def to_query(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Gower distance ``[n]`` of each row of ``x: [n, d]`` to one design ``q: [d]``."""
        diff = (x - q).abs() / self.ranges
        diff = torch.where(self.categorical, (diff > 0).to(diff.dtype), diff)
        return diff.mean(dim=1)

    def changed_mask(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``[n, d]`` bool: feature differs from ``q`` by more than ``tolerance`` of its range (any mismatch for categoricals)."""
        rel = (x - q).abs() / self.ranges
        return torch.where(self.categorical, rel > 0, rel > self.tolerance)

    def excess_change(self, x: torch.Tensor, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[n]`` sum over the features in ``mask: [d]`` of the change beyond ``tolerance`` (fraction of range; 1 per categorical mismatch)."""
        rel = (x - q).abs() / self.ranges
        excess = torch.where(self.categorical, (rel > 0).to(rel.dtype), torch.clamp(rel - self.tolerance, min=0))
        return (excess * mask).sum(dim=1)

    def changed(self, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Number of changed features ``[n]`` (float) of each row of ``x: [n, d]`` against ``q: [d]``."""
        return self.changed_mask(x, q).sum(dim=1).to(torch.float64)

    # ------------------------------------------------------------ embeddings
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, e]`` rows whose L1 distance divided by ``d`` is the Gower distance."""
        x = x.to(self.device, torch.float64)
        parts = [(x[:, self.numeric_idx] - self.low[self.numeric_idx]) / self.ranges[self.numeric_idx]]
        for j, n_choices in zip(self.categorical_idx.tolist(), self.n_choices):
            codes = x[:, j].round().long().clamp(0, n_choices - 1)
            parts.append(torch.nn.functional.one_hot(codes, n_choices).to(torch.float64) * 0.5)
        return torch.cat(parts, dim=1)

    def embed_chunked(self, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """:meth:`embed` of a large ``x`` in chunks (no temporary copy of the whole of ``x`` per feature kind)."""
        if x.shape[0] <= chunk:
            return self.embed(x)
        return torch.cat([self.embed(x[s:s + chunk]) for s in range(0, x.shape[0], chunk)])

    # ------------------------------------------------------------ many rows
    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Gower distances ``[n, m]`` between rows of ``a: [n, d]`` and ``b: [m, d]`` (use for small ``n x m``)."""
        return torch.cdist(self.embed(a), self.embed(b), p=1) / self.dim

    def knn_mean(self, x: torch.Tensor, data_embedded: torch.Tensor, k: int) -> torch.Tensor:
        """Mean Gower distance ``[n]`` of each row of ``x: [n, d]`` to its ``k`` nearest data rows.

        ``data_embedded: [m, e]`` is :meth:`embed` of the data set (on this metric's device). The data
        is scanned in chunks keeping a running ``[n, k]`` of the smallest distances: memory
        ``O(n x chunk)`` whatever ``m`` is.
        """
        m = data_embedded.shape[0]
        if m == 0:
            raise ValueError("the data set is empty: no manifold distance")
        k = max(1, min(int(k), m))
        xe = self.embed(x)
        n = xe.shape[0]
        best = torch.full((n, k), float("inf"), dtype=torch.float64, device=xe.device)
        step = _chunk_rows(n, xe.device)
        for s in range(0, m, step):
            dist = torch.cdist(xe, data_embedded[s:s + step], p=1)
            part = dist.topk(min(k, dist.shape[1]), dim=1, largest=False).values
            best = torch.cat([best, part], dim=1).topk(k, dim=1, largest=False).values
        return best.mean(dim=1) / self.dim

    def nearest(self, q: torch.Tensor, data_embedded: torch.Tensor, k: int) -> torch.Tensor:
        """Indices ``[<=k]`` of the data rows nearest to one design ``q: [d]`` (ties: lower index first)."""
        m = data_embedded.shape[0]
        k = max(0, min(int(k), m))
        qe = self.embed(q.unsqueeze(0))
        dist = torch.empty(m, dtype=torch.float64, device=qe.device)
        step = _chunk_rows(1, qe.device)
        for s in range(0, m, step):
            dist[s:s + step] = torch.cdist(qe, data_embedded[s:s + step], p=1)[0]
        # a stable sort makes ties deterministic; m floats is O(data), fine next to the data itself
        return torch.sort(dist, stable=True).indices[:k]
