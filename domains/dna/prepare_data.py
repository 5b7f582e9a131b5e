"""Write the shipped DHS table from the DNA-Diffusion / ENCODE source file (run once; users do not need it).

    python -m domains.dna.prepare_data SOURCE.tsv.gz

Keeps ``dhs_id, chr, start, sequence``, the four 0/1 label columns renamed to ``CELL_TYPES`` and the
split (``training`` -> ``train``), in the source's row order, gzip-compressed with a fixed timestamp so
the same source gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .data import CELL_TYPES, DATA_FILE

#: source label column -> our cell-type name (ENCODE biosample accessions of the DNase experiments)
SOURCE_LABELS = {"GM12878_ENCLB441ZZZ": "GM12878", "hESCT0_ENCLB449ZZZ": "hESC", "K562_ENCLB843GMH": "K562",
                 "HepG2_ENCLB029COU": "HepG2"}
SOURCE_SPLITS = {"training": "train", "validation": "validation", "test": "test"}


def prepare(source: Path) -> pd.DataFrame:
    """The kept columns of the source table, checked (one label per row, known splits, 200 bp)."""
    raw = pd.read_csv(source, sep="\t")
    missing = sorted({"dhs_id", "chr", "start", "sequence", "data_label", *SOURCE_LABELS} - set(raw.columns))
    if missing:
        raise ValueError(f"{source}: columns {missing} are missing")
    out = raw[["dhs_id", "chr", "start", "sequence", *SOURCE_LABELS]].rename(columns=SOURCE_LABELS)
    out["split"] = raw["data_label"].map(SOURCE_SPLITS)
    if out["split"].isna().any():
        raise ValueError(f"{source}: unknown data_label values {sorted(set(raw['data_label']) - set(SOURCE_SPLITS))}")
    if not (out[list(CELL_TYPES)].sum(axis=1) == 1).all():
        raise ValueError(f"{source}: some rows are not labelled with exactly one cell type")
    return out


def write(frame: pd.DataFrame, path: Path) -> None:
    """CSV, gzip level 9 with mtime 0 (reproducible bytes)."""
    text = frame.to_csv(index=False).encode()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.dna.prepare_data", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="encode_dhs_4celltypes.tsv.gz (DNA-Diffusion's DHS table)")
    parser.add_argument("--out", type=Path, default=DATA_FILE)
    args = parser.parse_args(argv)
    frame = prepare(args.source)
    write(frame, args.out)
    print(f"{args.out}: {len(frame)} rows, {args.out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
