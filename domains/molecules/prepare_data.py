"""Write the SELFIES vocabulary and the prior's token file from the MOSES training SMILES (run once).

    python -m domains.molecules.prepare_data                       # MOSES train from the molsets wheel
    python -m domains.molecules.prepare_data --data train.csv.gz   # any (gzip) CSV with a SMILES column
    python -m domains.molecules.prepare_data --new-vocab --sample  # rebuild the vocabulary and test sample

Encodes every SMILES to SELFIES (a process pool; about 6 minutes for 1.58M on 2 cores), keeps the molecules of
at most ``length`` symbols (the 99.9 % quantile of the lengths when the vocabulary is rebuilt), holds out a
seeded random ``--valid`` of them, and writes ``data/moses_tokens.npz.xz`` (uint8 ids, about 8.5 MB for all of
MOSES train; not committed). The shipped vocabulary ``data/selfies_vocab.json`` is reused unless
``--new-vocab`` (a new one invalidates the shipped checkpoints). Needs selfies (and molsets without --data).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import selfies as sf

from .data import SAMPLE_FILE, TOKEN_FILE, load_moses, read_smiles_file, write_token_file
from .vocab import VOCAB_FILE

QUANTILE = 99.9
SAMPLE_SIZE = 2000
SEED = 0


def _symbols(chunk: list[str]) -> list[list[str] | None]:
    """SELFIES symbols of each SMILES (None where selfies cannot encode it)."""
    out: list[list[str] | None] = []
    for smiles in chunk:
        try:
            out.append(list(sf.split_selfies(sf.encoder(smiles))))
        except sf.EncoderError:
            out.append(None)
    return out


def to_symbols(smiles: list[str], workers: int, chunk: int = 20_000) -> list[list[str] | None]:
    """SELFIES symbols of every SMILES, in order, over ``workers`` processes."""
    parts = [smiles[i:i + chunk] for i in range(0, len(smiles), chunk)]
    if workers <= 1:
        return [s for part in parts for s in _symbols(part)]
    with ProcessPoolExecutor(workers) as pool:
        return [s for part in pool.map(_symbols, parts) for s in part]


def build_vocabulary(symbols: list[list[str]], source: str) -> dict:
    """Alphabet (most frequent first, ties by name) and length (the ``QUANTILE`` % quantile)."""
    counts = Counter(s for row in symbols for s in row)
    lengths = np.array([len(row) for row in symbols])
    size = int(math.ceil(np.percentile(lengths, QUANTILE)))
    order = sorted(counts, key=lambda s: (-counts[s], s))
    return {"alphabet": order, "length": size, "source": source, "molecules": len(symbols),
            "kept": int((lengths <= size).sum()), "length_quantile": QUANTILE,
            "max_length_seen": int(lengths.max()), "counts": {s: counts[s] for s in order}}


def token_array(symbols: list[list[str]], vocab: dict) -> tuple[np.ndarray, int]:
    """uint8 ids ``[n, length]`` of the rows that fit (padded with ``len(alphabet)``), and how many were dropped
    (too long or with symbols outside the vocabulary)."""
    index = {s: i for i, s in enumerate(vocab["alphabet"])}
    size, pad = vocab["length"], len(index)
    if pad >= 255:
        raise ValueError(f"{pad} symbols do not fit uint8 ids")
    keep = [row for row in symbols if len(row) <= size and all(s in index for s in row)]
    out = np.full((len(keep), size), pad, dtype=np.uint8)
    for i, row in enumerate(keep):
        out[i, :len(row)] = [index[s] for s in row]
    return out, len(symbols) - len(keep)


def write_sample(path: Path, n: int = SAMPLE_SIZE) -> None:
    """``n`` seeded random molecules of the MOSES test split, gzip CSV with mtime 0 (reproducible bytes)."""
    test = load_moses("test")
    pick = np.sort(np.random.default_rng(SEED).choice(len(test), n, replace=False))
    text = test.iloc[pick].to_csv(index=False).encode()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.molecules.prepare_data",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="SMILES file (default: MOSES train from molsets)")
    parser.add_argument("--out", type=Path, default=TOKEN_FILE)
    parser.add_argument("--valid", type=int, default=10_000, help="held-out molecules (validation ELBO)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N SMILES (quick runs)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--new-vocab", action="store_true", help="rebuild data/selfies_vocab.json from this data")
    parser.add_argument("--sample", action="store_true", help="also rewrite the committed MOSES test sample")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    source = str(args.data) if args.data else "molsets 0.3.1 moses/dataset/data/train.csv.gz"
    smiles = read_smiles_file(args.data) if args.data else load_moses("train")["smiles"].tolist()
    smiles = smiles[:args.limit] if args.limit else smiles
    encoded = to_symbols(smiles, args.workers)
    good = [row for row in encoded if row]
    print(f"{len(smiles)} SMILES, {len(smiles) - len(good)} not encodable ({time.perf_counter() - started:.0f} s)")
    if args.new_vocab or not VOCAB_FILE.exists():
        vocab = build_vocabulary(good, source)
        VOCAB_FILE.write_text(json.dumps(vocab, indent=1) + "\n")
        print(f"{VOCAB_FILE}: {len(vocab['alphabet'])} symbols, length {vocab['length']}")
    else:
        vocab = json.loads(VOCAB_FILE.read_text())
    tokens, dropped = token_array(good, vocab)
    order = np.random.default_rng(SEED).permutation(len(tokens))
    valid, train = tokens[order[:args.valid]], tokens[order[args.valid:]]
    write_token_file(args.out, {"train": train, "valid": valid, "alphabet": np.array(vocab["alphabet"])})
    print(f"{args.out}: train {train.shape}, valid {valid.shape}, {dropped} dropped (longer than {vocab['length']} "
          f"or unknown symbols), {args.out.stat().st_size / 1e6:.1f} MB ({time.perf_counter() - started:.0f} s)")
    if args.sample:
        write_sample(SAMPLE_FILE)
        print(f"{SAMPLE_FILE}: {SAMPLE_SIZE} molecules of the MOSES test split")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
