"""The molecule study (studies/molecules.py) end to end in its CPU setting: every method runs on both tasks with the
tiny prior, each table has a row of finite numbers per method, pretrained samples are valid molecules, and the
front and the figures are written."""

from __future__ import annotations

import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rdkit", reason="the molecule domain needs RDKit")
pytest.importorskip("selfies", reason="the molecule domain needs selfies")

import pandas as pd  # noqa: E402

ROOT = Path(__file__).parents[1]
METHODS = ["pretrained", "best_of_n", "smc", "svdd_pm", "svdd_mc", "dps", "drakes", "drakes_budget", "drakes_no_kl"]
TASKS = ["qed", "sa"]
#: novelty needs MOSES train from the optional molsets wheel; without it the column is NaN
HAS_MOSES = importlib.util.find_spec("moses") is not None
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?|nan|inf", re.IGNORECASE)


def _numbers(cell) -> list[float]:
    """The numbers of a table cell: "mean ± std", "1,234", "12%", "0.61-0.66" (a range) or a plain number
    (signs may be misread in a range; only finiteness is tested)."""
    return [float(v.replace(",", "")) for v in NUMBER.findall(str(cell))]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("molecules")
    command = [sys.executable, str(ROOT / "studies" / "molecules.py"), "--scale", "cpu", "--out", str(folder)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return folder / "cpu"


def test_the_expected_files_are_written(out):
    for name in ("table_qed.md", "table_sa.md", "studies.csv", "designs.csv", "front.csv", "front.png", "grid.png"):
        assert (out / name).exists(), name
    assert (out / "grid.png").stat().st_size > 50_000 and (out / "front.png").stat().st_size > 20_000


@pytest.mark.parametrize("task", TASKS)
def test_each_table_has_every_method_with_finite_numbers(out, task):
    shown = pd.read_csv(out / f"table_{task}.csv")
    assert shown["method"].tolist() == METHODS
    for column in shown.columns.drop("method"):
        if column == "novelty" and not HAS_MOSES:
            continue
        for cell in shown[column]:
            values = _numbers(cell)
            assert values and all(math.isfinite(v) for v in values), (task, column, cell)
    markdown = (out / f"table_{task}.md").read_text()
    assert all(f"| {method} |" in markdown for method in METHODS)


def test_the_study_rows_are_complete_and_sensible(out):
    rows = pd.read_csv(out / "studies.csv")
    single = rows[rows["task"].isin(TASKS)]
    assert sorted(map(tuple, single[["task", "method"]].to_numpy())) == sorted((t, m) for t in TASKS for m in METHODS)
    numbers = ["reward_median", "reward_top10", "validity", "uniqueness", "diversity", "log_likelihood",
               "denoiser_calls", "reward_calls", "seconds", "molecules_per_second", "reward_time_share"]
    assert all(math.isfinite(v) for v in single[numbers].to_numpy().ravel())
    by = single.set_index(["task", "method"])
    for task in TASKS:
        assert by.loc[(task, "pretrained"), "validity"] >= 0.9
        assert by.loc[(task, "pretrained"), "reward_calls"] == 0
        assert (by.loc[task].drop(index="pretrained")["reward_calls"] > 0).all()
        assert by.loc[(task, "drakes_budget"), "budget_checks"] == 2  # check_every 1, 2 iterations
    assert single["reward_median"].between(0, 1).all() and single["reward_time_share"].between(0, 1).all()
    assert single["bridged"].between(0, 1).all()  # share of valid molecules with a bridged ring system
    assert (rows["task"] == "front").sum() == 5  # SVDD-PM over five weight vectors


def test_the_front_is_non_dominated(out):
    front = pd.read_csv(out / "front.csv")
    assert len(front) >= 1 and front["valid"].all()
    points = front[["qed", "sa", "similarity"]].to_numpy()
    assert ((points >= 0) & (points <= 1)).all()
    for i, p in enumerate(points):  # no front molecule is dominated by another
        others = points[[j for j in range(len(points)) if j != i]]
        assert not ((others >= p).all(axis=1) & (others > p).any(axis=1)).any()
