"""Fit every airfoil of aerosandbox's UIUC database to an 18-value Kulfan section and report the fit error.

    python -m domains.shapes.fit_airfoils [--out domains/shapes/data/uiuc_kulfan.npz]

Writes the fitted database (names, sections, fit errors, skipped files with reasons) and prints the fit error
distribution (max and RMS of |y_fit - y| over chord, quantiles over airfoils) and the skipped files.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import sections
from .airfoil_data import DATA_FILE, MAX_FIT_ERROR, fit_database


def report(db: object) -> str:
    """The fit error distribution and the skipped files as text."""
    q = [0.5, 0.9, 0.99, 1.0]
    lines = [f"fitted {len(db)} airfoils, skipped {len(db.skipped)}"]
    for label, err in (("max |dy|/c", db.fit_max), ("RMS |dy|/c", db.fit_rms)):
        qs = np.quantile(err, q)
        lines.append(f"{label}: " + ", ".join(f"q{int(p * 100)} {v:.2e}" for p, v in zip(q, qs)))
    lines.append(f"max error <= {MAX_FIT_ERROR}: {np.mean(db.fit_max <= MAX_FIT_ERROR):.1%}; "
                 f"<= 0.001: {np.mean(db.fit_max <= 0.001):.1%}")
    crossing = sections.crosses(db.vectors)
    lines.append(f"fitted sections whose surfaces cross: {int(crossing.sum())}; clean (training set): "
                 f"{int(db.clean().sum())}")
    worst = np.argsort(db.fit_max)[::-1][:5]
    lines.append("worst fits: " + ", ".join(f"{db.names[i]} {db.fit_max[i]:.3f}" for i in worst))
    for name, reason in sorted(db.skipped.items()):
        lines.append(f"skipped {name}: {reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(DATA_FILE))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with np.errstate(all="ignore"):
        db = fit_database()
    db.save(args.out)
    print(report(db))
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
