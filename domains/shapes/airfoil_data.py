"""The UIUC airfoil database as bundled with aerosandbox, fitted to 18-value Kulfan sections.

``python -m domains.shapes.fit_airfoils`` reads every ``.dat`` file of
``aerosandbox/geometry/airfoil/airfoil_database``, fits it (``sections.from_coordinates``) and writes
``data/uiuc_kulfan.npz``: the names, the sections ``[n, 18]``, the fit errors (max and RMS |y_fit - y| over chord
against the file's own normalized points) and the files it skipped, with the reason. ``load_database`` reads that
file (numpy only: no aerosandbox needed at run time). ``clean`` picks the airfoils a prior trains on: a close fit,
surfaces that do not cross, a thickness in a sane range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import sections

DATA_FILE = Path(__file__).resolve().parent / "data" / "uiuc_kulfan.npz"
CLASSICS = ("naca2412", "clarky", "e387")  # classic airfoils the study compares against
MAX_FIT_ERROR = 0.005  # chord; a fit worse than this is not used for the prior
THICKNESS_RANGE = (0.02, 0.35)  # fraction of chord, for the prior's training set


def database_dir() -> Path:
    """aerosandbox's folder of UIUC ``.dat`` files (extra ``shapes``)."""
    sections.require_aerosandbox()
    import aerosandbox
    return Path(aerosandbox.__file__).resolve().parent / "geometry" / "airfoil" / "airfoil_database"


def read_dat(path: str | Path) -> np.ndarray:
    """Coordinates ``[N, 2]`` of one ``.dat`` file (Selig or Lednicer order -> Selig order); a ValueError when
    the file holds no coordinates."""
    path = Path(path)
    rows: list[tuple[float, float]] = []
    text = path.read_bytes().decode("ascii", errors="ignore")
    for line in text.splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) != 2:
            continue
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except ValueError:
            continue
    if not rows:
        raise ValueError(f"{path.name}: no coordinate lines")
    xy = np.array(rows)
    if xy[0, 0] > 1.5 and xy[0, 1] > 1.5:  # Lednicer: point counts, then upper LE->TE, then lower LE->TE
        n_up, n_lo = int(xy[0, 0]), int(xy[0, 1])
        body = xy[1:]
        if len(body) != n_up + n_lo:
            raise ValueError(f"{path.name}: Lednicer header announces {n_up} + {n_lo} points, file has {len(body)}")
        up, lo = body[:n_up], body[n_up:]
        xy = np.concatenate([up[::-1], lo[1:] if np.allclose(lo[0], up[0]) else lo])
    return xy


@dataclass
class Database:
    """Fitted airfoils: ``names [n]``, ``vectors [n, 18]``, ``fit_max`` / ``fit_rms`` ``[n]`` (chord), and the
    files that could not be fitted (``skipped``: name -> reason)."""

    names: np.ndarray
    vectors: np.ndarray
    fit_max: np.ndarray
    fit_rms: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        hits = np.flatnonzero(self.names == name.lower())
        if not len(hits):
            raise KeyError(f"airfoil {name!r} is not in the fitted database ({len(self)} airfoils, e.g. "
                           f"{list(self.names[:3])})")
        return int(hits[0])

    def vector(self, name: str) -> np.ndarray:
        """The fitted section ``[18]`` of airfoil ``name`` (file name without .dat, lower case)."""
        return self.vectors[self.index(name)].copy()

    def clean(self) -> np.ndarray:
        """``[n]`` bool: close fit (max error <= MAX_FIT_ERROR), no crossing, thickness within THICKNESS_RANGE."""
        t, _ = sections.thickness(self.vectors)
        return ((self.fit_max <= MAX_FIT_ERROR) & ~sections.crosses(self.vectors)
                & (t >= THICKNESS_RANGE[0]) & (t <= THICKNESS_RANGE[1]))

    def save(self, path: str | Path = DATA_FILE) -> None:
        np.savez_compressed(path, names=self.names, vectors=self.vectors, fit_max=self.fit_max, fit_rms=self.fit_rms,
                            skipped_names=np.array(list(self.skipped), dtype=str),
                            skipped_reasons=np.array(list(self.skipped.values()), dtype=str))


def fit_file(path: str | Path) -> tuple[np.ndarray, float, float]:
    """Section ``[18]`` and (max, RMS) fit error of one ``.dat`` file; ValueError if it cannot be fitted."""
    path = Path(path)
    coords = read_dat(path)
    v = sections.from_coordinates(coords, name=path.stem)
    err_max, err_rms = sections.fit_error(v, coords, name=path.stem)
    return v, err_max, err_rms


def fit_database(folder: str | Path | None = None, log: object = None) -> Database:
    """Fit every ``.dat`` file of ``folder`` (default: aerosandbox's database); unreadable or degenerate files
    are skipped with their reason."""
    folder = Path(folder) if folder is not None else database_dir()
    files = sorted(folder.glob("*.dat"))
    if not files:
        raise FileNotFoundError(f"no .dat files in {folder}")
    names, vectors, errs, skipped = [], [], [], {}
    for path in files:
        try:
            v, e_max, e_rms = fit_file(path)
        except (ValueError, np.linalg.LinAlgError) as err:
            skipped[path.stem.lower()] = str(err)
            continue
        names.append(path.stem.lower())
        vectors.append(v)
        errs.append((e_max, e_rms))
    errs_arr = np.array(errs)
    return Database(np.array(names), np.array(vectors), errs_arr[:, 0], errs_arr[:, 1], skipped)


@lru_cache(maxsize=1)
def load_database(path: str = str(DATA_FILE)) -> Database:
    """The shipped fitted database (cached; treat as read-only)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing; build it with `python -m domains.shapes.fit_airfoils`")
    with np.load(path) as blob:
        return Database(blob["names"], blob["vectors"], blob["fit_max"], blob["fit_rms"],
                        dict(zip(blob["skipped_names"].tolist(), blob["skipped_reasons"].tolist())))
