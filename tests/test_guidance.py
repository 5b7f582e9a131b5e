"""Reward-guided samplers on a second, tiny sequence domain (PlantedMotif) with a prior trained on the CPU.

The same SVDD, SMC, best-of-N and DRAKES code designs DNA enhancers; here it must raise the
number of planted motifs well above the prior's, at the costs it reports.
"""

from __future__ import annotations

import runpy
import sqlite3
from pathlib import Path

import pytest
import torch

import workbench as wb
from domains.benchmarks import ZDT1, PlantedMotif
from optimizers.guidance import DPS, DRAKES, SMC, SVDD, BestOfN, Pretrained
from workbench.generative import MaskedDiffusion, Partial
from workbench.serialization import unpack

STEPS, N, M = 16, 64, 8


@pytest.fixture(scope="module")
def motif() -> PlantedMotif:
    domain = PlantedMotif()
    domain.prior()  # train once (about 10-30 s on 2 cores)
    return domain


def run(domain, optimizer, tmp_path, seed=0, budget=N, name=None):
    study = wb.Study(domain, optimizer, storage=f"sqlite:///{tmp_path}/g.db", name=name, seed=seed, device="cpu")
    study.run(budget, progress=False)
    return study


def kmer_profile(sequences, k: int = 3) -> torch.Tensor:
    """Frequencies of the 4^k k-mers over a list of ACGT strings or token rows ``[n, L]`` -> ``[4^k]``."""
    x = sequences if isinstance(sequences, torch.Tensor) else PlantedMotif().space.encode(list(sequences))
    index = sum(x[:, j:x.shape[1] - k + 1 + j].long() * 4 ** j for j in range(k))
    counts = torch.bincount(index.flatten(), minlength=4 ** k).float()
    return counts / counts.sum()


def mean_count(study) -> float:
    return float(study.results()["motif_count"].mean())


def test_samplers_raise_the_reward_at_the_costs_they_report(motif, tmp_path):
    pretrained = run(motif, Pretrained(steps=STEPS, batch_size=N), tmp_path)
    best = run(motif, BestOfN(n_samples=M + 1, steps=STEPS, batch_size=N), tmp_path)
    svdd = run(motif, SVDD(n_candidates=M, steps=STEPS, batch_size=N), tmp_path)
    smc = run(motif, SMC(alpha=0.1, steps=STEPS, batch_size=N), tmp_path)
    base, bon, pm, sm = (mean_count(s) for s in (pretrained, best, svdd, smc))
    assert base < 0.5  # the data plant one motif in 30% of sequences
    assert pm > bon + 0.5 and pm > 1.0
    assert bon > base and sm > base + 0.5
    # costs: SVDD-PM = one step call (N rows) + one x0_hat call (M x N rows) per step, except the last
    c = svdd.counters()
    assert c["denoiser_sequences"] == STEPS * N + (STEPS - 1) * M * N
    assert c["reward_sequences"] == STEPS * M * N and c["reward_calls"] == STEPS
    assert c["denoiser_calls"] == 2 * STEPS - 1
    assert best.counters()["denoiser_sequences"] == (M + 1) * N * STEPS  # about SVDD's, by construction
    assert best.counters()["reward_sequences"] == (M + 1) * N
    assert pretrained.counters()["denoiser_sequences"] == STEPS * N and pretrained.counters()["reward_calls"] == 0
    frame = svdd.results()
    assert frame["sequence"].str.fullmatch("[ACGT]{32}").all()


def test_same_seed_same_designs_other_seed_other_designs(motif, tmp_path):
    a = run(motif, SVDD(n_candidates=4, alpha=0.5, steps=STEPS, batch_size=16), tmp_path, budget=16, name="a")
    b = run(motif, SVDD(n_candidates=4, alpha=0.5, steps=STEPS, batch_size=16), tmp_path, budget=16, name="b")
    c = run(motif, SVDD(n_candidates=4, alpha=0.5, steps=STEPS, batch_size=16), tmp_path, seed=1, budget=16, name="c")
    assert a.results()["sequence"].tolist() == b.results()["sequence"].tolist()
    assert a.results()["sequence"].tolist() != c.results()["sequence"].tolist()


def test_svdd_mc_trains_its_value_network_once_and_resumes_it(motif, tmp_path):
    opt = SVDD(n_candidates=M, value="mc", rollouts=256, value_epochs=4, steps=STEPS, batch_size=32)
    study = run(motif, opt, tmp_path, budget=32, name="mc")
    base = run(motif, Pretrained(steps=STEPS, batch_size=32), tmp_path, budget=32, name="base")
    assert mean_count(study) > 2 * mean_count(base) + 0.1
    assert opt.value_history[-1] < opt.value_history[0]  # the regression learned something
    trained_calls = study.counters()["denoiser_sequences"]
    resumed_opt = SVDD(n_candidates=M, value="mc", rollouts=256, value_epochs=4, steps=STEPS, batch_size=32)
    resumed = run(motif, resumed_opt, tmp_path, budget=64, name="mc")
    assert resumed_opt.value_net is not None
    # the second batch cost only sampling: no second round of rollouts
    assert resumed.counters()["denoiser_sequences"] - trained_calls == STEPS * 32
    assert resumed.n_evaluations == 64


def test_drakes_fine_tunes_toward_the_reward_and_the_kl_keeps_it_near_the_prior(motif, tmp_path):
    common = {"iterations": 25, "train_batch": 16, "truncate": 6, "steps": STEPS, "lr": 1e-3, "temperature": 0.5,
              "batch_size": N}
    free = DRAKES(kl_weight=0.0, **common)
    free_study = run(motif, free, tmp_path, name="free")
    run(motif, DRAKES(kl_weight=1.0, **common), tmp_path, name="tied")
    assert free.history[-1]["reward"] > free.history[0]["reward"] + 0.3
    assert mean_count(free_study) > 0.8
    tied = wb.Study.load(f"sqlite:///{tmp_path}/g.db", "tied").frame()["sequence"]
    data = kmer_profile(motif.dataset()["sequence"])
    # the KL penalty keeps the sequences' 3-mer make-up close to the data's; without it, motif repeats take over
    free = kmer_profile(free_study.results()["sequence"])
    assert (kmer_profile(tied) - data).abs().sum() < 0.5 * (free - data).abs().sum()
    c = free_study.counters()
    assert c["reward_sequences"] == 25 * 16 and c["reward_calls"] == 25
    assert c["denoiser_sequences"] >= 25 * 16 * STEPS + N * STEPS
    # scripts/slim_db.py drops the fine-tuned weights from the snapshots and keeps every design and counter
    slim = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "slim_db.py"))["slim"]
    assert slim(tmp_path / "g.db", tmp_path / "slim.db", ("tuned",)) == 2
    slimmed = wb.Study.load(f"sqlite:///{tmp_path}/slim.db", "free")
    assert slimmed.frame()["sequence"].equals(free_study.results()["sequence"])
    assert slimmed.counters() == c
    with sqlite3.connect(tmp_path / "slim.db") as db:
        assert all("tuned" not in unpack(blob) for (blob,) in db.execute("SELECT state FROM snapshots"))


def test_drakes_straight_through_scores_the_hard_designs(motif, tmp_path):
    opt = DRAKES(kl_weight=0.0, iterations=6, train_batch=16, truncate=6, steps=STEPS, lr=1e-3, temperature=0.5,
                 batch_size=16, straight_through=True)
    run(motif, opt, tmp_path, budget=16, name="st")
    # the motif count of a hard design is a whole number, so the batch's mean reward is a multiple of 1/16;
    # relaxed (fractional) designs give other values
    assert all(abs(16 * h["reward"] - round(16 * h["reward"])) < 1e-3 for h in opt.history)
    assert not all(abs(16 * h["reward"] - round(16 * h["reward"])) < 1e-3
                   for h in run(motif, DRAKES(kl_weight=0.0, iterations=6, train_batch=16, truncate=6, steps=STEPS,
                                              lr=1e-3, temperature=0.5, batch_size=16), tmp_path, budget=16,
                                name="soft").optimizer.history)


def test_drakes_straight_through_trains_on_hard_trajectories(motif, tmp_path, monkeypatch):
    """With straight_through, every relaxed state the denoiser reads while tuning is one-hot in value (each draw is the
    Gumbel-softmax argmax, an exact categorical draw), as in sampling; without it the states are soft."""
    peaks = []
    x0_probs = MaskedDiffusion.x0_probs

    def recording(self, x, *args, **kwargs):
        if x.is_floating_point() and torch.is_grad_enabled():
            peaks.append(float(x.detach().max(-1).values.min()))
        return x0_probs(self, x, *args, **kwargs)

    monkeypatch.setattr(MaskedDiffusion, "x0_probs", recording)
    settings = dict(kl_weight=1e-2, iterations=2, train_batch=8, truncate=6, steps=STEPS, lr=1e-3, temperature=0.5,
                    batch_size=8)
    run(motif, DRAKES(straight_through=True, **settings), tmp_path, budget=8, name="hard")
    assert peaks and min(peaks) > 1 - 1e-5
    peaks.clear()
    run(motif, DRAKES(**settings), tmp_path, budget=8, name="soft")
    assert min(peaks) < 0.99


def test_drakes_with_exact_swap_gains_fine_tunes_toward_the_reward(motif, tmp_path):
    settings = dict(kl_weight=0.0, iterations=25, train_batch=16, truncate=6, steps=STEPS, lr=1e-3, temperature=0.5,
                    batch_size=N, straight_through=True)
    swaps = DRAKES(estimator="swaps", **settings)
    study = run(motif, swaps, tmp_path, name="swaps")
    assert swaps.history[-1]["reward"] > swaps.history[0]["reward"] + 0.3
    assert mean_count(study) > 0.8
    # one reward call scores the batch, then each trajectory's 32 positions x 3 other tokens, in chunks of 4096
    c = study.counters()
    assert c["reward_sequences"] == 25 * 16 * (1 + 32 * 3)


def test_drakes_skips_a_non_finite_gradient_instead_of_applying_it(motif, tmp_path, monkeypatch):
    soft = motif.evaluate_soft
    calls = []

    def nan_every_other_call(probs):  # a reward whose value, and gradient, is NaN on every other call
        calls.append(1)
        return {k: v * float("nan") if len(calls) % 2 else v for k, v in soft(probs).items()}

    monkeypatch.setattr(motif, "evaluate_soft", nan_every_other_call)
    drakes = DRAKES(iterations=6, train_batch=8, truncate=4, steps=STEPS, lr=1e-3, kl_weight=0.0, batch_size=16)
    study = run(motif, drakes, tmp_path, budget=16, name="nan")
    assert [h["skipped"] for h in drakes.history] == [1.0, 0.0] * 3
    assert all(torch.isfinite(p).all() for p in drakes.tuned.parameters())
    assert study.results()["motif_count"].notna().all()


def test_drakes_naturalness_budget_holds_where_free_fine_tuning_breaks_it(motif, tmp_path):
    data = kmer_profile(motif.dataset()["sequence"])

    def kmer_naturalness(x: torch.Tensor) -> float:
        """Minus the L1 distance of the designs' 3-mer profile to the data's (higher = more natural)."""
        return -float((kmer_profile(x.cpu()) - data).abs().sum())

    common = {"iterations": 20, "train_batch": 16, "truncate": 6, "steps": STEPS, "lr": 1e-3, "temperature": 0.5,
              "batch_size": N, "check_every": 5, "check_batch": 64}
    base = -kmer_naturalness(motif.space.encode(run(motif, Pretrained(steps=STEPS, batch_size=N), tmp_path,
                                                    name="base").results()["sequence"].tolist()))
    free_study = run(motif, DRAKES(kl_weight=0.0, **common), tmp_path, name="free")
    guarded_opt = DRAKES(kl_weight=1e-2, budget=1.0, naturalness=kmer_naturalness, **common)
    guarded_study = run(motif, guarded_opt, tmp_path, name="guarded")
    free, guarded = (-kmer_naturalness(motif.space.encode(s.results()["sequence"].tolist()))
                     for s in (free_study, guarded_study))
    assert free > 3 * base  # unguarded, motif repeats take over the 3-mer make-up
    assert guarded < 2.5 * base  # budget: at most twice the pretrained distance on the check batch (plus noise)
    checks = guarded_opt.checks
    assert [c["iteration"] for c in checks] == [5, 10, 15, 20]
    assert any(not c["within"] for c in checks) and guarded_opt.kl_now > 1e-2  # a broken check raised the KL
    # the raised weight is state, not a setting: the finished study opens again from a fresh, equal optimizer
    reopened_opt = DRAKES(kl_weight=1e-2, budget=1.0, naturalness=kmer_naturalness, **common)
    reopened = run(motif, reopened_opt, tmp_path, name="guarded")
    assert reopened_opt.kl_weight == 1e-2 and reopened_opt.kl_now == guarded_opt.kl_now
    assert reopened.results()["sequence"].tolist() == guarded_study.results()["sequence"].tolist()
    assert mean_count(guarded_study) > mean_count(run(motif, Pretrained(steps=STEPS, batch_size=N), tmp_path,
                                                      name="base")) + 0.1  # and some reward gain is kept


def test_drakes_budget_confidence_widens_the_check_by_the_standard_errors(motif, tmp_path):
    """With ``confidence``, a check passes only if the drop's upper bound (drop + z * the two means' standard
    errors, relative to the baseline) is within the budget; set-level measures have no standard error."""
    common = {"iterations": 4, "train_batch": 8, "truncate": 4, "steps": STEPS, "lr": 1e-3, "batch_size": 16,
              "check_every": 2, "check_batch": 32, "budget": 0.03}
    guarded = DRAKES(kl_weight=1e-3, confidence=0.95, **common)  # the default: the prior's ELBO of each design
    run(motif, guarded, tmp_path, budget=16, name="conf")
    assert [c["iteration"] for c in guarded.checks] == [2, 4]
    for c in guarded.checks:
        (drop,), (bound,) = c["drop"], c["drop_bound"]
        assert bound > drop + 0.01  # 32 designs: the ELBO's spread gives a margin of several per cent
        assert c["within"] == (bound <= 0.03)
    gc_content = lambda x: (x.cpu() >= 2).double().mean(-1, keepdim=True) + 1.0  # noqa: E731  [designs, 1]
    per_design = DRAKES(kl_weight=1e-3, confidence=0.95, naturalness=gc_content, **common)
    set_level = DRAKES(kl_weight=1e-3, confidence=0.95, naturalness=lambda x: gc_content(x).mean(0), **common)
    run(motif, per_design, tmp_path, budget=16, name="design")
    run(motif, set_level, tmp_path, budget=16, name="set")
    assert all(c["drop_bound"][0] > c["drop"][0] for c in per_design.checks)
    assert all(c["drop_bound"] == c["drop"] for c in set_level.checks)
    with pytest.raises(ValueError, match="confidence"):
        DRAKES(budget=0.03, confidence=1.5)


def test_weight_vectors_trade_objectives(tmp_path):
    domain = PlantedMotif(objectives=("motif_count", "gc"))
    motif_first = run(domain, SVDD(n_candidates=M, steps=STEPS, batch_size=32, weights=[1.0, 0.0]), tmp_path,
                      budget=32, name="w10")
    gc_first = run(domain, SVDD(n_candidates=M, steps=STEPS, batch_size=32, weights=[0.0, 1.0],
                                scalarization="chebyshev"), tmp_path, budget=32, name="w01")
    a, b = motif_first.results(), gc_first.results()
    assert a["motif_count"].mean() > b["motif_count"].mean() + 0.5
    assert b["gc"].mean() > a["gc"].mean() + 0.2


def test_clear_errors(motif, tmp_path):
    with pytest.raises(ValueError, match="needs a generative prior"):
        run(ZDT1(), SVDD(), tmp_path, name="zdt")
    longer = wb.Domain.from_function(wb.SequenceSpace(list("ACGT"), 40), lambda x: x.float().sum(1), ["s"])
    longer.prior = motif.prior
    with pytest.raises(ValueError, match="generates length 32 over 4 tokens; the space has length 40"):
        run(longer, SVDD(steps=STEPS), tmp_path, name="longer")
    with pytest.raises(ValueError, match="got 2 weights for 1 objectives"):
        run(motif, SVDD(weights=[1, 1], steps=STEPS), tmp_path, name="w")
    with pytest.raises(ValueError, match="value must be one of"):
        SVDD(value="rollout")
    no_soft = wb.Domain.from_function(motif.space, lambda x: x.float().sum(1), ["s"])
    no_soft.prior = motif.prior
    with pytest.raises(ValueError, match="evaluate_soft"):
        run(no_soft, DRAKES(iterations=1, steps=STEPS, truncate=2), tmp_path, name="nosoft")
    with pytest.raises(ValueError, match="needs straight_through=True"):
        DRAKES(estimator="swaps")
    with pytest.raises(ValueError, match="estimator must be 'relaxed' or 'swaps'"):
        DRAKES(estimator="exact", straight_through=True)


def test_the_same_samplers_design_dna_enhancers_with_the_tiny_prior(tmp_path):
    from domains.dna import DNAEnhancer

    domain = DNAEnhancer(objectives=("hepg2",), oracle="reward", prior="tiny")
    base = run(domain, Pretrained(steps=8, batch_size=16), tmp_path, budget=16, name="dna-base")
    svdd = run(domain, SVDD(n_candidates=4, steps=8, batch_size=16), tmp_path, budget=16, name="dna-svdd")
    designs = svdd.results()
    assert designs["sequence"].str.fullmatch("[ACGT]{200}").all()
    assert designs["hepg2"].median() > base.results()["hepg2"].median() + 1.0
    held_out = DNAEnhancer(objectives=("hepg2",), oracle="heldout")
    logits = held_out.logits(held_out.encode(designs["sequence"].tolist()))
    assert float(logits[:, 3].median()) > base.results()["hepg2"].median()  # the gain holds on the other oracle


def test_dps_tilts_the_masked_prior_towards_the_reward_through_evaluate_soft(motif, tmp_path):
    base = run(motif, Pretrained(steps=STEPS, batch_size=N), tmp_path, name="dps-base")
    dps = run(motif, DPS(scale=2.0, steps=STEPS, batch_size=N), tmp_path, name="dps")
    assert mean_count(dps) > mean_count(base) + 0.5
    assert dps.counters()["reward_calls"] == STEPS  # one gradient of the soft reward per step
    no_soft = wb.Domain.from_function(motif.space, lambda x: x.float().sum(1), ["s"])
    no_soft.prior = motif.prior
    with pytest.raises(ValueError, match="DPS needs a differentiable reward"):
        run(no_soft, DPS(steps=STEPS), tmp_path, name="dps-nosoft")


def test_a_partial_sequence_keeps_its_fixed_tokens_under_every_sampler(motif, tmp_path):
    values = torch.zeros(32, dtype=torch.long)
    values[:6] = torch.tensor([2, 2, 2, 1, 1, 1])  # GGGCCC at the start
    fixed = Partial(values, torch.arange(32) < 6)
    for label, optimizer in {"p-pre": Pretrained(steps=STEPS, batch_size=16, partial=fixed),
                             "p-svdd": SVDD(n_candidates=4, steps=STEPS, batch_size=16, partial=fixed),
                             "p-smc": SMC(steps=STEPS, batch_size=16, partial=fixed),
                             "p-bon": BestOfN(n_samples=3, steps=STEPS, batch_size=16, partial=fixed)}.items():
        sequences = run(motif, optimizer, tmp_path, name=label, budget=16).results()["sequence"]
        assert sequences.str.startswith("GGGCCC").all(), label
    with pytest.raises(ValueError, match="fixed values are not valid designs .* not in the alphabet"):
        run(motif, Pretrained(steps=STEPS, partial=Partial(torch.full((32,), 7), torch.ones(32, dtype=torch.bool))),
            tmp_path, name="p-bad")
