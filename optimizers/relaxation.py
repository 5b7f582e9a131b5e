"""A continuous relaxation of a :class:`MixedSpace` for gradient-based acquisition optimization.

Model features ``z`` live in ``[0, 1]^D``: every non-categorical variable keeps its unit-cube
value (``MixedSpace.to_unit``; integers and binaries become continuous), and every categorical
becomes a one-hot block of its choices, appended after them. A Gaussian process with one
ordinary kernel then covers the whole space, and the acquisition is maximized over the relaxed
cube by L-BFGS like on a continuous problem. Candidates are made legal again by
:meth:`RelaxedEncoding.polish`: integers and binaries are rounded to the nearest legal value and
one-hot blocks to their largest entry, then a short hill climb over the discrete neighbours
(integers one step up or down, a binary flipped, another choice of a categorical) keeps any move
that raises the acquisition. This is the "relax, round, then search the discrete neighbourhood"
practice, at a fraction of the cost of alternating discrete / continuous optimization.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from workbench.spaces import MixedSpace

_DT = torch.float64


class RelaxedEncoding:
    """Map designs ``x: [n, d]`` of ``space`` to relaxed model features ``z: [n, D]`` and back."""

    def __init__(self, space: MixedSpace) -> None:
        self.space = space
        cat = set(space.categorical_idx)
        self.plain = [i for i in range(space.dim) if i not in cat]  # dims kept as unit values, in order
        low, high = space.bounds[0], space.bounds[1]
        # z position and number of legal steps of every integer / binary dim
        self.steps = {self.plain.index(i): int(high[i] - low[i]) for i in sorted(space.integer_idx + space.binary_idx)}
        self.blocks: list[tuple[int, int, int]] = []  # (space dim, first z column, number of choices)
        start = len(self.plain)
        for i in space.categorical_idx:
            k = int(high[i] - low[i]) + 1
            self.blocks.append((i, start, k))
            start += k
        self.dim = start

    @property
    def is_continuous(self) -> bool:
        """True when no variable is discrete: ``z`` is then the plain unit cube."""
        return not self.steps and not self.blocks

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, D]`` relaxed features of legal designs ``x: [n, d]``."""
        u = self.space.to_unit(x.to(_DT)).clamp(0.0, 1.0)
        parts = [u[:, self.plain]]
        for i, _, k in self.blocks:
            parts.append(torch.nn.functional.one_hot(x[:, i].round().long(), k).to(_DT))
        return torch.cat(parts, dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Legal designs ``[n, d]`` from features ``z: [n, D]`` (discrete values rounded, one-hot argmax)."""
        space = self.space
        bounds = space.bounds.to(z.device, _DT)
        low, high = bounds[0], bounds[1]
        u = torch.zeros((z.shape[0], space.dim), dtype=_DT, device=z.device)
        u[:, self.plain] = z[:, :len(self.plain)].clamp(0.0, 1.0)
        x = low + u * (high - low)
        lm = space.log_mask.to(z.device)
        if bool(lm.any()):
            x[:, lm] = torch.exp(torch.log(low[lm]) + u[:, lm] * (torch.log(high[lm]) - torch.log(low[lm])))
        for i, start, k in self.blocks:
            x[:, i] = torch.argmax(z[:, start:start + k], dim=1).to(_DT)
        return space.repair(x)

    def round(self, z: torch.Tensor) -> torch.Tensor:
        """Features ``[..., D]`` with every discrete part made legal (nearest value, one-hot argmax)."""
        z = z.clone()
        for j, n in self.steps.items():
            z[..., j] = torch.round(z[..., j].clamp(0.0, 1.0) * n) / n
        for _, start, k in self.blocks:
            block = z[..., start:start + k]
            z[..., start:start + k] = torch.nn.functional.one_hot(block.argmax(dim=-1), k).to(z.dtype)
        return z

    def neighbours(self, z: torch.Tensor) -> torch.Tensor:
        """``[n, m, D]`` discrete neighbours of legal features ``z: [n, D]``: each integer one step
        up and down (clamped to its range), each binary flipped, each other choice of a categorical."""
        out = []
        for j, n in self.steps.items():
            for step in (-1.0 / n, 1.0 / n):
                nb = z.clone()
                nb[:, j] = (nb[:, j] + step).clamp(0.0, 1.0)
                out.append(nb)
        for _, start, k in self.blocks:
            for c in range(k):
                nb = z.clone()
                nb[:, start:start + k] = 0.0
                nb[:, start + c] = 1.0
                out.append(nb)
        if not out:
            return z.unsqueeze(1)
        return torch.stack(out, dim=1)

    def polisher(self, acqf: Callable[[torch.Tensor], torch.Tensor], max_rounds: int = 5
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
        """A ``post_processing_func`` for ``optimize_acqf``: round candidates ``[r, q, D]``, then
        climb their discrete neighbourhoods (one q-batch at a time, ``acqf`` on ``[m, q, D]``)
        while the acquisition rises, for at most ``max_rounds`` moves."""

        def polish(batch: torch.Tensor) -> torch.Tensor:
            batch = self.round(batch)
            if self.is_continuous:
                return batch
            with torch.no_grad():
                for r in range(batch.shape[0]):
                    current = batch[r]  # [q, D]
                    value = acqf(current.unsqueeze(0))[0]
                    for _ in range(max_rounds):
                        q = current.shape[0]
                        # move one point of the q-batch at a time
                        nb = self.neighbours(current)  # [q, m, D]
                        cands = current.unsqueeze(0).repeat(q * nb.shape[1], 1, 1)  # [q*m, q, D]
                        rows = torch.arange(q).repeat_interleave(nb.shape[1])
                        cands[torch.arange(len(rows)), rows] = nb.reshape(-1, current.shape[-1])
                        values = acqf(cands)
                        best = int(torch.argmax(values))
                        if not bool(values[best] > value):
                            break
                        current, value = cands[best], values[best]
                    batch[r] = current
            return batch

        return polish
