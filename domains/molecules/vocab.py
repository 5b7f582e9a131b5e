"""The fixed SELFIES vocabulary of the molecule domain (``data/selfies_vocab.json``), read with no chemistry
package: the prior and its training script need only this file and torch.

Tokens are SELFIES symbols (``[C]``, ``[=O]``, ``[Ring1]``, ...) in the order of the file (most frequent in the
MOSES training set first); a design is a row of ``LENGTH`` token ids, right-padded with ``PAD = len(ALPHABET)``.
Written by ``python -m domains.molecules.prepare_data``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
VOCAB_FILE = DATA_DIR / "selfies_vocab.json"


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, Any]:
    """The vocabulary record: ``alphabet`` (list of SELFIES symbols), ``length`` (tokens per design) and how
    they were chosen (``source``, ``molecules``, ``kept``, ``length_quantile``, ``counts``)."""
    if not VOCAB_FILE.exists():
        raise FileNotFoundError(f"{VOCAB_FILE} is missing (it ships with the repository; rebuild it with "
                                "`python -m domains.molecules.prepare_data`)")
    record = json.loads(VOCAB_FILE.read_text())
    if len(record["alphabet"]) != len(set(record["alphabet"])) or record["length"] < 1:
        raise ValueError(f"{VOCAB_FILE} is corrupt: repeated symbols or a bad length")
    return record


def alphabet() -> list[str]:
    """SELFIES symbols, token id = position."""
    return list(vocabulary()["alphabet"])


def length() -> int:
    """Tokens per design (longer molecules were dropped from the training data)."""
    return int(vocabulary()["length"])


def pad_index() -> int:
    """The padding token id (one past the last symbol), as in ``SequenceSpace``."""
    return len(vocabulary()["alphabet"])
