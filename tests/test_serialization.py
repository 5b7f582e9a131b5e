"""Optimizer states as bytes (pack / unpack) and batches of designs as one byte array (design_bytes)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.serialization import MAGIC, design_bytes, pack, unpack


def test_pack_writes_the_documented_format_and_unpack_reads_it_back():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, generator=gen, dtype=torch.float64)
    state = {"x": x.t(), "rank": torch.arange(4), "ok": torch.tensor([True, False, True, True]),
             "half": torch.ones(2, dtype=torch.float16), "scalar": torch.tensor(2.5), "empty": torch.empty(0, 3),
             "nested": [{"n": np.int64(3), "w": np.float32(0.5), "s": "text", "none": None}, (1, 2.0)],
             "generator": gen.get_state()}
    blob = pack(state)
    # the format of the module docstring: magic, header length, JSON header, each tensor's bytes back to back
    (size,) = struct.unpack("<Q", blob[len(MAGIC):len(MAGIC) + 8])
    header = json.loads(blob[len(MAGIC) + 8:len(MAGIC) + 8 + size])
    assert blob.startswith(MAGIC) and header["x"] == {"__tensor__": 0, "dtype": "<f8", "shape": [3, 4]}
    assert header["nested"] == [{"n": 3, "w": 0.5, "s": "text", "none": None}, [1, 2.0]]
    raw = [x.t().contiguous().numpy().tobytes(), np.arange(4).tobytes(), bytes([1, 0, 1, 1]),
           np.ones(2, "<f2").tobytes(), np.float32(2.5).tobytes(), b"", gen.get_state().numpy().tobytes()]
    assert blob[len(MAGIC) + 8 + size:] == b"".join(raw)
    back = unpack(blob)
    for key in ("x", "rank", "ok", "half", "scalar", "empty", "generator"):
        assert back[key].dtype == state[key].dtype and torch.equal(back[key], state[key]), key
    assert back["nested"] == header["nested"] and back["x"].is_contiguous()
    with pytest.raises(TypeError, match="tensors and JSON values only"):
        pack({"bad": object()})
    with pytest.raises(ValueError, match="bad magic bytes"):
        unpack(b"pickle" + blob)


@pytest.mark.parametrize("space, dtype", [
    (wb.MixedSpace([wb.Real("a", 0.0, 1.0), wb.Integer("n", 1, 6), wb.Categorical("m", ["p", "q", "r"])]), None),
    (wb.MixedSpace.box(5), torch.float32),  # another dtype than the stored one: cast, as encode_rows does
    (wb.SequenceSpace("ACGT", 7, min_length=3), None),  # 14 bytes a row: not a multiple of 8
    (wb.TensorSpace((2, 3, 3)), None),  # float32 values
    (wb.TensorSpace((4, 4), levels=256), None),  # its own encode_rows: one byte a value
])
def test_design_bytes_are_what_encode_rows_gives_row_by_row(space, dtype):
    x = space.sample(9, torch.Generator().manual_seed(1))
    if dtype is not None:
        x = x.to(dtype)
    rows = space.encode_rows(x)
    out = design_bytes(space, x)
    assert out.dtype == np.uint8 and out.shape == (9, len(rows[0]))
    assert [r.tobytes() for r in out] == rows
    assert torch.equal(space.decode_rows([r.tobytes() for r in out]), space.decode_rows(rows))
    assert design_bytes(space, x[:0]).shape == (0, len(rows[0]))
    if x.dim() == 2:  # a column-sliced (non-contiguous) batch
        sliced = torch.cat([x, x], dim=1)[:, ::2]
        assert [r.tobytes() for r in design_bytes(space, sliced)] == space.encode_rows(sliced)
