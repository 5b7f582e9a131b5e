"""Page layouts: the domain, the tiny prior and corrector, conditional tasks, refinement and the study."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from domains.layouts import metrics
from domains.layouts.data import load_split
from domains.layouts.domain import PageLayouts
from domains.layouts.prior import load_corrector, load_prior
from domains.layouts.tokens import PAD
from optimizers.guidance import SVDD, Pretrained
from workbench.generative import Correction, Partial, train_corrector


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dom() -> PageLayouts:
    return PageLayouts(objectives=("alignment", "overlap"), prior="tiny")


@pytest.fixture(scope="module")
def test_pages() -> tuple[torch.Tensor, torch.Tensor]:
    classes, boxes = load_split("test")
    return classes[:16], boxes[:16]


def test_real_pages_score_like_the_metrics_and_soft_scores_match(dom, test_pages):
    x = dom.encode(*test_pages)
    assert dom.space.invalid_rows(x) == {}
    values = dom.evaluate(x)
    classes, boxes = dom.decode_tensors(x)
    assert torch.allclose(values["alignment"], metrics.alignment(classes, boxes).double(), atol=1e-6)
    assert torch.allclose(values["overlap"], metrics.overlap(classes, boxes).double(), atol=1e-6)
    soft = dom.evaluate_soft(torch.nn.functional.one_hot(x, dom.tokenizer.vocab_size).float())
    assert torch.allclose(soft["overlap"].double(), values["overlap"], atol=1e-5)
    assert torch.allclose(soft["alignment"].double(), values["alignment"], atol=1e-5)


def test_invalid_layouts_are_named(dom, test_pages):
    x = dom.encode(*test_pages)[:3].clone()
    x[0, 1] = 0                      # a class token where x belongs
    x[1, 2] = PAD                    # a real element with a PAD coordinate: broken, left out
    x[2, :] = PAD                    # an empty page
    x[2, 1] = 10                     # ... with one stray coordinate
    bad = dom.space.invalid_rows(x)
    assert "is not a x token" in bad[0]
    assert 1 not in bad and dom.space.broken_elements(x).tolist() == [0, 1, 1]
    assert bad[2] == "the layout has no element"
    assert len(dom.decode(x[1:2])[0]) == int((test_pages[0][1] >= 0).sum()) - 1
    with pytest.raises(ValueError, match="unknown objectives"):
        PageLayouts(objectives=("beauty",), prior="tiny")
    with pytest.raises(ValueError, match="unknown task"):
        dom.partial("poster", *test_pages)


def test_prior_samples_valid_pages_and_keeps_the_given_classes(dom, test_pages):
    prior = load_prior("tiny")
    g = torch.Generator().manual_seed(0)
    x = prior.sample(32, steps=20, generator=g)
    assert dom.space.invalid_rows(x) == {}
    assert float(dom.space.broken_elements(x).float().mean()) < 3  # the tiny prior (one CPU minute) breaks a few
    partial = dom.partial("c_to_sp", *test_pages)
    y = prior.sample(16, steps=20, generator=g, partial=partial)
    assert torch.equal(y[:, ::5], partial.values[:, ::5])              # every class token as given
    classes, _ = dom.decode_tensors(y)
    assert torch.equal((classes >= 0).sum(1), (test_pages[0] >= 0).sum(1))
    done = dom.partial("cs_to_p", *test_pages)
    assert int(done.mask[0].sum()) == 3 * int((test_pages[0][0] >= 0).sum()) + 5 * int((test_pages[0][0] < 0).sum())


def test_corrector_flags_the_priors_mistakes_and_never_touches_fixed_tokens(dom, test_pages):
    prior = load_prior("tiny")
    data = dom.encode(*load_split("train"))[:512]
    corrector, losses = train_corrector(prior, data, steps=60, batch_size=32, hidden=32, layers=1, seed=0)
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10
    again, _ = train_corrector(prior, data, steps=5, batch_size=32, hidden=32, layers=1, seed=0)
    twin, _ = train_corrector(prior, data, steps=5, batch_size=32, hidden=32, layers=1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), twin.state_dict().values()))
    shipped = load_corrector("tiny")
    x = dom.encode(*test_pages)
    g = torch.Generator().manual_seed(3)
    swapped = x.clone()
    where = torch.rand(x.shape, generator=g) < 0.15
    swapped[where & (x >= 6)] = 6 + (x[where & (x >= 6)] - 6 + 16) % 128  # a coordinate moved by half the page
    score = torch.sigmoid(shipped(swapped, torch.full((16,), 0.3)))
    changed = swapped != x
    assert float(score[changed].mean()) < float(score[~changed].mean()) - 0.1
    correction = Correction(shipped, times=(0.6, 0.3), threshold=0.5)
    partial = dom.partial("c_to_sp", *test_pages)
    with prior.correcting(correction):
        y = prior.sample(16, steps=10, generator=torch.Generator().manual_seed(0), partial=partial)
    assert correction.remasked > 0 and shipped.calls >= 2
    assert torch.equal(y[partial.mask], partial.values[partial.mask])
    assert "Correction('layouts-tiny'" in repr(correction)


def test_refinement_restores_noisy_layouts_and_keeps_classes(dom, test_pages):
    prior = load_prior("tiny")
    classes, boxes = test_pages
    noisy = (boxes + 0.05 * torch.randn(boxes.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    noisy = noisy * (classes >= 0).unsqueeze(-1)
    partial = dom.partial("c_to_sp", classes, noisy)
    start = dom.encode(classes, noisy)
    y = prior.refine(start, start=0.5, steps=10, generator=torch.Generator().manual_seed(0), partial=partial)
    assert torch.equal(y[:, ::5], start[:, ::5])
    kept = (y == start).float().mean()
    assert 0.4 < float(kept) < 0.95  # about half the free tokens re-drawn, the rest kept
    with pytest.raises(ValueError, match="start must be a time"):
        prior.refine(start, start=0.0)


def test_partial_with_row_masks_checks_shapes():
    values = torch.zeros(3, 5, dtype=torch.long)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[1, 2] = True
    p = Partial(values, mask, row_masks=True)
    assert p.per_row
    v, m = p.rows(6, "cpu")
    assert m.shape == (6, 5) and bool(m[4, 2]) and not bool(m[0, 2])
    with pytest.raises(ValueError, match="row_masks"):
        Partial(values, mask[0], row_masks=True)


def test_samplers_take_a_corrector_through_a_study(dom, tmp_path):
    correction = Correction(load_corrector("tiny"), times=(0.5,), threshold=0.5)
    storage = f"sqlite:///{tmp_path}/layouts.db"
    study = wb.Study(dom, SVDD(n_candidates=2, steps=6, batch_size=8, corrector=correction), storage=storage, seed=0)
    study.run(8)
    frame = study.results()
    assert len(frame) == 8 and frame["alignment"].notna().all()
    counters = study.counters()
    assert counters["corrector_calls"] >= 1 and counters["denoiser_calls"] >= 6
    with pytest.raises(TypeError, match="Correction"):
        Pretrained(steps=4, corrector=load_corrector("tiny"))
