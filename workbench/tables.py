"""Tables of study results for reports: per-group means over seeds with their spread, and GitHub markdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd


def mean_over_seeds(rows: pd.DataFrame, by: str, plus_minus: Sequence[str] = (), counts: Sequence[str] = (),
                    tenths: Sequence[str] = (), percents: Sequence[str] = ()) -> pd.DataFrame:
    """Means of the numeric columns of ``rows`` per ``by`` (groups in order of appearance), formatted for a
    report: ``plus_minus`` as "mean ± std" over the group's rows (3 decimals), ``counts`` as integers with
    thousands separators, ``tenths`` to one decimal, ``percents`` (fractions) as whole percents; other
    columns stay plain means. Drop columns that are not to be averaged (e.g. the seed) first."""
    mean = rows.groupby(by, sort=False).mean()
    std = rows.groupby(by, sort=False).std().fillna(0.0)
    shown = mean.copy().astype(object)
    for col in plus_minus:
        shown[col] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(mean[col], std[col])]
    for col in counts:
        shown[col] = [f"{int(v):,}" for v in mean[col]]
    for col in tenths:
        shown[col] = [f"{v:.1f}" for v in mean[col]]
    for col in percents:
        shown[col] = [f"{100 * v:.0f}%" for v in mean[col]]
    return shown.reset_index()


def markdown(frame: pd.DataFrame, fmt: Callable[[Any], str] = str) -> str:
    """A GitHub table of ``frame``, each cell written by ``fmt``."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"
