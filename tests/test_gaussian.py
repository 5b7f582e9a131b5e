"""Gaussian diffusion and the shared samplers on a 2-D Gaussian mixture with an MLP prior trained on the CPU.

The same sampler classes that design DNA (masked prior) must run here unchanged: SVDD has to move the
samples' mass to the high-reward mode while staying on the data.
"""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from domains.benchmarks import GaussianMixture2D
from optimizers.guidance import DPS, DRAKES, SMC, SVDD, BestOfN, Pretrained
from workbench.generative import CosineSchedule, GaussianDiffusion, Partial

STEPS, N, M = 30, 200, 8


@pytest.fixture(scope="module")
def mixture() -> GaussianMixture2D:
    domain = GaussianMixture2D()
    domain.prior()  # train once (about 10 s on 2 cores)
    return domain


def run(domain, optimizer, tmp_path, name, seed=0, budget=N):
    study = wb.Study(domain, optimizer, storage=f"sqlite:///{tmp_path}/m.db", name=name, seed=seed, device="cpu")
    study.run(budget, progress=False)
    return study


def mode_share(domain: GaussianMixture2D, x: torch.Tensor) -> tuple[float, float]:
    """(share of points closest to the target mode, share within 3 std of some mode centre)."""
    near = torch.cdist(x.float(), domain.centres()).min(1).values < 3 * domain.std
    return float((domain.nearest_mode(x) == domain.target_mode).float().mean()), float(near.float().mean())


def test_cosine_schedule_is_variance_preserving_and_spans_its_log_snr_range():
    s = CosineSchedule(-15.0, 15.0)
    t = torch.linspace(0, 1, 11)
    alpha, sigma = s.alpha_sigma(t)
    assert torch.allclose(alpha ** 2 + sigma ** 2, torch.ones(11), atol=1e-6)
    assert float(s.logsnr(torch.tensor(0.0))) == pytest.approx(15.0, abs=1e-3)
    assert float(s.logsnr(torch.tensor(1.0))) == pytest.approx(-15.0, abs=1e-3)
    assert (s.logsnr(t[1:]) < s.logsnr(t[:-1])).all()
    h = 1e-4
    numeric = (s.logsnr(t[1:-1] + h) - s.logsnr(t[1:-1] - h)) / (2 * h)
    assert torch.allclose(s.dlogsnr_dt(t[1:-1]), numeric, rtol=1e-3)
    assert s.time_of(0.0) == pytest.approx(0.5, abs=1e-6)


def test_prior_samples_the_modes_and_prefers_data_in_likelihood(mixture):
    prior = mixture.prior()
    x = prior.sample(1000, STEPS, torch.Generator().manual_seed(0))
    again = prior.sample(1000, STEPS, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    counts = torch.bincount(mixture.nearest_mode(x), minlength=8)
    assert counts.min() > 60  # every mode is sampled (1000 / 8 = 125 expected)
    assert mode_share(mixture, x)[1] > 0.7
    g = torch.Generator().manual_seed(0)
    data = prior.bits_per_dim(mixture.points()[:300], samples=8, generator=g)
    noise = prior.bits_per_dim(torch.rand(300, 2) * 9 - 4.5, samples=8, generator=g)
    assert data.mean() < noise.mean() - 3.0


def test_reverse_step_is_a_gaussian_to_sample_many_times_and_the_last_step_decodes(mixture):
    prior = mixture.prior()
    x = prior.initial(5, torch.Generator().manual_seed(0))
    step = prior.step(x, torch.tensor(0.6), torch.tensor(0.5))
    draws = step.sample(7, torch.Generator().manual_seed(1))
    assert draws.shape == (7, 5, 2) and (step.std > 0).all()
    assert torch.isfinite(step.log_prob(draws)).all() and step.log_prob(draws).shape == (7, 5)
    last = prior.step(x, torch.tensor(0.05), torch.tensor(0.0))
    assert (last.std == 0).all()  # the step to t = 0 returns x0_hat itself
    x0 = prior.denoise(x, torch.tensor(0.05))
    assert torch.allclose(prior.to_design(last.mean), x0)


def test_step_kl_is_zero_against_itself_and_grows_with_the_weights(mixture):
    prior = mixture.prior()
    tuned = prior.clone()
    x = prior.initial(16, torch.Generator().manual_seed(0))
    t, s = torch.tensor(0.5), torch.tensor(0.45)
    assert torch.allclose(tuned.step_kl(tuned.estimate(x, t), prior, x, t, s), torch.zeros(16), atol=1e-6)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    assert (tuned.step_kl(tuned.estimate(x, t), prior, x, t, s) > 0).all()
    assert (tuned.step_kl(tuned.estimate(x, t), prior, x, torch.tensor(0.05), torch.tensor(0.0)) == 0).all()


def test_infilling_keeps_the_fixed_coordinate_and_fills_the_other_from_the_data(mixture):
    prior = mixture.prior()

    def centred_share(resample: int) -> float:
        fixed = Partial(torch.tensor([3.0, 0.0]), torch.tensor([True, False]), resample=resample)
        x = prior.sample(300, STEPS, torch.Generator().manual_seed(0), partial=fixed)
        assert (x[:, 0] == 3.0).all()
        return float((x[:, 1].abs() < 1.0).float().mean())

    # only mode 0 (at (3, 0)) has points with x = 3, so the filled-in y should be near 0; unconditional
    # samples have |y| < 1 about a quarter of the time. Plain replacement conditions weakly; RePaint's
    # resampling makes the free coordinate agree with the fixed one.
    plain, repainted = centred_share(1), centred_share(10)
    assert plain > 0.3 and repainted > 0.65 and repainted > plain + 0.2


def test_checkpoint_round_trip_and_clear_errors(mixture, tmp_path):
    prior = mixture.prior()
    path = tmp_path / "prior.pt"
    prior.save(path, meta={"note": "test"})
    loaded = GaussianDiffusion.load(path)
    x = torch.randn(8, 2)
    assert torch.equal(loaded.predict(x, 0.3)[0], prior.predict(x, 0.3)[0])
    assert loaded.meta["note"] == "test"
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a Gaussian-diffusion checkpoint"):
        GaussianDiffusion.load(tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"expected designs \[n, 2\]"):
        prior.log_likelihood(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="NaN"):
        prior.log_likelihood(torch.full((2, 2), float("nan")))
    with pytest.raises(ValueError, match="unconditional"):
        prior.sample(2, 3, condition=torch.tensor([0, 1]))


def test_the_shared_samplers_move_the_mass_to_the_high_reward_mode(mixture, tmp_path):
    base = run(mixture, Pretrained(steps=STEPS, batch_size=N), tmp_path, "base")
    best = run(mixture, BestOfN(n_samples=M + 1, steps=STEPS, batch_size=N), tmp_path, "best")
    svdd = run(mixture, SVDD(n_candidates=M, steps=STEPS, batch_size=N), tmp_path, "svdd")
    smc = run(mixture, SMC(alpha=0.3, steps=STEPS, batch_size=N), tmp_path, "smc")
    dps = run(mixture, DPS(scale=0.3, steps=STEPS, batch_size=N), tmp_path, "dps")
    share = {k: mode_share(mixture, s._results().designs()) for k, s in
             {"base": base, "best": best, "svdd": svdd, "smc": smc, "dps": dps}.items()}
    assert share["base"][0] < 0.25  # 1 / 8 of the prior's mass
    assert share["svdd"][0] > 0.9 and share["svdd"][1] > 0.9  # on the target mode, and on the data
    assert share["svdd"][0] > share["best"][0] + 0.15 > share["base"][0] + 0.3
    assert share["smc"][0] > 0.8 and share["dps"][0] > 0.5
    # the cost accounting is the one of the discrete prior: M x n candidates scored per step
    c = svdd.counters()
    assert c["denoiser_sequences"] == STEPS * N + (STEPS - 1) * M * N
    assert c["reward_sequences"] == STEPS * M * N and c["reward_calls"] == STEPS
    assert dps.counters()["reward_calls"] == STEPS  # one gradient call per step
    assert base.counters()["reward_calls"] == 0


def test_drakes_fine_tunes_a_gaussian_prior_and_resumes_without_tuning_again(mixture, tmp_path):
    common = {"iterations": 30, "train_batch": 64, "truncate": 10, "steps": STEPS, "lr": 1e-3, "batch_size": 100}
    free = DRAKES(kl_weight=0.0, **common)
    study = run(mixture, free, tmp_path, "drakes", budget=100)
    assert free.history[-1]["reward"] > free.history[0]["reward"] + 1.0
    assert mode_share(mixture, study._results().designs())[0] > 0.8
    tied = DRAKES(kl_weight=1.0, **common)
    run(mixture, tied, tmp_path, "tied", budget=100)
    assert tied.history[-1]["kl"] > 0 and tied.history[-1]["reward"] < free.history[-1]["reward"]
    resumed_opt = DRAKES(kl_weight=0.0, **common)
    resumed = run(mixture, resumed_opt, tmp_path, "drakes", budget=200)
    assert resumed.counters()["reward_calls"] == study.counters()["reward_calls"]  # no second fine-tuning
    assert mode_share(mixture, resumed._results().designs()[100:])[0] > 0.8


def test_same_seed_same_designs_and_resume_is_bit_identical(mixture, tmp_path):
    whole = run(mixture, SVDD(n_candidates=4, alpha=0.5, steps=10, batch_size=20), tmp_path, "whole", budget=40)
    half = run(mixture, SVDD(n_candidates=4, alpha=0.5, steps=10, batch_size=20), tmp_path, "half", budget=20)
    half = run(mixture, SVDD(n_candidates=4, alpha=0.5, steps=10, batch_size=20), tmp_path, "half", budget=40)
    other = run(mixture, SVDD(n_candidates=4, alpha=0.5, steps=10, batch_size=20), tmp_path, "other", seed=1, budget=40)
    assert torch.equal(whole._results().designs(), half._results().designs())
    assert not torch.equal(whole._results().designs(), other._results().designs())


def test_clear_errors_for_samplers_on_gaussian_priors(mixture, tmp_path):
    with pytest.raises(ValueError, match="must have values"):
        run(mixture, SVDD(steps=5, partial=Partial(torch.zeros(3), torch.ones(3, dtype=torch.bool))), tmp_path, "p")
    with pytest.raises(ValueError, match="fixed values are not valid designs"):
        run(mixture, Pretrained(steps=5, partial=Partial(torch.tensor([9.0, 0.0]), torch.tensor([True, False]))),
            tmp_path, "q")
    with pytest.raises(ValueError, match="unconditional"):
        run(mixture, Pretrained(steps=5, condition=1), tmp_path, "c")
    wider = wb.Domain.from_function(wb.TensorSpace((2,), -5.0, 5.0), lambda x: x[:, 0], ["x"])
    wider.prior = mixture.prior
    with pytest.raises(ValueError, match=r"values in \[-4.5, 4.5\]"):
        run(wider, Pretrained(steps=5), tmp_path, "w")
