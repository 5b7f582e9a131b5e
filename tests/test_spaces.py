import numpy as np
import pandas as pd
import pytest
import torch

import workbench as wb
from workbench.spaces import space_from_spec


def test_mixed_space_round_trip_and_bounds(mixed_domain):
    space = mixed_domain.space
    x = space.sample(500, torch.Generator().manual_seed(1))
    assert x.shape == (500, 5)
    assert space.invalid_rows(x) == {}
    frame = space.to_frame(x)
    assert set(frame["material"]) == {"steel", "aluminium", "titanium"}
    assert frame["bridge"].dtype == bool
    assert torch.equal(space.from_frame(frame), x)
    # log variable really is log-uniform: about half the draws fall below the geometric mean 1.0
    assert 0.4 < float((x[:, 1] < 1.0).double().mean()) < 0.6
    rebuilt = space_from_spec(space.to_spec())
    assert rebuilt.to_spec() == space.to_spec()


def test_validate_names_the_problem(mixed_domain):
    space = mixed_domain.space
    x = space.sample(3, torch.Generator().manual_seed(0))
    x[1, 2] = 2.5
    with pytest.raises(ValueError, match=r"row 1: variable 'n' \(integer\) must be a whole number"):
        space.validate(x)
    x = space.sample(3, torch.Generator().manual_seed(0))
    x[2, 0] = 7.0
    with pytest.raises(ValueError, match=r"row 2: variable 'a' = 7.0 is outside \[0.0, 1.0\]"):
        space.validate(x)
    with pytest.raises(ValueError, match=r"expected designs of shape \[n, 5\], got \[3, 4\]"):
        space.validate(torch.zeros(3, 4))


def test_from_frame_errors(mixed_domain):
    space = mixed_domain.space
    with pytest.raises(ValueError, match="missing columns for variables"):
        space.from_frame(pd.DataFrame({"a": [0.1]}))
    row = {"a": 0.1, "b": 1.0, "n": 2, "material": "wood", "bridge": True}
    with pytest.raises(ValueError, match="unknown choice 'wood'"):
        space.from_frame(row)


def test_variable_errors():
    with pytest.raises(ValueError, match="need finite low < high"):
        wb.Real("x", 1.0, 0.0)
    with pytest.raises(ValueError, match="at least 2 choices"):
        wb.Categorical("c", ["only"])
    with pytest.raises(ValueError, match="duplicate variable names"):
        wb.MixedSpace([wb.Real("x", 0, 1), wb.Real("x", 0, 2)])


def test_sequence_space_encode_decode_and_errors():
    space = wb.SequenceSpace("ACGT", length=6, min_length=4)
    x = space.encode(["ACGTAC", "GGTA"])
    assert space.decode(x) == ["ACGTAC", "GGTA"]
    assert space.invalid_rows(x) == {}
    with pytest.raises(ValueError, match="invalid token 'N'"):
        space.encode(["ACGNAC"])
    with pytest.raises(ValueError, match="has length 3; expected 4 to 6"):
        space.encode(["ACG"])
    s = space.sample(200, torch.Generator().manual_seed(0))
    assert space.invalid_rows(s) == {}
    lengths = (s != space.pad_index).sum(1)
    assert int(lengths.min()) >= 4 and int(lengths.max()) == 6
    assert torch.equal(space.decode_rows(space.encode_rows(s)), s)


def test_a_stored_sequence_with_a_token_outside_the_alphabet_still_opens(tmp_path):
    """A design that failed as invalid is stored; reading the study back must show it, not raise."""
    class Fixed(wb.Optimizer):
        """Asks for one valid design and one with token ids outside the alphabet."""

        def ask(self, n: int) -> torch.Tensor:
            return torch.tensor([[0, 1, 2, 3], [0, 9, 2, -1]])

        def tell(self, x, evaluation) -> None:
            pass

    space = wb.SequenceSpace("ACGT", length=4)
    domain = wb.Domain.from_function(space, lambda x: (x == 0).sum(1).double(), ["a_count"])
    study = wb.Study(domain, Fixed(), storage=f"sqlite:///{tmp_path}/s.db", name="s", device="cpu")
    study.run(2, batch_size=2, progress=False)
    frame = wb.Study.load(f"sqlite:///{tmp_path}/s.db", "s").frame()
    assert frame["sequence"].tolist() == ["ACGT", "A?G?"]
    assert "token index 9" in frame["error"].iloc[1]


def test_storage_encoding_round_trip(mixed_domain):
    space = mixed_domain.space
    x = space.sample(7, torch.Generator().manual_seed(3))
    assert torch.equal(space.decode_rows(space.encode_rows(x)), x)
    tensor_space = wb.TensorSpace((2, 3, 3))
    t = tensor_space.sample(4, torch.Generator().manual_seed(0))
    assert torch.equal(tensor_space.decode_rows(tensor_space.encode_rows(t)), t)
    assert np.allclose(tensor_space.to_frame(t)["mean"], t.reshape(4, -1).mean(1).double().numpy())


def test_tensor_space_with_levels_stores_bytes_losslessly_and_rejects_values_between_levels():
    space = wb.TensorSpace((1, 4, 4), 0.0, 1.0, levels=256)
    x = space.sample(5, torch.Generator().manual_seed(0))
    assert not space.invalid_rows(x)
    rows = space.encode_rows(x)
    assert all(len(r) == 16 for r in rows)  # one byte per value
    assert torch.equal(space.decode_rows(rows), x)
    off = x.clone()
    off[2, 0, 1, 1] = 0.5 / 255
    assert set(space.invalid_rows(off)) == {2} and "256 evenly spaced levels" in space.invalid_rows(off)[2]
    assert space_from_spec(space.to_spec()).levels == 256
    with pytest.raises(ValueError, match="levels must be in 2..256"):
        wb.TensorSpace((3,), levels=1000)
