import numpy as np
import pytest
import torch

from workbench.pareto import (constrained_rank, crowding_by_front, crowding_distance, hypervolume, igd,
                              is_nondominated, nondominated_rank, nondominated_rank_torch)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_torch_rank_matches_moocore(k):
    f = torch.rand(1500, k, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    f[:50] = f[50:100]  # duplicates share a rank
    assert torch.equal(nondominated_rank_torch(f), nondominated_rank(f))
    assert torch.equal(is_nondominated(f), nondominated_rank(f) == 0)


def test_partial_rank_fills_at_least_requested():
    f = torch.rand(2000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full = nondominated_rank_torch(f)
    part = nondominated_rank_torch(f, max_rank_fill=100)
    assigned = part < len(f)
    assert int(assigned.sum()) >= 100
    assert torch.equal(part[assigned], full[assigned])


def test_crowding_matches_pymoo():
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

    f = torch.rand(40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = crowding_distance(f).numpy() / 3  # pymoo averages over objectives; the order is the same
    theirs = calc_crowding_distance(f.numpy())
    assert np.allclose(np.where(np.isinf(ours), 1e9, ours), np.where(np.isinf(theirs), 1e9, theirs))
    rank = nondominated_rank(f)
    by_front = crowding_by_front(f, rank)
    for r in rank.unique():
        idx = rank == r
        assert torch.allclose(by_front[idx], crowding_distance(f[idx]))


def test_constrained_rank_feasibility_first():
    f = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.5, 0.5]], dtype=torch.float64)
    g = torch.tensor([[1.0], [0.0], [-1.0], [3.0]], dtype=torch.float64)
    rank = constrained_rank(f, g)
    assert rank.tolist() == [2, 0, 1, 3]


def test_hypervolume_and_igd():
    pts = torch.tensor([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    assert hypervolume(pts, [1.1, 1.1]) == pytest.approx(0.11 + 0.36 + 0.11 - 0.06 - 0.06 - 0.01 + 0.01)
    assert hypervolume(torch.tensor([[2.0, 2.0]]), [1.0, 1.0]) == 0.0
    with pytest.raises(ValueError, match="reference point has 3 values but the points have 2 objectives"):
        hypervolume(pts, [1, 1, 1])
    assert igd(pts, pts) == 0.0
    assert igd(pts[:1], pts) == pytest.approx((0 + np.sqrt(0.5) + np.sqrt(2)) / 3)
