"""Bit-reproducible runs: ``deterministic=True`` on a :class:`~workbench.Study` or :class:`~workbench.Campaign`.

Every random draw of the workbench already goes through a seeded generator, so a run on the CPU repeats exactly.
On a GPU that is not enough: cuBLAS splits reductions differently from call to call unless its workspace is fixed,
and some kernels (the backward of an embedding or of ``index_select``, ``scatter_add``, ``index_add``) sum with
atomics in whatever order the threads finish. :func:`deterministic_mode` switches PyTorch to its deterministic
kernels for the duration of a run and raises, naming the operation, where one has none.

cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when PyTorch creates its first handle, so this module sets the
recommended ``:4096:8`` when the workbench is imported (unless the user set it): a process that touched CUDA
before importing the workbench should set it itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

#: cuBLAS workspace setting that makes its reductions repeat (PyTorch's reproducibility notes)
CUBLAS_WORKSPACE = ":4096:8"
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


@contextlib.contextmanager
def deterministic_mode(enabled: bool = True) -> Iterator[None]:
    """Within the block, PyTorch uses deterministic kernels only (``enabled=False``: no change). The previous
    settings come back afterwards, also on error."""
    if not enabled:
        yield
        return
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in (":4096:8", ":16:8"):
        raise RuntimeError("deterministic=True needs CUBLAS_WORKSPACE_CONFIG=:4096:8 (or :16:8) before CUDA starts; "
                           f"it is {os.environ.get('CUBLAS_WORKSPACE_CONFIG')!r}")
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
