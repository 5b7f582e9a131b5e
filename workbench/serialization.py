"""Tensors + JSON, without pickle: how optimizer states are stored; and a batch of designs as one byte array.

Format: ``b"WBST1\\n"``, an 8-byte little-endian header length, a JSON header in which
every tensor is replaced by ``{"__tensor__": i, "dtype": ..., "shape": [...]}``, then the
tensors' raw bytes back to back.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import torch

from .spaces import Space

MAGIC = b"WBST1\n"
_DTYPES = {torch.float64: "<f8", torch.float32: "<f4", torch.float16: "<f2", torch.int64: "<i8", torch.int32: "<i4",
           torch.int16: "<i2", torch.int8: "|i1", torch.uint8: "|u1", torch.bool: "|b1"}
_TORCH = {v: k for k, v in _DTYPES.items()}


def pack(state: Any) -> bytes:
    """Serialize nested dicts/lists of tensors and JSON values to bytes.

    Each tensor is copied once, from its (CPU) memory straight into the result: a population of 100,000 designs
    is a 29 MB state, packed after every batch.
    """
    buffers: list[np.ndarray] = []

    def encode(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            if t.dtype not in _DTYPES:
                raise TypeError(f"cannot store tensors of dtype {t.dtype}")
            arr = np.ascontiguousarray(t.numpy().astype(_DTYPES[t.dtype], copy=False))
            buffers.append(arr.reshape(-1).view(np.uint8))
            return {"__tensor__": len(buffers) - 1, "dtype": _DTYPES[t.dtype], "shape": list(t.shape)}
        if isinstance(obj, dict):
            if any(not isinstance(k, str) for k in obj):
                raise TypeError("state dict keys must be strings")
            return {k: encode(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [encode(v) for v in obj]
        if isinstance(obj, (np.integer, np.floating)):
            return obj.item()
        if obj is None or isinstance(obj, (str, int, float, bool)):
            return obj
        raise TypeError(f"cannot store a {type(obj).__name__} in a state dict (tensors and JSON values only)")

    header = json.dumps(encode(state), allow_nan=True).encode()
    return b"".join([MAGIC, struct.pack("<Q", len(header)), header, *buffers])


def unpack(data: bytes) -> Any:
    """Inverse of :func:`pack`; tensors come back on the CPU."""
    if not data.startswith(MAGIC):
        raise ValueError("not a workbench state blob (bad magic bytes)")
    (size,) = struct.unpack("<Q", data[len(MAGIC):len(MAGIC) + 8])
    start = len(MAGIC) + 8
    header = json.loads(data[start:start + size])
    offset = start + size
    tensors: list[torch.Tensor] = []

    def collect(obj: Any) -> None:
        nonlocal offset
        if isinstance(obj, dict) and "__tensor__" in obj:
            dtype = np.dtype(obj["dtype"])
            count = int(np.prod(obj["shape"])) if obj["shape"] else 1
            arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(obj["shape"])
            offset += count * dtype.itemsize
            tensors.append(torch.from_numpy(arr.copy()))
        elif isinstance(obj, dict):
            for v in obj.values():
                collect(v)
        elif isinstance(obj, list):
            for v in obj:
                collect(v)

    def decode(obj: Any) -> Any:
        if isinstance(obj, dict) and "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if isinstance(obj, dict):
            return {k: decode(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [decode(v) for v in obj]
        return obj

    collect(header)
    return decode(header)


def design_bytes(space: Space, x: torch.Tensor) -> np.ndarray:
    """The storage bytes of designs ``x: [n, *space.shape]`` as one ``[n, width]`` uint8 array.

    Row ``i`` holds exactly the bytes ``space.encode_rows(x)[i]``. For a space that keeps the base encoding (a
    cast to its ``storage_dtype``: mixed and sequence spaces) this is one array operation, with no Python object
    per design; a space with an ``encode_rows`` of its own (``TensorSpace``) goes through it. On the CPU the array may
    share memory with ``x``: copy it before ``x`` changes.
    """
    if type(space).encode_rows is Space.encode_rows:
        arr = np.ascontiguousarray(x.detach().cpu().numpy().astype(space.storage_dtype, copy=False))
        width = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
        return arr.reshape(-1).view(np.uint8).reshape(len(arr), width)
    rows = space.encode_rows(x)
    width = len(rows[0]) if rows else space.storage_dtype.itemsize * int(np.prod(space.shape, dtype=np.int64))
    if any(len(row) != width for row in rows):
        raise ValueError(f"{type(space).__name__}.encode_rows gave rows of different lengths; stored designs need "
                         f"one width per space")
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), width)
