"""The page-layout study (studies/page_layouts.py) end to end in its CPU setting: every task with and without the
corrector, every reward-guided method, the front and the drawings, with finite metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("layouts")
    command = [sys.executable, str(ROOT / "studies" / "page_layouts.py"), "--scale", "cpu", "--out", str(folder)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return folder / "cpu"


def test_generation_table_has_every_task_with_and_without_the_corrector(out):
    table = pd.read_csv(out / "generation.csv")
    expected = {(t, s) for t in ("unconditional", "c_to_sp", "cs_to_p", "completion", "refinement")
                for s in ("prior", "corrector")}
    assert set(zip(table.task, table.sampler)) == expected
    numbers = table[["fid", "alignment", "overlap", "max_iou", "validity"]].to_numpy()
    assert np.isfinite(numbers).all() and (table.fid > 0).all()
    assert ((table.max_iou >= 0) & (table.max_iou <= 1)).all()
    corrected = table[(table.sampler == "corrector") & (table.task != "refinement")]
    assert (corrected.corrector_calls > 0).all() and (corrected.remasked_per_layout > 0).all()
    # with classes given, every generated page has the conditioning page's number of elements
    assert (table[table.task == "c_to_sp"].elements > 0).all()


def test_reward_methods_front_and_figures(out):
    rewards = pd.read_csv(out / "rewards.csv")
    # the plain samples once per seed, every other method on each of the two rewards
    guided = {(r, m) for r in ("layout", "overlap") for m in ("best_of_n", "smc", "svdd_pm", "drakes")}
    assert set(zip(rewards.reward, rewards.method)) == guided | {("-", "pretrained")}
    assert np.isfinite(rewards[["fid", "alignment", "overlap"]].to_numpy()).all()
    front = pd.read_csv(out / "front.csv")
    assert len(front) == 5 and np.isfinite(front[["fid", "overlap", "alignment"]].to_numpy()).all()
    for name in ("front.png", "pages.png", "generation.md", "rewards.md"):
        assert (out / name).stat().st_size > 1000
