"""JASPAR vertebrate CORE motifs: export once from pyjaspar, score batches of sequences at run time.

Export (needs the optional ``pyjaspar`` package, ``pip install design-workbench[motifs]``)::

    python -m domains.dna.motifs --export        # writes data/jaspar_vertebrates.json.gz

The run time (:class:`MotifSet`) reads only that file. Position frequency matrices become log-odds
weights (log2 of base probability over a uniform background of 0.25) with a pseudocount of
``sqrt(N)`` spread evenly over the four bases for a column of ``N`` sites (Wasserman and Sandelin, 2004).
A motif's score at a position is the sum of the weights of the bases under it; both strands are scanned
(the reverse-complement matrix is a second filter) by one ``conv1d`` per chunk of sequences, on the
sequences' device. Soft (probability) inputs give expected scores and keep gradients.
JASPAR data: CC BY 4.0 (see ``docs/data.md``).
"""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .data import ALPHABET, DATA_DIR

MOTIF_FILE = DATA_DIR / "jaspar_vertebrates.json.gz"
#: relative score a position must reach to count as a hit (0 = the matrix's worst score, 1 = its best);
#: 0.8 is the customary default of PWM scanners (TFBSTools' ``min.score = "80%"``)
HIT_THRESHOLD = 0.8
_MAX_ELEMENTS = 1 << 25  # conv output elements per chunk (128 MB in float32)


@lru_cache(maxsize=4)
def _read(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"motif file {p} is missing; it ships with the repository "
                                "(rebuild it with `python -m domains.dna.motifs --export`)")
    with gzip.open(p, "rt") as f:
        return json.load(f)


class MotifSet:
    """A set of ``m`` JASPAR matrices and their log-odds weights.

    ``names``: factor names (may repeat: some factors have several matrices); ``matrix_ids``; ``lengths``
    ``[m]``; ``weights`` ``[m, 4, max_length]`` float64 (A, C, G, T rows; zero beyond each motif's length);
    ``min_score`` / ``max_score`` ``[m]``: the lowest / highest score a sequence can reach.
    """

    def __init__(self, motifs: Sequence[dict[str, Any]], release: str = "") -> None:
        if not motifs:
            raise ValueError("a MotifSet needs at least one motif")
        self.release = release
        self.names = [m["name"] for m in motifs]
        self.matrix_ids = [m["matrix_id"] for m in motifs]
        self.counts = [torch.tensor(m["counts"], dtype=torch.float64) for m in motifs]  # each [4, l]
        for m, c in zip(motifs, self.counts):
            if c.dim() != 2 or c.shape[0] != len(ALPHABET) or c.shape[1] < 1:
                raise ValueError(f"motif {m['matrix_id']}: counts must be [4, length], got {list(c.shape)}")
        self.lengths = torch.tensor([c.shape[1] for c in self.counts])
        width = int(self.lengths.max())
        self.weights = torch.zeros(len(motifs), len(ALPHABET), width, dtype=torch.float64)
        for j, c in enumerate(self.counts):
            self.weights[j, :, :c.shape[1]] = log_odds(c)
        self.min_score = torch.stack([log_odds(c).amin(0).sum() for c in self.counts])
        self.max_score = torch.stack([log_odds(c).amax(0).sum() for c in self.counts])
        self._filters: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, ...]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"MotifSet({len(self)} motifs, {self.release or 'custom'})"

    @classmethod
    def load(cls, names: Sequence[str] | None = None, path: str | Path = MOTIF_FILE) -> MotifSet:
        """All exported motifs, or those matching ``names`` (see :meth:`select`)."""
        blob = _read(str(path))
        full = cls(blob["motifs"], blob.get("release", ""))
        return full if names is None else full.select(names)

    def find(self, name: str) -> list[int]:
        """Indices of the matrices called ``name``: a matrix id (``MA0114.5``, or ``MA0114`` for any
        version), else a factor name, matched exactly, then ignoring case. Raises KeyError if none match."""
        hits = [j for j, mid in enumerate(self.matrix_ids) if name in (mid, mid.split(".")[0])]
        hits = hits or [j for j, n in enumerate(self.names) if n == name]
        hits = hits or [j for j, n in enumerate(self.names) if n.upper() == name.upper()]
        if not hits:
            close = sorted({n for n in self.names if name.upper()[:3] in n.upper()})[:10]
            raise KeyError(f"no JASPAR motif named {name!r} in {self!r}" + (f"; similar: {close}" if close else ""))
        return hits

    def select(self, names: Sequence[str]) -> MotifSet:
        """The motifs matching any of ``names`` (see :meth:`find`), in that order, without repeats."""
        order = list(dict.fromkeys(j for name in names for j in self.find(name)))
        motifs = [{"name": self.names[j], "matrix_id": self.matrix_ids[j], "counts": self.counts[j].tolist()}
                  for j in order]
        return MotifSet(motifs, self.release)

    def consensus(self) -> list[str]:
        """The highest-scoring sequence of each motif (the most frequent base per column)."""
        return ["".join(ALPHABET[int(i)] for i in c.argmax(0)) for c in self.counts]

    # ---------------------------------------------------------------- scoring
    def _on(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(filters ``[2m, 4, w]`` forward then reverse complement, lengths, min, max) on a device."""
        key = (device, dtype)
        if key not in self._filters:
            rc = torch.zeros_like(self.weights)
            for j, c in enumerate(self.counts):
                rc[j, :, :c.shape[1]] = log_odds(c).flip(0, 1)  # complement (A<->T, C<->G) and reverse
            filters = torch.cat([self.weights, rc]).to(device, dtype)
            self._filters[key] = (filters, self.lengths.to(device), self.min_score.to(device, dtype),
                                  self.max_score.to(device, dtype))
        return self._filters[key]

    def position_scores(self, onehot: torch.Tensor) -> torch.Tensor:
        """Score of every motif at every start position, best strand: ``onehot [n, L, 4]`` -> ``[n, m, L]``.

        Starts where the motif would run past the sequence end are -inf. Holds all ``n * m * L`` scores:
        for many sequences use :meth:`max_scores` or :meth:`hit_counts`, which reduce chunk by chunk.
        """
        return torch.cat(list(self._chunks(onehot)))

    def max_scores(self, onehot: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Best score of each motif over positions and strands: ``[n, L, 4]`` -> ``[n, m]``.

        ``normalize``: map to [0, 1] with the matrix's lowest and highest possible scores (1 = consensus).
        """
        best = torch.cat([chunk.amax(dim=2) for chunk in self._chunks(onehot)])
        return self._relative(best, onehot) if normalize else best

    def hit_counts(self, onehot: torch.Tensor, threshold: float = HIT_THRESHOLD) -> torch.Tensor:
        """Number of start positions where a motif's relative score (best strand) is at least ``threshold``:
        ``[n, L, 4]`` -> ``[n, m]`` int64."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold is a relative score in [0, 1], got {threshold}")
        with torch.no_grad():
            return torch.cat([(self._relative(chunk, onehot, dim=1) >= threshold).sum(dim=2)
                              for chunk in self._chunks(onehot)])

    def _chunks(self, onehot: torch.Tensor) -> Iterator[torch.Tensor]:
        """Position scores ``[c, m, L]`` (best strand, -inf past the end) of successive chunks of rows, each
        from one ``conv1d`` whose output holds at most ``_MAX_ELEMENTS`` values."""
        if onehot.dim() != 3 or onehot.shape[2] != len(ALPHABET):
            raise ValueError(f"expected one-hot sequences [n, L, 4], got shape {list(onehot.shape)}")
        dtype = onehot.dtype if onehot.dtype.is_floating_point else torch.float32
        filters, lengths, _, _ = self._on(onehot.device, dtype)
        n, length, _ = onehot.shape
        if int(lengths.max()) > length:
            raise ValueError(f"sequences of length {length} are shorter than the longest motif ({int(lengths.max())})")
        m, width = len(self), filters.shape[2]
        valid = torch.arange(length, device=onehot.device) <= (length - lengths).unsqueeze(1)  # [m, L]
        step = max(1, _MAX_ELEMENTS // (2 * m * length))
        for i in range(0, max(n, 1), step):
            x = F.pad(onehot[i:i + step].to(dtype).transpose(1, 2), (0, width - 1))  # [c, 4, L + w - 1]
            scores = F.conv1d(x, filters)  # [c, 2m, L]
            yield torch.maximum(scores[:, :m], scores[:, m:]).masked_fill(~valid, float("-inf"))

    def _relative(self, score: torch.Tensor, onehot: torch.Tensor, dim: int = 1) -> torch.Tensor:
        dtype = score.dtype
        _, _, lo, hi = self._on(onehot.device, dtype)
        shape = [1] * score.dim()
        shape[dim] = -1
        return (score - lo.view(shape)) / (hi - lo).view(shape)


def log_odds(counts: torch.Tensor, background: float = 0.25) -> torch.Tensor:
    """Counts ``[4, l]`` -> log2 odds ``[4, l]`` against a uniform background, pseudocount sqrt(N) per column."""
    total = counts.sum(dim=0, keepdim=True)
    pseudo = total.clamp(min=1.0).sqrt()
    probs = (counts + background * pseudo) / (total + pseudo)
    return torch.log2(probs / background)


# ------------------------------------------------------------------- export
def export(path: Path = MOTIF_FILE, release: str | None = None) -> dict[str, Any]:
    """Write the CORE vertebrate matrices (latest version of each) of a JASPAR release via pyjaspar."""
    try:
        import pyjaspar
        from pyjaspar import jaspardb
    except ImportError:
        raise ImportError("exporting motifs needs pyjaspar: pip install 'design-workbench[motifs]'") from None
    db = jaspardb(release=release) if release else jaspardb()
    records = db.fetch_motifs(collection="CORE", tax_group=["vertebrates"], all_versions=False)
    motifs = []
    for rec in sorted(records, key=lambda r: r.matrix_id):
        counts = [[int(v) if float(v).is_integer() else round(float(v), 4) for v in rec.counts[b]] for b in ALPHABET]
        motifs.append({"matrix_id": rec.matrix_id, "name": rec.name, "counts": counts})
    blob = {"source": "JASPAR", "release": db.release, "collection": "CORE", "tax_group": "vertebrates",
            "versions": "latest", "pyjaspar": getattr(pyjaspar, "__version__", "unknown"),
            "licence": "CC BY 4.0 (https://jaspar.elixir.no/faq/)", "motifs": motifs}
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(json.dumps(blob, separators=(",", ":")).encode())
    _read.cache_clear()
    return blob


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.dna.motifs", description=__doc__.split("\n")[0])
    parser.add_argument("--export", action="store_true", help="write the motif file from pyjaspar")
    parser.add_argument("--release", default=None, help="JASPAR release, e.g. JASPAR2024 (default: pyjaspar's latest)")
    parser.add_argument("--out", type=Path, default=MOTIF_FILE)
    args = parser.parse_args(argv)
    if not args.export:
        motifs = MotifSet.load(path=args.out)
        print(f"{motifs!r} in {args.out}; longest {int(motifs.lengths.max())} bp")
        return 0
    blob = export(args.out, args.release)
    print(f"{args.out}: {len(blob['motifs'])} motifs from {blob['release']} CORE vertebrates "
          f"({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
