"""The MOSES benchmark molecules (Polykovskiy et al., 2020; MIT licence), read from the ``molsets`` wheel.

``molsets==0.3.1`` ships the split as gzip CSVs (one ``SMILES`` column) in ``moses/dataset/data/``:
``train`` (1,584,663 molecules), ``test`` (176,074) and ``test_scaffolds`` (176,225; test molecules whose
Bemis-Murcko scaffolds never occur in train). We locate the files with ``importlib.util.find_spec`` without
importing ``moses`` (its modules need old pins of other packages; install it with ``pip install --no-deps``)
and check their SHA-256 against the wheel's RECORD. Nothing of the 1.58M set is committed; the repository ships
a 2,000-molecule sample of ``test`` (``data/moses_test_sample.csv.gz``) for tests, and the prior trains on a
token file written by ``prepare_data`` (``read_token_file``), so a GPU machine needs neither molsets nor RDKit.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import lzma
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE_FILE = DATA_DIR / "moses_test_sample.csv.gz"
#: the default token file written by ``prepare_data`` (not committed; about 8.5 MB)
TOKEN_FILE = DATA_DIR / "moses_tokens.npz.xz"
SPLITS = ("train", "test", "test_scaffolds")
INSTALL_HINT = "pip install --no-deps molsets==0.3.1 (or run `bash scripts/setup.sh`)"
#: SHA-256 of the data files as recorded in the molsets 0.3.1 wheel's RECORD (urlsafe base64)
SHA256 = {"train": "eG8DE6prm6VRTfaF-IV0KnDqjYbxpPpIEV9_gKY0Jlw",
          "test": "-Jb783ZPiNlGcLmVnlhyxgDBIVKhgjOCPoIHYbenkbI",
          "test_scaffolds": "rf-yGSwb_jGrDhMVTUrxmjfcGL2_PNe0SR4EQFEord4"}
SIZES = {"train": 1_584_663, "test": 176_074, "test_scaffolds": 176_225}


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def moses_file(split: str = "train") -> Path:
    """Path of ``moses/dataset/data/<split>.csv.gz`` in the installed molsets package (not imported)."""
    _check_split(split)
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the MOSES data package 'molsets' is not installed; {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "dataset" / "data" / f"{split}.csv.gz"
        if path.exists():
            return path
    raise ImportError(f"a package named 'moses' is installed ({list(spec.submodule_search_locations)}) but it has "
                      f"no dataset/data/{split}.csv.gz; it is not molsets 0.3.1. {INSTALL_HINT}")


def read_smiles_file(path: str | Path) -> list[str]:
    """SMILES of a (gzip) CSV with a ``SMILES`` or ``smiles`` column, or a plain one-SMILES-per-line file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no SMILES file at {path}")
    frame = pd.read_csv(path)
    for column in ("SMILES", "smiles"):
        if column in frame.columns:
            return frame[column].astype(str).tolist()
    if frame.shape[1] == 1:  # no header: the first molecule was read as the column name
        return [str(frame.columns[0]), *frame.iloc[:, 0].astype(str).tolist()]
    raise ValueError(f"{path} has no SMILES column (columns: {list(frame.columns)})")


@lru_cache(maxsize=3)
def _moses(split: str) -> pd.DataFrame:
    path = moses_file(split)
    raw = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
    if digest != SHA256[split]:
        raise ValueError(f"{path} is not the file of molsets 0.3.1 (SHA-256 {digest}); reinstall: {INSTALL_HINT}")
    frame = pd.read_csv(io.BytesIO(raw), compression="gzip").rename(columns={"SMILES": "smiles"})
    if list(frame.columns) != ["smiles"] or len(frame) != SIZES[split]:
        raise ValueError(f"unexpected MOSES {split} table in {path}: {list(frame.columns)}, {len(frame)} rows")
    return frame


def load_moses(split: str = "train") -> pd.DataFrame:
    """The MOSES split as a frame with one ``smiles`` column (a copy; about 1.5 s for train)."""
    return _moses(_check_split(split)).copy()


def load_sample() -> pd.DataFrame:
    """The committed sample: 2,000 molecules of the MOSES test split (``smiles``), for tests and examples."""
    if not SAMPLE_FILE.exists():
        raise FileNotFoundError(f"{SAMPLE_FILE} is missing (it ships with the repository)")
    return pd.read_csv(SAMPLE_FILE)


def write_token_file(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """An xz-compressed ``.npz`` of uint8 token arrays (and the alphabet as a unicode array); no pickle."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    Path(path).write_bytes(lzma.compress(buffer.getvalue(), preset=6))


def read_token_file(path: str | Path = TOKEN_FILE, alphabet: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Token splits ``{"train": [n, L], "valid": [m, L]}`` (int64) of a file written by ``prepare_data``.

    With ``alphabet``, checks that the file was written with the same vocabulary.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"token file {path} is missing; write it with `python -m "
                                "domains.molecules.prepare_data` (needs molsets and selfies) and copy it here")
    with np.load(io.BytesIO(lzma.decompress(path.read_bytes())), allow_pickle=False) as blob:
        stored = [str(s) for s in blob["alphabet"]]
        if alphabet is not None and stored != list(alphabet):
            raise ValueError(f"{path} was written with another SELFIES vocabulary ({len(stored)} symbols); "
                             "re-run prepare_data")
        return {name: torch.from_numpy(blob[name].astype(np.int64)) for name in ("train", "valid")}
