"""The shipped bicycle data sets (BIKED / FRAMED, from biked-commons; MIT licence, see ``data/``).

Every loader returns a pandas object indexed by the data set's row id (the first CSV column);
the X and Y tables of one split share that index. Results are cached: treat them as read-only
(``.copy()`` before changing one).

- structure: 37 frame parameters -> 6 finite-element results (14,851 frames)
- validity: the same 37 parameters -> ``valid`` (15,097 frames, about 1 % invalid)
- aero: rider position and body dimensions -> ``drag`` (4,000 CFD runs)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"
SPLITS = ("train", "test")

#: The 37 frame parameters, in the order of the structure data (and of ``BikeFrame``'s space).
FRAME_COLUMNS = (
    "SSB_Include", "CSB_Include", "Material", "CS Length", "BB Drop", "Stack", "SS E", "ST Angle", "BB OD", "TT OD",
    "HT OD", "DT OD", "CS OD", "SS OD", "ST OD", "CS F", "HT LX", "ST UX", "HT UX", "HT Angle", "HT Length",
    "ST Length", "BB Length", "Dropout Offset", "SSB OD", "CSB OD", "SSB Offset", "CSB Offset", "SS Z",
    "SS Thickness", "CS Thickness", "TT Thickness", "BB Thickness", "HT Thickness", "ST Thickness", "DT Thickness",
    "DT Length",
)
STRUCTURE_TARGETS = ("Mass", "Planar Compliance", "Transverse Compliance", "Eccentric Compliance",
                     "Planar Safety Factor", "Eccentric Safety Factor")
MATERIALS = ("Aluminum", "Steel", "Titanium")  # the frame materials of the data, in index order
BINARY_COLUMNS = ("SSB_Include", "CSB_Include")  # seat-stay / chain-stay bridge present (0/1)
RIDER_COLUMNS = ("hand_x", "hand_y", "hip_x", "hip_y", "crank_length", "upper_leg", "lower_leg", "arm_length",
                 "torso_length", "neck_and_head_length", "torso_width")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    path = DATA_DIR / f"{name}.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"bicycle data file {path} is missing (it ships with the repository)")
    frame = pd.read_csv(path, index_col=0)
    frame.index.name = "id"
    return frame


def load_structure(split: str = "train") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(X, Y) of the structural data set: X the 37 frame parameters (``FRAME_COLUMNS``, the ``batch``
    column dropped), Y the FEA results: Mass (kg), Planar / Transverse / Eccentric Compliance
    (dimensionless, each normalised to mean 1 over the data set) and Planar / Eccentric Safety Factor."""
    split = _check_split(split)
    x = _read(f"structure_X_{split}")
    return x.loc[:, list(FRAME_COLUMNS)], _read(f"structure_Y_{split}").loc[:, list(STRUCTURE_TARGETS)]


def load_validity(split: str = "train") -> tuple[pd.DataFrame, pd.Series]:
    """(X, valid) of the validity data set: X the 37 frame parameters in ``FRAME_COLUMNS`` order;
    ``valid`` is 1.0 for a valid frame and 0.0 for an invalid one.

    The raw files code the label as 0 = valid and 2 = invalid (biked-commons' ``prepare_validity``
    keeps the classes 0 and 2 of the original data); 99 % of the frames are valid, and frames of the
    structural data set (which all passed FEA) are class 0, which fixes the direction.
    """
    split = _check_split(split)
    x = _read(f"validity_X_{split}").loc[:, list(FRAME_COLUMNS)]
    raw = _read(f"validity_Y_{split}")["valid"]
    valid = (raw == 0).astype("float64").rename("valid")
    return x, valid


def load_aero(split: str = "train") -> tuple[pd.DataFrame, pd.Series]:
    """(X, drag) of the aerodynamic data set: X rider geometry in metres (``RIDER_COLUMNS``: hand and
    hip position relative to the bottom bracket, hip behind it, crank length and body dimensions);
    drag in newtons from CFD of rider plus bike."""
    split = _check_split(split)
    return _read(f"aero_X_{split}").loc[:, list(RIDER_COLUMNS)], _read(f"aero_Y_{split}")["drag"]


def load_frames() -> pd.DataFrame:
    """All real frames of the structural data set (train then test), parameters only."""
    return pd.concat([load_structure(s)[0] for s in SPLITS])


def load_frames_with_results() -> tuple[pd.DataFrame, pd.DataFrame]:
    """All real frames (train then test) and their FEA results, sharing the row id index."""
    xs, ys = zip(*(load_structure(s) for s in SPLITS))
    return pd.concat(xs), pd.concat(ys)


#: BikeCAD field of biked_clip_processed.csv -> its FRAMED name (lengths there are in mm, here in m)
_BIKED_FIELDS = {
    "CS textfield": "CS Length", "BB textfield": "BB Drop", "Stack": "Stack", "Head angle": "HT Angle",
    "Head tube length textfield": "HT Length", "Seat stay junction0": "SS E", "Seat tube length": "ST Length",
    "Seat angle": "ST Angle", "DT Length": "DT Length", "BB diameter": "BB OD", "ttd": "TT OD", "dtd": "DT OD",
    "csd": "CS OD", "ssd": "SS OD", "Chain stay position on BB": "CS F", "SSTopZOFFSET": "SS Z",
    "Head tube upper extension2": "HT UX", "Seat tube extension2": "ST UX", "Head tube lower extension2": "HT LX",
    "SEATSTAYbrdgshift": "SSB Offset", "CHAINSTAYbrdgshift": "CSB Offset", "SEATSTAYbrdgdia1": "SSB OD",
    "CHAINSTAYbrdgdia1": "CSB OD", "SEATSTAYbrdgCheck": "SSB_Include", "CHAINSTAYbrdgCheck": "CSB_Include",
    "Dropout spacing": "Dropout Offset", "Wall thickness Bottom Bracket": "BB Thickness",
    "Wall thickness Top tube": "TT Thickness", "Wall thickness Head tube": "HT Thickness",
    "Wall thickness Down tube": "DT Thickness", "Wall thickness Chain stay": "CS Thickness",
    "Wall thickness Seat stay": "SS Thickness", "Wall thickness Seat tube": "ST Thickness", "BB length": "BB Length",
    "Head tube diameter": "HT OD", "Seat tube diameter": "ST OD",
}
_UNITLESS = ("HT Angle", "ST Angle", "SSB_Include", "CSB_Include")


@lru_cache(maxsize=1)
def load_biked() -> pd.DataFrame:
    """The 4,512 real BIKED bicycle designs (``biked_clip_processed.csv``), with their own wheels.

    Columns: the 36 frame parameters of ``FRAME_COLUMNS`` other than ``Material`` (metres and degrees, FRAMED
    names), ``Material`` (Steel, Aluminum, Titanium, or Carbon, Bamboo, Other, which the FEA data lack),
    ``rear_radius`` and ``front_radius`` (bead seat diameter / 2 + tyre width, metres: the wheel with its
    tyre), ``saddle_height`` (metres) and ``fork_type`` (BikeCAD's 0, 1, 2).
    """
    raw = _read("biked_clip_processed")
    out = pd.DataFrame({name: raw[field] / (1.0 if name in _UNITLESS else 1000.0)
                        for field, name in _BIKED_FIELDS.items()}, index=raw.index)
    materials = {"ALUMINIUM": "Aluminum", "STEEL": "Steel", "TITANIUM": "Titanium", "CARBON": "Carbon",
                 "BAMBOO": "Bamboo", "OTHER": "Other"}
    onehot = raw[[f"MATERIAL OHCLASS: {k}" for k in materials]].to_numpy()
    out["Material"] = [list(materials.values())[i] for i in onehot.argmax(axis=1)]
    out["rear_radius"] = (raw["BSD rear"] / 2 + raw["Wheel width rear"]) / 1000.0
    out["front_radius"] = (raw["BSD front"] / 2 + raw["Wheel width front"]) / 1000.0
    out["saddle_height"] = raw["Saddle height"] / 1000.0
    out["fork_type"] = raw[[f"Fork type OHCLASS: {k}" for k in range(3)]].to_numpy().argmax(axis=1)
    return out
