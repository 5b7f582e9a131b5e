import pytest
import torch

import workbench as wb
from workbench.objectives import violations


def test_directions_and_constraints():
    assert wb.Objective("m", "max").sign == -1.0
    assert wb.Objective("m").direction == "minimize"
    with pytest.raises(ValueError, match="unknown direction 'up'"):
        wb.Objective("m", "up")
    with pytest.raises(ValueError, match="unknown sense '<'"):
        wb.Constraint("c", 1.0, "<")
    cons = [wb.Constraint("sf", 1.5, ">="), wb.Constraint("mass", 2.0, "<=")]
    v = violations(cons, torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64))
    assert torch.allclose(v, torch.tensor([[-0.5, -1.0], [0.5, 1.0]], dtype=torch.float64))


def test_domain_rejects_name_clash_and_empty_objectives():
    space = wb.MixedSpace.box(2)
    with pytest.raises(ValueError, match="at least one objective"):
        wb.Domain.from_function(space, lambda x: x, objectives=[])
    with pytest.raises(ValueError, match=r"both as objective and constraint: \['a'\]"):
        wb.Domain.from_function(space, lambda x: x, objectives=["a"], constraints=["a"])
