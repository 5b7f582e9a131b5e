"""Masked discrete diffusion: reverse steps, sampling, training, ELBO, relaxed steps, checkpoints."""

from __future__ import annotations

import pytest
import torch

from workbench.generative import LogLinearSchedule, MaskedDiffusion, train_prior
from workbench.spaces import SequenceSpace

SPACE = SequenceSpace(list("ACGT"), 12)


def counting_data(n: int = 1000, seed: int = 0) -> torch.Tensor:
    """Sequences that count up mod 4 from a random start: x[i+1] = x[i] + 1 (4 distinct sequences)."""
    start = torch.randint(0, 4, (n, 1), generator=torch.Generator().manual_seed(seed))
    return (start + torch.arange(SPACE.length)) % 4


def is_counting(x: torch.Tensor) -> torch.Tensor:
    return ((x[:, 1:] - x[:, :-1]) % 4 == 1).all(dim=1)


@pytest.fixture(scope="module")
def trained() -> MaskedDiffusion:
    torch.manual_seed(0)
    model = MaskedDiffusion.for_space(SPACE, hidden=32, blocks=4, kernel=3, dilations=[1, 2, 4, 8], dropout=0.0)
    data = counting_data()
    train_prior(model, data[:900], data[900:], steps=300, batch_size=64, lr=3e-3, warmup=20,
                           ema=0.99, eval_every=300, log=None)
    return model


def test_schedule_masks_nothing_at_zero_and_almost_all_at_one():
    s = LogLinearSchedule(eps=1e-3)
    assert float(s.move_chance(torch.tensor(0.0))) == 0.0
    assert float(s.move_chance(torch.tensor(1.0))) == pytest.approx(0.999)
    t = torch.tensor([0.25, 0.5])
    assert torch.allclose(s.sigma(t), -torch.log1p(-0.999 * t))


def test_reverse_step_is_a_distribution_that_keeps_unmasked_tokens(trained):
    x = trained.all_masked(5)
    x[:, :3] = torch.tensor([0, 1, 2])
    step = trained.step(x, torch.tensor(0.6), torch.tensor(0.4))
    assert step.probs.shape == (5, 12, 5)
    assert torch.allclose(step.probs.sum(-1), torch.ones(5, 12))
    draws = step.sample(7, torch.Generator().manual_seed(0))
    assert draws.shape == (7, 5, 12)
    assert (draws[:, :, :3] == torch.tensor([0, 1, 2])).all()
    # at masked positions, the chance to stay masked is move_chance(s) / move_chance(t) = 0.4 / 0.6
    assert torch.allclose(step.probs[:, 3:, 4], torch.full((5, 9), 0.4 / 0.6), atol=1e-5)
    assert torch.isfinite(step.log_prob(draws)).all()
    last = trained.step(x, torch.tensor(0.1), torch.tensor(0.0)).sample(generator=torch.Generator().manual_seed(1))
    assert (last != trained.mask_index).all()


def test_trained_prior_samples_the_data_and_prefers_it_in_likelihood(trained):
    g = torch.Generator().manual_seed(0)
    samples = trained.sample(200, steps=100, generator=g)
    assert samples.shape == (200, 12) and samples.max() < 4
    assert is_counting(samples).float().mean() > 0.8  # random sequences count up with chance 4^-11
    again = trained.sample(200, steps=100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)
    data_ll = trained.log_likelihood(counting_data(50, seed=1), samples=16, generator=torch.Generator().manual_seed(0))
    noise = torch.randint(0, 4, (50, 12), generator=torch.Generator().manual_seed(2))
    noise_ll = trained.log_likelihood(noise, samples=16, generator=torch.Generator().manual_seed(0))
    assert data_ll.mean() > -4.0  # the truth is log(1/4) = -1.39 per sequence
    assert noise_ll.mean() < data_ll.mean() - 10.0


def test_denoised_estimate_completes_a_partial_sequence(trained):
    x = trained.all_masked(1)
    x[0, 0] = 2
    x0 = trained.denoise(x, torch.tensor(0.9))
    assert x0[0, 0] == 2 and (x0 != trained.mask_index).all()


def test_relaxed_step_carries_gradients_to_the_weights(trained):
    model = trained.clone()
    for p in model.parameters():
        p.requires_grad_(True)
    xs = model.one_hot(model.all_masked(4))
    xs, p0 = model.relaxed_step(xs, 1.0, 0.5, temperature=0.5, generator=torch.Generator().manual_seed(0))
    xs, _ = model.relaxed_step(xs, 0.5, 0.0, temperature=0.5, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(xs.sum(-1), torch.ones(4, 12), atol=1e-5)
    assert xs[..., 4].max() < 1e-6  # nothing masked after the last step
    (xs[..., 0].sum()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_checkpoint_round_trip_and_clear_errors(trained, tmp_path):
    path = tmp_path / "prior.pt"
    trained.save(path, meta={"note": "test"})
    loaded = MaskedDiffusion.load(path)
    x = counting_data(8)
    t = torch.full((8,), 0.5)
    assert torch.allclose(loaded.logits(x, t), trained.logits(x, t))
    assert loaded.meta["note"] == "test"
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a masked-diffusion checkpoint"):
        MaskedDiffusion.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"expected token rows \[n, 12\]"):
        trained.log_likelihood(torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids must be in"):
        trained.log_likelihood(torch.full((2, 12), 7))
