"""Page layouts: data and splits, tokenization, metrics (against hand computations) and rewards."""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from domains.layouts import data as D
from domains.layouts import metrics as M
from domains.layouts import rewards as R
from domains.layouts.tokens import PAD, Tokenizer, default_tokenizer, fit_bins

torch.set_num_threads(1)


def layout(*elements: tuple[int, tuple[float, float, float, float]], slots: int = 25):
    """One hard layout (classes [1, slots], boxes [1, slots, 4]) from (class, (x, y, w, h)) pairs."""
    classes = torch.full((1, slots), -1, dtype=torch.int64)
    boxes = torch.zeros(1, slots, 4)
    for j, (c, box) in enumerate(elements):
        classes[0, j] = c
        boxes[0, j] = torch.tensor(box)
    return classes, boxes


@pytest.fixture(scope="module")
def test_split():
    return D.load_split("test")


# ------------------------------------------------------------------------------------------------------- data

def test_file_is_the_shared_data_byte_for_byte():
    digest = hashlib.sha256(D.DATA_FILE.read_bytes()).hexdigest()
    assert digest == "4cb92c57c901db01b4be8ea61a5a237ad8bc3185ed4f6a154cf9d87f9bce2c27"
    pages = D.load_pages()
    assert list(pages.columns) == ["pdf", "page", "width", "height", "licence", "elements"]
    assert len(pages) == 12_164 and pages["pdf"].nunique() == 632
    assert not pages.duplicated(["pdf", "page"]).any()


def test_split_by_pdf_has_no_leakage_and_documented_sizes():
    pages = D.load_pages()
    rows = {s: D.split_rows(s, None) for s in D.SPLITS}
    pdfs = {s: set(pages["pdf"].iloc[r]) for s, r in rows.items()}
    assert {s: len(p) for s, p in pdfs.items()} == {"train": 518, "valid": 63, "test": 51} == D.pdf_counts()
    for a, b in itertools.combinations(D.SPLITS, 2):
        assert not pdfs[a] & pdfs[b]
    assert {s: len(r) for s, r in rows.items()} == {"train": 10_013, "valid": 1_116, "test": 1_035}
    assert sorted(np.concatenate(list(rows.values()))) == list(range(len(pages)))
    assert all(D.split_of(p) == s for s in D.SPLITS for p in pdfs[s])
    assert D.split_of("bibtex/bath-bst/bath-bst-v1.pdf") == D.split_of("bibtex/bath-bst/bath-bst-v1.pdf")


def test_cap_per_pdf_is_seeded_and_keeps_file_order():
    pages = D.load_pages()
    capped = {s: D.split_rows(s) for s in D.SPLITS}
    assert {s: len(r) for s, r in capped.items()} == {"train": 5_326, "valid": 683, "test": 495}
    for s in D.SPLITS:
        full = pages["pdf"].iloc[D.split_rows(s, None)].value_counts()
        kept = pages["pdf"].iloc[capped[s]].value_counts()
        assert (kept == full.clip(upper=20)[kept.index]).all() and set(kept.index) == set(full.index)
        assert (np.diff(capped[s]) > 0).all()
    assert np.array_equal(D.split_rows("test", 5, seed=1), D.split_rows("test", 5, seed=1))
    assert not np.array_equal(D.split_rows("test", 5, seed=1), D.split_rows("test", 5, seed=2))


def test_load_split_tensors(test_split):
    classes, boxes = test_split
    assert classes.shape == (495, 25) and boxes.shape == (495, 25, 4)
    assert classes.dtype == torch.int64 and boxes.dtype == torch.float32
    present = classes >= 0
    assert int(classes.min()) == -1 and int(classes.max()) == 4
    # present elements fill the first slots, absent boxes are 0, every box is inside the page
    assert torch.equal(present, present.cummin(dim=1).values)
    assert (boxes[~present] == 0).all()
    assert (boxes >= 0).all() and (boxes[..., :2] + boxes[..., 2:] <= 1 + 1e-6).all()
    assert (boxes[present][:, 2:] > 0).all()
    # the file's element order is kept
    row = D.split_rows("test")[0]
    page = D.load_pages()["elements"].iloc[row]
    assert D.to_elements(classes[:1], boxes[:1])[0] == [
        {"class": e["class"], "box": [round(min(max(v, 0.0), 1.0), 5) for v in e["box"]]} for e in page]


def test_elements_round_trip_and_errors():
    pages = [[{"class": "title", "box": [0.1, 0.1, 0.8, 0.05]}, {"class": "figure", "box": [0.1, 0.2, 0.4, 0.3]}], []]
    classes, boxes = D.from_elements(pages)
    assert classes[0, :3].tolist() == [1, 4, -1] and (classes[1] == -1).all()
    assert D.to_elements(classes, boxes) == pages
    bad = {
        "26 elements": [[{"class": "text", "box": [0.1, 0.1, 0.1, 0.01]}] * 26],
        "unknown class 'caption'": [[{"class": "caption", "box": [0.1, 0.1, 0.1, 0.1]}]],
        "w or h <= 0": [[{"class": "text", "box": [0.1, 0.1, 0.0, 0.1]}]],
        "not finite": [[{"class": "text", "box": [0.1, float("nan"), 0.1, 0.1]}]],
        "leaves the page": [[{"class": "text", "box": [0.6, 0.1, 0.5, 0.1]}]],
    }
    for message, case in bad.items():
        with pytest.raises(ValueError, match=message):
            D.from_elements(case)
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        D.load_split("validation")
    with pytest.raises(ValueError, match="unknown class index 7"):
        D.to_elements(torch.full((1, 25), 7), torch.zeros(1, 25, 4))


# ----------------------------------------------------------------------------------------------------- tokens

def test_vocabulary_and_allowed_tokens():
    tok = default_tokenizer()
    assert (tok.vocab_size, tok.length, tok.bins, PAD) == (134, 125, 32, 5)
    allowed = tok.allowed()
    assert allowed.shape == (125, 134)
    assert allowed[0].nonzero().squeeze(1).tolist() == [0, 1, 2, 3, 4, 5]
    assert allowed[1].nonzero().squeeze(1).tolist() == [5] + list(range(6, 38))
    assert allowed[4].nonzero().squeeze(1).tolist() == [5] + list(range(102, 134))
    assert torch.equal(allowed[5:10], allowed[:5])
    assert (tok.centres[:, 1:] > tok.centres[:, :-1]).all() and (tok.centres > 0).all() and (tok.centres < 1).all()


def test_round_trip_on_real_test_split(test_split):
    classes, boxes = test_split
    present = classes >= 0
    errors = {}
    for tok in (default_tokenizer(), Tokenizer("uniform")):
        tokens = tok.encode(classes, boxes)
        assert tokens.shape == (495, 125) and tokens.dtype == torch.int64
        assert tok.allowed()[torch.arange(125), tokens].all()
        back_c, back_b, broken = tok.decode(tokens, return_invalid=True)
        assert torch.equal(back_c, classes) and not broken.any()
        err = (back_b - boxes).abs()[present]  # [m, 4]
        # nearest centre: never farther than the far end of the value's bin interval
        q = tok.quantize(boxes)[present]
        mid = torch.cat([torch.zeros(4, 1), (tok.centres[:, 1:] + tok.centres[:, :-1]) / 2, torch.ones(4, 1)], 1)
        far = torch.stack([torch.maximum(tok.centres[a][q[:, a]] - mid[a][q[:, a]],
                                         mid[a][q[:, a] + 1] - tok.centres[a][q[:, a]]) for a in range(4)], -1)
        assert (err <= far + 1e-6).all()
        errors[tok.kind] = err.mean(0)
    assert float(err.max()) <= 1 / 64 + 1e-6  # uniform: half a bin width at most
    # k-means bins fit the data: smaller mean error than uniform bins (measured 0.0051 vs 0.0076)
    assert float(errors["kmeans"].mean()) < 0.8 * float(errors["uniform"].mean())
    assert float(errors["kmeans"].mean()) < 0.006


def test_refit_reproduces_shipped_bins():
    classes, boxes = D.load_split("train")
    fitted = fit_bins(boxes, classes >= 0)
    for a, name in enumerate("xywh"):
        assert np.allclose(fitted[name], default_tokenizer().centres[a].numpy(), atol=1e-6)
    # three well separated clusters -> their means
    values = torch.tensor([0.1, 0.11, 0.12, 0.5, 0.52, 0.9, 0.91, 0.92, 0.93]).view(-1, 1, 1).expand(-1, 1, 4)
    three = fit_bins(values.contiguous(), torch.ones(9, 1, dtype=torch.bool), bins=3)
    assert np.allclose(three["x"], [0.11, 0.51, 0.915], atol=1e-6)


def test_encode_compacts_and_decode_flags_broken_elements():
    tok = default_tokenizer()
    classes, boxes = layout((0, (0.1, 0.1, 0.8, 0.1)), (1, (0.1, 0.3, 0.5, 0.05)))
    classes[0, 1], classes[0, 3] = -1, 1  # a gap: the title moves to slot 3
    boxes[0, 3], boxes[0, 1] = boxes[0, 1].clone(), 0
    tokens = tok.encode(classes, boxes)
    assert tokens[0, [0, 5]].tolist() == [0, 1] and (tokens[0, 10:] == PAD).all()
    broken = tokens.clone()
    broken[0, 7] = PAD  # title's y is PAD
    broken[0, 10] = 40  # a y bin at a class position of an otherwise PAD element
    c, b, bad = tok.decode(broken, return_invalid=True)
    assert c[0, :3].tolist() == [0, -1, -1] and bad[0, :3].tolist() == [False, True, True]
    assert (b[0, 1:] == 0).all()
    broken[0, 1] = 40  # a y bin at an x position
    assert tok.decode(broken, return_invalid=True)[2][0, 0]
    with pytest.raises(ValueError, match=r"tokens must lie in 0..133"):
        tok.decode(torch.full((1, 125), 134))
    with pytest.raises(ValueError, match=r"tokens must be an integer tensor \[n, 125\]"):
        tok.decode(torch.zeros(1, 124, dtype=torch.int64))
    with pytest.raises(ValueError, match="unknown bin kind"):
        Tokenizer("quantile")


def test_expected_boxes_matches_decode_on_one_hot_and_has_gradients(test_split):
    tok = default_tokenizer()
    classes, boxes = test_split[0][:16], test_split[1][:16]
    tokens = tok.encode(classes, boxes)
    probs = torch.nn.functional.one_hot(tokens, tok.vocab_size).double()
    presence, class_probs, soft = tok.expected_boxes(probs)
    hard_c, hard_b = tok.decode(tokens)
    present = hard_c >= 0
    assert torch.equal(presence, present.double())
    assert torch.equal(class_probs[present].argmax(-1), hard_c[present])
    assert torch.allclose(soft[present], hard_b[present].double(), atol=1e-6)
    logits = torch.randn(4, 125, tok.vocab_size, dtype=torch.float64, requires_grad=True)
    p, _, b = tok.expected_boxes(torch.softmax(logits.masked_fill(~tok.allowed(), -1e9), -1))
    (R.alignment_reward(p, b) + R.overlap_reward(p, b) + R.coverage_reward(p, b, 0.2, 0.5)).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------- metrics

def test_alignment_by_hand():
    # perfectly left-aligned boxes
    assert float(M.alignment(*layout((0, (0.1, 0.1, 0.3, 0.1)), (0, (0.1, 0.5, 0.6, 0.2))))[0]) == 0.0
    # closest edges 0.1 apart for both elements: (-log(0.9) * 2) / 2
    value = M.alignment(*layout((0, (0.1, 0.1, 0.3, 0.2)), (1, (0.2, 0.5, 0.5, 0.3))))[0]
    assert math.isclose(float(value), -math.log(0.9), rel_tol=1e-6)
    # one element or none: 0 (nothing to align to)
    assert float(M.alignment(*layout((0, (0.1, 0.1, 0.3, 0.2))))[0]) == 0.0
    assert float(M.alignment(*layout())[0]) == 0.0


def test_overlap_by_hand():
    same = (0.2, 0.2, 0.4, 0.3)
    assert math.isclose(float(M.overlap(*layout((0, same), (1, same)))[0]), 1.0, rel_tol=1e-6)
    # squares of area 0.25 sharing 0.0625: ratios 0.25 + 0.25 over 2 elements
    value = M.overlap(*layout((0, (0.0, 0.0, 0.5, 0.5)), (0, (0.25, 0.25, 0.5, 0.5)), (1, (0.0, 0.8, 0.1, 0.1))))
    assert math.isclose(float(value[0]), 0.5 / 3, rel_tol=1e-6)
    assert float(M.overlap(*layout((0, (0.1, 0.1, 0.2, 0.2)), (0, (0.3, 0.1, 0.2, 0.2))))[0]) == 0.0  # touching


def test_validity():
    cases = [layout((0, (0.1, 0.1, 0.3, 0.2))), layout(), layout((0, (0.8, 0.1, 0.3, 0.2))),
             layout((0, (0.1, 0.1, 0.0, 0.2))), layout((2, (0.1, float("nan"), 0.3, 0.2)))]
    got = M.validity(torch.cat([x[0] for x in cases]), torch.cat([x[1] for x in cases]))
    assert got.tolist() == [True, False, False, False, False]


def test_max_iou_by_hand_and_against_itself(test_split):
    a, b = (0.0, 0.0, 0.5, 0.5), (0.25, 0.0, 0.5, 0.5)
    assert math.isclose(M.max_iou(layout((0, a)), layout((0, b))), 1 / 3)  # 0.125 / 0.375
    # per-class matching ignores the element order
    two = layout((0, a), (1, (0.1, 0.6, 0.8, 0.1)), (0, (0.6, 0.6, 0.3, 0.3)))
    swapped = layout((0, (0.6, 0.6, 0.3, 0.3)), (0, a), (1, (0.1, 0.6, 0.8, 0.1)))
    assert math.isclose(M.max_iou(two, swapped), 1.0)
    # no reference with the same classes: nothing matched
    assert M.max_iou(layout((0, a)), layout((1, a)), return_details=True) == {"max_iou": 0.0, "matched": 0, "n": 1}
    assert math.isclose(M.max_iou(test_split, test_split), 1.0)


def test_max_iou_matching_is_exact():
    g = torch.Generator().manual_seed(0)
    gen = torch.rand(6, 5, 4, generator=g).double().numpy() * 0.5
    ref = torch.rand(7, 5, 4, generator=g).double().numpy() * 0.5
    for key in [(0, 0, 0, 0, 1), (0, 0, 0, 0, 0)]:  # enumerated 4! matchings, then scipy for 5 elements
        got = M._pair_scores(key, gen, ref)
        want = np.zeros((6, 7))
        for i, j in itertools.product(range(6), range(7)):
            for c in set(key):
                s = [k for k, v in enumerate(key) if v == c]
                iou = M._iou(gen[i, s][:, None], ref[j, s][None, :])
                want[i, j] += iou[linear_sum_assignment(iou, maximize=True)].sum() / len(key)
        assert np.allclose(got, want)


def test_real_test_split_metrics(test_split):
    """The real pages that generated layouts are compared to (test split, at most 20 pages per PDF)."""
    train, valid = D.load_split("train"), D.load_split("valid")
    summary = M.summarize(*test_split, reference=train)
    assert summary["validity"] == 1.0 and math.isclose(summary["elements"], 10.206, abs_tol=1e-3)
    assert math.isclose(summary["alignment"], 0.00251, abs_tol=2e-5)
    assert math.isclose(summary["overlap"], 0.01872, abs_tol=2e-5)
    assert math.isclose(summary["max_iou"], 0.3259, abs_tol=1e-4)
    # the reference code's scrambled score matrix (groups of unequal size) gives a higher number
    assert math.isclose(M.max_iou(test_split, valid), 0.2272, abs_tol=1e-4)
    assert math.isclose(M.max_iou(test_split, valid, reference_quirk=True), 0.2505, abs_tol=1e-4)


# ---------------------------------------------------------------------------------------------------- rewards

def test_rewards_equal_hard_metrics_on_real_pages(test_split):
    classes, boxes = test_split
    p, b = R.hard_presence(classes, torch.float64), boxes.double()
    assert torch.allclose(R.alignment_reward(p, b), -M.alignment(classes, boxes).double(), atol=1e-6)
    assert torch.allclose(R.overlap_reward(p, b), -M.overlap(classes, boxes).double(), atol=1e-6)
    assert (R.reading_order_reward(p, b) == 0).all()  # every real page is in reading order


def test_union_area_is_exact():
    both = R.union_area(*(lambda c, b: (R.hard_presence(c), b))(
        *layout((0, (0.0, 0.0, 0.5, 0.5)), (0, (0.25, 0.25, 0.5, 0.5)), (0, (0.9, 0.9, 0.3, 0.3)))))
    assert math.isclose(float(both[0]), 0.25 + 0.25 - 0.0625 + 0.01, rel_tol=1e-6)  # the last box clipped
    # grid-aligned random boxes: equal to counting covered cells of the 32 x 32 grid
    g = torch.Generator().manual_seed(0)
    lo = torch.randint(0, 28, (8, 25, 2), generator=g)
    size = torch.randint(1, 5, (8, 25, 2), generator=g)
    p = (torch.rand(8, 25, generator=g) < 0.6).double()
    boxes = torch.cat([lo, size], -1).double() / 32
    row, col, hi = torch.arange(32).view(32, 1), torch.arange(32).view(1, 32), lo + size
    inside = ((row >= lo[..., 0, None, None]) & (row < hi[..., 0, None, None])
              & (col >= lo[..., 1, None, None]) & (col < hi[..., 1, None, None]))  # [8, 25, 32, 32]
    counted = (inside & (p > 0)[..., None, None]).any(1).sum((1, 2)).double() / 32 ** 2
    assert torch.allclose(R.union_area(p, boxes), counted)
    # soft presence: two coincident boxes at 0.5 cover 1 - 0.5 ** 2 of their area
    c, b = layout((0, (0.1, 0.1, 0.4, 0.5)), (0, (0.1, 0.1, 0.4, 0.5)))
    assert math.isclose(float(R.union_area(torch.where(c >= 0, 0.5, 0.0), b)[0]), 0.75 * 0.2, rel_tol=1e-6)
    hard = R.hard_presence(c)
    assert float(R.coverage_reward(hard, b, 0.1, 0.3)[0]) == 0.0
    assert math.isclose(float(R.coverage_reward(hard, b, 0.5, 0.9)[0]), -0.3, rel_tol=1e-5)


def test_union_area_gradient_at_hard_presence():
    """A surely present box that alone covers part of the page must pass its presence a gradient (its area that no
    other box covers; 0 where another present box also covers it): straight-through scoring relies on it."""
    c, b = layout((0, (0.0, 0.0, 0.5, 0.5)), (0, (0.25, 0.25, 0.5, 0.5)), (0, (0.3, 0.3, 0.1, 0.1)))
    p = R.hard_presence(c, torch.float64).requires_grad_(True)
    grad, = torch.autograd.grad(R.union_area(p, b.double()).sum(), p)
    sole = [0.25 - 0.0625, 0.25 - 0.0625, 0.0]  # each box's area covered by it alone; the small one lies in both
    assert torch.allclose(grad[0, :3], torch.tensor(sole, dtype=torch.float64), atol=1e-9)
    assert float(grad[0, 3:].abs().max()) == 0.0  # absent elements have empty boxes


def test_margin_and_reading_order_by_hand():
    c, b = layout((0, (0.0, 0.2, 0.5, 0.1)), (0, (0.3, 0.5, 0.69, 0.47)))
    p = R.hard_presence(c)
    # 0.05 into the left margin, 0.04 into the right one and 0.02 into the bottom one
    assert math.isclose(float(R.margin_reward(p, b, 0.05)[0]), -0.11, rel_tol=1e-5)
    assert float(R.margin_reward(p, b, (0.0, 0.0, 0.0, 0.0))[0]) == 0.0
    # the second element sits 0.3 above the first in the same column: -(1 * 0.3) / 2
    c, b = layout((0, (0.1, 0.5, 0.8, 0.1)), (0, (0.1, 0.2, 0.4, 0.1)))
    assert math.isclose(float(R.reading_order_reward(R.hard_presence(c), b)[0]), -0.15, rel_tol=1e-5)
    # different columns: read the left one first, no penalty
    c, b = layout((0, (0.1, 0.5, 0.35, 0.4)), (0, (0.55, 0.1, 0.35, 0.8)))
    assert float(R.reading_order_reward(R.hard_presence(c), b)[0]) == 0.0
    with pytest.raises(ValueError, match="margin"):
        R.margin_reward(p, b, 0.7)


def test_rewards_have_finite_gradients_on_soft_layouts():
    g = torch.Generator().manual_seed(1)
    presence = torch.rand(6, 25, generator=g, dtype=torch.float64)
    presence[0, :5], presence[1] = 1.0, 0.0  # hard values and an empty layout too
    presence.requires_grad_()
    boxes = (torch.rand(6, 25, 4, generator=g, dtype=torch.float64) * 0.6).requires_grad_()
    rewards = {
        "alignment": R.alignment_reward, "alignment_soft": lambda p, b: R.alignment_reward(p, b, tau=0.01),
        "overlap": R.overlap_reward, "coverage": lambda p, b: R.coverage_reward(p, b, 0.2, 0.4),
        "margin": R.margin_reward, "reading_order": R.reading_order_reward,
    }
    for name, fn in rewards.items():
        presence.grad = boxes.grad = None
        value = fn(presence, boxes)
        assert value.shape == (6,) and torch.isfinite(value).all() and (value <= 0).all(), name
        value.sum().backward()
        assert torch.isfinite(presence.grad).all() and torch.isfinite(boxes.grad).all(), name
        assert boxes.grad.abs().sum() > 0, name
