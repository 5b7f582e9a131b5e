"""Grids of molecule drawings (RDKit) on a matplotlib Axes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit.Chem import Draw

from .chem import parse


def draw_grid(smiles: Sequence[str | None], legends: Sequence[str] | None = None, ax: Any = None,
              per_row: int = 4, size: int = 250) -> Any:
    """Draw molecules (None or invalid SMILES: an empty panel) in a grid on ``ax`` (a new figure when None);
    ``legends`` (default: the SMILES) go under the panels. Returns the Axes."""
    import matplotlib.pyplot as plt

    if not smiles:
        raise ValueError("nothing to draw: no molecules")
    mols = [(parse(s)[0] if s else None) or Chem.Mol() for s in smiles]
    labels = list(legends) if legends is not None else [s or "(no molecule)" for s in smiles]
    if len(labels) != len(mols):
        raise ValueError(f"got {len(labels)} legends for {len(mols)} molecules")
    per_row = max(1, min(per_row, len(mols)))
    image = Draw.MolsToGridImage(mols, molsPerRow=per_row, subImgSize=(size, size), legends=labels,
                                 returnPNG=False)
    if ax is None:
        rows = -(-len(mols) // per_row)
        _, ax = plt.subplots(figsize=(2.5 * per_row, 2.5 * rows))
    ax.imshow(np.asarray(image))
    ax.set_axis_off()
    return ax
