"""Tensors + JSON, without pickle: how optimizer states are stored.

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

MAGIC = b"WBST1\n"
_DTYPES = {torch.float64: "<f8", torch.float32: "<f4", torch.float16: "<f2", torch.int64: "<i8", torch.int32: "<i4",
           torch.int16: "<i2", torch.int8: "|i1", torch.uint8: "|u1", torch.bool: "|b1"}
_TORCH = {v: k for k, v in _DTYPES.items()}


def pack(state: Any) -> bytes:
    """Serialize nested dicts/lists of tensors and JSON values to bytes."""
    blobs: list[bytes] = []

    def encode(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            if t.dtype not in _DTYPES:
                raise TypeError(f"cannot store tensors of dtype {t.dtype}")
            blobs.append(t.numpy().astype(_DTYPES[t.dtype], copy=False).tobytes())
            return {"__tensor__": len(blobs) - 1, "dtype": _DTYPES[t.dtype], "shape": list(t.shape)}
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
    return MAGIC + struct.pack("<Q", len(header)) + header + b"".join(blobs)


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
