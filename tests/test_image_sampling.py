"""The shipped MNIST diffusion prior (tiny, 14 px) under the shared samplers: class conditions, inpainting,
a reward-guided gain, naturalness, and failures that mark rows instead of stopping the study."""

from __future__ import annotations

import pytest
import torch

import workbench as wb
from domains.images import MNISTDigits, image_space, jpeg_bytes, load_classifier, load_mnist
from domains.images.prior import load_prior
from optimizers.guidance import SVDD, Pretrained
from workbench.generative import Partial

STEPS = 15


@pytest.fixture(scope="module")
def prior():
    return load_prior("tiny")


def run(domain, optimizer, tmp_path, name, budget=16):
    study = wb.Study(domain, optimizer, storage=f"sqlite:///{tmp_path}/i.db", name=name, device="cpu")
    return study.run(budget, progress=False)


def test_the_prior_draws_the_digit_it_is_asked_for_and_rates_real_digits_natural(prior):
    labels = torch.arange(10).repeat(4)
    x = prior.sample(40, 25, torch.Generator().manual_seed(0), condition=labels)
    assert x.shape == (40, 1, 14, 14) and not image_space(14).invalid_rows(x)  # 8-bit images in [0, 1]
    heldout = load_classifier("heldout", 14)
    assert float((heldout(x).argmax(1) == labels).float().mean()) > 0.8
    real = load_mnist("test", 14)[0][:64]
    g = torch.Generator().manual_seed(0)
    assert prior.bits_per_dim(real, 4, g).mean() < prior.bits_per_dim(torch.rand(64, 1, 14, 14), 4, g).mean() - 2.0


def test_svdd_makes_digits_more_compressible_than_the_prior(tmp_path):
    domain = MNISTDigits(objectives=("compressibility",), resolution=14, prior="tiny")
    base = run(domain, Pretrained(steps=STEPS, batch_size=16), tmp_path, "base")
    svdd = run(domain, SVDD(n_candidates=4, steps=STEPS, batch_size=16, weights=[0.01]), tmp_path, "svdd")
    assert svdd.results()["compressibility"].median() > base.results()["compressibility"].median() + 30  # bytes
    assert svdd.counters()["reward_sequences"] == STEPS * 4 * 16


def test_inpainting_keeps_the_given_pixels_exactly(tmp_path):
    domain = MNISTDigits(objectives=("digit",), target=3, resolution=14, prior="tiny")
    digit = load_mnist("test", 14)[0][0]  # [1, 14, 14]
    left = torch.zeros(1, 14, 14, dtype=torch.bool)
    left[..., :7] = True
    fixed = Partial(digit, left, resample=2)
    study = run(domain, SVDD(n_candidates=2, steps=STEPS, batch_size=8, partial=fixed), tmp_path, "inpaint", budget=8)
    x = study._results().designs()
    assert torch.equal(x[:, left], digit[left].expand(8, -1))
    assert (x[:, ~left] != digit[~left]).any()  # the right half is generated


def test_a_failing_reward_marks_rows_failed_and_the_study_goes_on(prior, tmp_path):
    space = image_space(14)

    def ink_or_nan(x):  # NaN for the inkier images
        ink = x.mean(dim=(1, 2, 3)).double()
        return torch.where(ink > ink.median(), float("nan"), ink)

    nan_domain = wb.Domain.from_function(space, ink_or_nan, [("ink", "minimize")])
    nan_domain.prior = lambda: prior
    frame = run(nan_domain, SVDD(n_candidates=2, steps=5, batch_size=8), tmp_path, "nan").results()
    assert len(frame) == 16 and frame["status"].eq("failed").any() and frame["status"].eq("ok").any()
    assert frame.loc[frame.status == "failed", "error"].str.contains("objective 'ink' is nan").all()

    wrong = wb.Domain.from_function(space, lambda x: torch.zeros(len(x), 3), [("ink", "minimize")])
    wrong.prior = lambda: prior
    frame = run(wrong, Pretrained(steps=5, batch_size=8), tmp_path, "wrong").results()
    assert len(frame) == 16 and frame["status"].eq("failed").all()
    assert frame["error"].str.contains(r"objectives and constraints of shape \[1, 3\]; expected \[1, 1\]").all()
    assert jpeg_bytes(wb.Study.load(f"sqlite:///{tmp_path}/i.db", "wrong").designs()).min() > 300  # images stored


def test_the_image_study_runs_end_to_end_in_its_cpu_setting(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    import pandas as pd

    root = Path(__file__).parents[1]
    command = [sys.executable, str(root / "studies" / "image_rewards.py"), "--scale", "cpu", "--seeds", "1",
               "--methods", "pretrained,best_of_n,svdd_pm,dps,drakes", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = pd.read_csv(tmp_path / "cpu" / "studies.csv")
    assert len(rows) == 10 and rows["fid"].notna().all()
    by = rows.set_index("method")
    size = by["jpeg_bytes_median"]
    assert size["compressibility/svdd_pm"] < size["compressibility/pretrained"]
    assert by.loc["digit/svdd_pm", "accuracy"] > by.loc["digit/pretrained", "accuracy"]
    assert (tmp_path / "cpu" / "grid.png").stat().st_size > 10_000
    assert "| svdd_pm |" in (tmp_path / "cpu" / "table_digit.md").read_text()
