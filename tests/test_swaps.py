"""The exact single-token swap estimator (optimizers.guidance.swaps) and DRAKES with it."""

from __future__ import annotations

import torch

from domains.layouts import PageLayouts
from optimizers.guidance.swaps import swap_gains, swap_surrogate


def test_swap_gains_are_the_rewards_changes_and_the_surrogate_carries_them_as_its_gradient():
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(6, 5, generator=g)

    def reward(x):  # [m, 6, 5] -> [m], not linear in the one-hots: a product of two positions' scores
        score = (x * weights).sum(-1)
        return score.sum(-1) + score[:, 0] * score[:, 3]

    tokens = torch.randint(0, 5, (3, 6), generator=g)
    hard = torch.nn.functional.one_hot(tokens, 5).float()
    candidates = torch.rand(6, 5, generator=g) < 0.7
    base, gains = swap_gains(reward, hard, candidates, chunk=7)
    for r in range(3):
        for i in range(6):
            for v in range(5):
                swapped = tokens[r].clone()
                swapped[i] = v
                expected = reward(torch.nn.functional.one_hot(swapped, 5).float()[None])[0] - base[r]
                want = expected if candidates[i, v] and v != tokens[r, i] else torch.tensor(0.0)
                assert torch.isclose(gains[r, i, v], want, atol=1e-5)
    design = hard.clone().requires_grad_(True)
    value = swap_surrogate(reward, design, candidates, chunk=7)
    assert torch.allclose(value, reward(hard))
    value.sum().backward()
    assert torch.allclose(design.grad, gains)


def test_on_alignment_the_swap_gain_points_at_the_aligned_bin_where_the_linear_gradient_overshoots():
    """Two text boxes whose left edges sit a few bins apart: the alignment error is smallest when the second box's
    x takes the first box's bin. The swap gains rank that bin first; the straight-through (linear) gradient ranks
    the farthest bin in the improving direction first."""
    dom = PageLayouts(objectives=("alignment",))
    tok = dom.tokenizer
    classes = torch.tensor([[0, 0] + [-1] * 23])
    boxes = torch.zeros(1, 25, 4)
    boxes[0, 0] = torch.tensor([0.10, 0.10, 0.80, 0.05])
    boxes[0, 1] = torch.tensor([0.30, 0.40, 0.30, 0.05])
    x = dom.encode(classes, boxes)
    hard = torch.nn.functional.one_hot(x, tok.vocab_size).float()

    def reward(design):
        return -dom.evaluate_soft(design)["alignment"]

    _, gains = swap_gains(reward, hard, tok.moves())
    _, present_only = swap_gains(reward, hard, tok.moves)  # per layout: the two present elements' coordinates
    assert torch.equal(gains, present_only) and int((tok.moves(x) != 0).sum()) == 2 * 4 * tok.bins
    position = 5 + 1  # the second element's x
    bins = slice(tok.offset(0), tok.offset(0) + tok.bins)
    partner_bin = int(x[0, 1]) - tok.offset(0)
    assert int(gains[0, position, bins].argmax()) == partner_bin
    assert float(gains[0, position, bins].max()) > 0
    design = hard.clone().requires_grad_(True)
    reward(design).sum().backward()
    linear = design.grad[0, position, bins]
    assert int(linear.argmax()) in (0, tok.bins - 1) and int(linear.argmax()) != partner_bin
