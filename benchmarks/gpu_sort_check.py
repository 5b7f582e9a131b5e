"""Checks the CUDA sorting paths against moocore, then times them (run on a GPU machine).

    python benchmarks/gpu_sort_check.py
"""

from __future__ import annotations

import time

import moocore
import numpy as np
import torch

from workbench.pareto import nondominated_rank_torch
from workbench.pareto.triton_sort import nondominated_rank_triton


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    for n, k in [(1, 2), (7, 2), (1000, 2), (3000, 3), (2500, 5), (4000, 4)]:
        f = torch.rand(n, k, generator=gen, dtype=torch.float64)
        f[: n // 10] = f[n // 10: 2 * (n // 10)]  # duplicates
        f[:, 0] = torch.round(f[:, 0] * 20) / 20  # ties
        expected = torch.from_numpy(np.asarray(moocore.pareto_rank(f.numpy()), dtype=np.int64))
        got = nondominated_rank_triton(f.cuda()).cpu()
        torch_got = nondominated_rank_torch(f.cuda()).cpu()
        partial = nondominated_rank_triton(f.cuda(), max_rank_fill=n // 2).cpu()
        filled = partial < n
        assert torch.equal(got, expected), (n, k)
        assert torch.equal(torch_got, expected), (n, k)
        assert int(filled.sum()) >= n // 2 and torch.equal(partial[filled], expected[filled]), (n, k)
        print(f"n={n} k={k}: triton, torch and moocore ranks identical")
    for n, k in [(200_000, 2), (200_000, 3)]:
        f = torch.rand(n, k, generator=gen, dtype=torch.float64)
        fc = f.cuda()
        nondominated_rank_triton(fc[:1000])
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        r = nondominated_rank_triton(fc, max_rank_fill=n // 2)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        m = moocore.pareto_rank(f.numpy())
        t2 = time.perf_counter()
        filled = (r < n).cpu()
        assert torch.equal(r.cpu()[filled], torch.from_numpy(np.asarray(m, dtype=np.int64))[filled])
        print(f"n={n} k={k}: triton {t1 - t0:.3f} s (first half of fronts), moocore CPU {t2 - t1:.3f} s (all)")


if __name__ == "__main__":
    main()
