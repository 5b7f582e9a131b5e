"""Validate the geometric checks against the data: ``python -m domains.bicycles.validate_geometry``.

Two tables, printed as markdown:

1. FRAMED's validity data (15,097 frames labelled valid or invalid): how many frames of each label fail
   each check, with 700c road wheels (the default ``Build``), and how many pass all checks for each
   standard wheel, or for at least one of them (the data hold no wheel size);
2. the 4,512 real BIKED designs, each checked with its own wheels (rim diameter / 2 + tyre width): how
   many fail each check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from workbench.tables import markdown

from .data import load_biked, load_validity
from .geometry import CHECKS, WHEELS, Build, check_parameters, frame_checks, frame_points


def _params(frame: pd.DataFrame) -> dict[str, torch.Tensor]:
    return {c: torch.tensor(frame[c].to_numpy(dtype=np.float64)) for c in frame.columns
            if c not in ("Material", "rear_radius", "front_radius", "saddle_height", "fork_type")}


def failures(frame: pd.DataFrame, build: Build) -> pd.DataFrame:
    """Boolean table: rows of ``frame`` x :data:`CHECKS`, True where the check fails."""
    params = _params(frame)
    checks = frame_checks(params, frame_points(params, build), build)
    return pd.DataFrame({k: (v > 0).numpy() for k, v in checks.items()}, index=frame.index)


def framed_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-check failures by label with 700c wheels, pass-all rates per wheel) on FRAMED's validity data."""
    parts = [load_validity(split) for split in ("train", "test")]
    frame = pd.concat([p[0] for p in parts])
    valid = pd.concat([p[1] for p in parts]).to_numpy() > 0.5
    fails = failures(frame, Build())
    per_check = pd.DataFrame({"check": list(CHECKS),
                              "valid frames failing": [int(fails[c][valid].sum()) for c in CHECKS],
                              "invalid frames failing": [int(fails[c][~valid].sum()) for c in CHECKS]})
    rows, any_wheel = [], np.zeros(len(frame), dtype=bool)
    for wheel in WHEELS:
        ok = ~failures(frame, Build(wheel=wheel)).any(axis=1).to_numpy()
        any_wheel |= ok
        rows.append({"wheels": wheel, "valid frames passing all": ok[valid].mean(),
                     "invalid frames failing some": 1 - ok[~valid].mean()})
    rows.append({"wheels": "any of these", "valid frames passing all": any_wheel[valid].mean(),
                 "invalid frames failing some": 1 - any_wheel[~valid].mean()})
    return per_check, pd.DataFrame(rows)


def biked_table() -> tuple[pd.DataFrame, int, int]:
    """(per-check failures of the real BIKED designs with their own wheels, designs checked, designs whose
    parameters cannot describe a frame)."""
    bikes = load_biked()
    bad = check_parameters(_params(bikes))
    bikes = bikes.drop(index=bikes.index[sorted(bad)])
    fails = []
    for radius, group in bikes.groupby(bikes["rear_radius"].round(3)):
        fails.append(failures(group, Build(wheel=float(np.clip(radius, 0.1, 0.5)))))
    table = pd.concat(fails)
    per_check = pd.DataFrame({"check": list(CHECKS), "designs failing": [int(table[c].sum()) for c in CHECKS]})
    per_check.loc[len(per_check)] = ["any", int(table.any(axis=1).sum())]
    return per_check, len(bikes), len(bad)


def _cell(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, float) else str(value)


def main() -> None:
    per_check, wheels = framed_table()
    print("FRAMED validity data, 700c road wheels:\n" + markdown(per_check, _cell))
    print("\nFRAMED validity data, pass rates by wheel:\n" + markdown(wheels, _cell))
    biked, checked, unusable = biked_table()
    print(f"\nBIKED designs with their own wheels ({checked} checked, {unusable} whose parameters describe no "
          f"frame):\n" + markdown(biked, _cell))


if __name__ == "__main__":
    main()
