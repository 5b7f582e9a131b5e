"""Sequence logos on a matplotlib Axes: the picture of a set of DNA or protein designs.

Each position shows the letters of the sequences stacked, each as tall as its frequency times the position's
information content (``log2(|alphabet|)`` minus the entropy of the letter frequencies), the most frequent on
top, as in Schneider and Stephens (1990). One sequence gives full-height letters; positions where the
designs disagree shrink. Long sequences wrap into rows of ``per_row`` positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

#: the usual nucleotide colours (A green, C blue, G orange, T red)
NUCLEOTIDE_COLOURS: dict[str, str] = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839"}
#: amino acids by chemistry: polar green, amide purple, basic blue, acidic red, hydrophobic black
AMINO_ACID_COLOURS: dict[str, str] = {
    **{a: "#109648" for a in "GSTYC"}, **{a: "#8E44AD" for a in "NQ"}, **{a: "#255C99" for a in "KRH"},
    **{a: "#D62839" for a in "DE"}, **{a: "#222222" for a in "AVLIPWFM"}}


def letter_heights(sequences: Sequence[str], alphabet: str) -> np.ndarray:
    """Heights ``[length, |alphabet|]`` in bits of the letters of equal-length ``sequences`` at each position."""
    if not sequences:
        raise ValueError("a logo needs at least one sequence")
    length = len(sequences[0])
    if any(len(s) != length for s in sequences):
        raise ValueError(f"a logo needs sequences of one length; got lengths {sorted({len(s) for s in sequences})}")
    index = {a: j for j, a in enumerate(alphabet)}
    counts = np.zeros((length, len(alphabet)))
    for k, seq in enumerate(sequences):
        for i, letter in enumerate(seq):
            if letter not in index:
                raise ValueError(f"sequence {k} has {letter!r} at position {i}, not in the alphabet {alphabet!r}")
            counts[i, index[letter]] += 1
    freq = counts / len(sequences)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(freq > 0, freq * np.log2(freq), 0.0), axis=1)
    info = np.log2(len(alphabet)) - entropy  # [length]
    return freq * info[:, None]


@lru_cache(maxsize=64)
def _glyph(letter: str) -> tuple[Any, tuple[float, float, float, float]]:
    """The outline of ``letter`` in a bold sans font and its extents (x0, y0, x1, y1)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
    v = path.vertices
    return path, (float(v[:, 0].min()), float(v[:, 1].min()), float(v[:, 0].max()), float(v[:, 1].max()))


def _letter(ax: Any, letter: str, x: float, y: float, height: float, colour: str) -> None:
    """Draw ``letter`` as tall as ``height`` from ``y``, in the column [x, x + 0.9]: wide letters fill it, narrow
    ones (I, J, L) keep their proportion to the others and are centred, so an I stays a bar and not a block."""
    from matplotlib.patches import PathPatch
    from matplotlib.transforms import Affine2D

    path, (x0, y0, x1, y1) = _glyph(letter)
    sx = 0.9 / max(x1 - x0, 0.62)
    left = x + (0.9 - sx * (x1 - x0)) / 2
    fit = Affine2D().translate(-x0, -y0).scale(sx, height / (y1 - y0)).translate(left, y)
    ax.add_patch(PathPatch(fit.transform_path(path), facecolor=colour, edgecolor="none"))


def sequence_logo(sequences: Sequence[str], alphabet: str, colours: Mapping[str, str], ax: Any = None,
                  per_row: int = 50, reference: str | None = None, reference_label: str = "native",
                  title: str | None = None) -> Any:
    """Draw the logo of ``sequences`` (equal lengths, letters of ``alphabet``) on ``ax`` (a new figure sized for
    the rows when None); ``reference``: one sequence written in small grey letters under each row (e.g. a
    protein's native sequence), a letter in red where it differs from the logo's most frequent one.
    Returns the Axes."""
    import matplotlib.pyplot as plt

    heights = letter_heights(list(sequences), alphabet)
    length = heights.shape[0]
    if reference is not None and len(reference) != length:
        raise ValueError(f"reference has length {len(reference)}; the sequences have {length}")
    per_row = max(1, min(int(per_row), length))
    rows = -(-length // per_row)
    top = float(np.log2(len(alphabet)))
    pitch = top + (1.3 if reference is not None else 0.9)  # row height in bits, with room for labels
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.2 * per_row + 1.2), 0.6 + 0.3 * pitch * rows))
    consensus = heights.argmax(axis=1)
    for i in range(length):
        r, c = divmod(i, per_row)
        base = -r * pitch
        y = base
        for j in np.argsort(heights[i], kind="stable"):  # smallest at the bottom, most frequent on top
            if heights[i, j] > 1e-3:
                _letter(ax, alphabet[j], c + 0.05, y, heights[i, j], colours.get(alphabet[j], "#555555"))
                y += heights[i, j]
        if (i + 1) % 10 == 0 or c == 0:
            ax.text(c + 0.5, base - 0.12, str(i + 1), ha="center", va="top", fontsize=6, color="0.35")
        if reference is not None:
            differs = reference[i] != alphabet[consensus[i]] or heights[i].sum() < 1e-3
            ax.text(c + 0.5, base - 0.62, reference[i], ha="center", va="top", fontsize=6, family="monospace",
                    color="#D62839" if differs else "0.55")
    for r in range(rows):
        base = -r * pitch
        ax.plot([-0.6, -0.6], [base, base + top], color="0.3", lw=0.8)
        ax.text(-0.9, base + top / 2, f"{top:.3g} bits", rotation=90, ha="right", va="center", fontsize=6)
        if reference is not None:
            ax.text(-0.9, base - 0.75, reference_label, ha="right", va="center", fontsize=6, color="0.4")
    ax.set_xlim(-2.6 if reference is not None else -1.8, per_row + 0.2)
    ax.set_ylim(-(rows - 1) * pitch - pitch + top + 0.05, top + 0.1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax
