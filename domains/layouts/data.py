"""The shipped page-layout data set: 12,164 real typeset pages (632 PDFs) of Debian's ``texlive-publishers-doc``,
each a list of up to 25 elements (class and box), as extracted with pdfplumber (see ``docs/data.md``).

Splits are by PDF, never by page, so pages of one document (which share a template) never fall in two splits:
a PDF's split is fixed by a SHA-256 hash of its path (80 % train, 10 % valid, 10 % test of the PDFs).
Tensor form: classes ``[n, 25]`` int64 (index into ``CLASSES``, -1 where no element) and boxes ``[n, 25, 4]``
float32 ``(x, y, w, h)`` normalized to the page, ``(x, y)`` the top-left corner, 0 where no element. Elements
keep the file's order (the extraction's reading order) and fill the first slots; absent ones come last.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

DATA_DIR = Path(__file__).resolve().parent / "data"
DATA_FILE = DATA_DIR / "texlive_page_layouts.jsonl.gz"
CLASSES = ("text", "title", "list", "table", "figure")
MAX_ELEMENTS = 25
SPLITS = ("train", "valid", "test")
#: tolerance of :func:`from_elements` for boxes that overrun the page by rounding (x and w given to 5 decimals)
PAGE_TOLERANCE = 1e-5

_CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}


@lru_cache(maxsize=1)
def _read() -> pd.DataFrame:
    if not DATA_FILE.exists():
        raise FileNotFoundError(f"layout data file {DATA_FILE} is missing (it ships with the repository)")
    frame = pd.read_json(DATA_FILE, lines=True, dtype={"pdf": str, "licence": str})
    return frame[["pdf", "page", "width", "height", "licence", "elements"]]


def load_pages() -> pd.DataFrame:
    """All pages in file order (columns ``pdf, page, width, height, licence, elements``); a copy of a cached
    table (the ``elements`` lists are shared: do not mutate them)."""
    return _read().copy()


def split_of(pdf: str) -> str:
    """The split of a PDF (path as in the ``pdf`` column): the first 8 bytes of SHA-256 of the path, mod 10:
    0-7 train, 8 valid, 9 test. Deterministic across processes and machines (unlike ``hash``)."""
    bucket = int.from_bytes(hashlib.sha256(pdf.encode("utf-8")).digest()[:8], "big") % 10
    return "train" if bucket < 8 else ("valid" if bucket == 8 else "test")


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    return split


@lru_cache(maxsize=1)
def _tensors() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """(classes, boxes) of every page, the split name and the PDF index (file order) of each page."""
    frame = _read()
    classes, boxes = from_elements(frame["elements"].tolist(), clip=True)
    splits = np.array([split_of(p) for p in frame["pdf"]])
    pdf_index = pd.factorize(frame["pdf"])[0]
    return classes, boxes, splits, pdf_index


def split_rows(split: str, max_per_pdf: int | None = 20, seed: int = 0) -> np.ndarray:
    """Row numbers (into :func:`load_pages`, increasing) of the pages :func:`load_split` returns."""
    _check_split(split)
    if max_per_pdf is not None and (isinstance(max_per_pdf, bool) or not isinstance(max_per_pdf, int)
                                    or max_per_pdf < 1):
        raise ValueError(f"max_per_pdf must be a positive integer or None, got {max_per_pdf!r}")
    _, _, splits, pdf_index = _tensors()
    keep = splits == split
    if max_per_pdf is not None:
        generator = torch.Generator().manual_seed(seed)
        keys = torch.rand(len(splits), generator=generator, dtype=torch.float64).numpy()
        order = np.lexsort((keys, pdf_index))  # by PDF, then by random key
        starts = np.r_[0, np.flatnonzero(np.diff(pdf_index[order])) + 1]
        group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - group_start  # rank of each page's key within its PDF
        keep &= rank < max_per_pdf
    return np.flatnonzero(keep)


def load_split(split: str, max_per_pdf: int | None = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(classes ``[n, 25]`` int64 in 0..4 or -1, boxes ``[n, 25, 4]`` float32 clipped to [0, 1]) of a split.

    ``max_per_pdf``: keep at most this many pages of each PDF (a few long manuals would dominate otherwise),
    chosen uniformly by a ``torch.Generator`` seeded with ``seed`` (one random key per page of the whole file,
    so a PDF's selection does not depend on the split); None keeps every page. Pages stay in file order
    (:func:`split_rows` gives their rows in :func:`load_pages`).
    """
    classes, boxes, _, _ = _tensors()
    index = torch.from_numpy(split_rows(split, max_per_pdf, seed))
    return classes[index].clone(), boxes[index].clone()


def from_elements(pages: list[list[dict]], clip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """JSON form (a list of pages, each a list of ``{"class": str, "box": [x, y, w, h]}``) -> (classes
    ``[n, 25]`` int64, boxes ``[n, 25, 4]`` float32), elements in the given order, absent ones padded at the end.

    Raises a ValueError naming the page and element for more than 25 elements, an unknown class, a box that is
    not 4 finite numbers, has ``w`` or ``h <= 0``, or leaves the page by more than ``PAGE_TOLERANCE``.
    ``clip=True`` then clips the corners to [0, 1] (the rounding overruns).
    """
    n = len(pages)
    classes = np.full((n, MAX_ELEMENTS), -1, dtype=np.int64)
    boxes = np.zeros((n, MAX_ELEMENTS, 4), dtype=np.float64)
    for i, page in enumerate(pages):
        if len(page) > MAX_ELEMENTS:
            raise ValueError(f"page {i} has {len(page)} elements; at most {MAX_ELEMENTS} are allowed")
        for j, element in enumerate(page):
            name = element.get("class") if isinstance(element, dict) else None
            if name not in _CLASS_INDEX:
                raise ValueError(f"page {i}, element {j}: unknown class {name!r}; choose from {CLASSES}")
            box = element.get("box")
            if not isinstance(box, (list, tuple)) or len(box) != 4:
                raise ValueError(f"page {i}, element {j}: box must be [x, y, w, h], got {box!r}")
            classes[i, j] = _CLASS_INDEX[name]
            boxes[i, j] = box
    present = classes >= 0
    _check_boxes(boxes, present, "page {i}, element {j}")
    if clip:
        boxes = _clip(boxes, present)
    return torch.from_numpy(classes), torch.from_numpy(boxes.astype(np.float32))


def to_elements(classes: torch.Tensor, boxes: torch.Tensor, digits: int = 5) -> list[list[dict]]:
    """(classes ``[n, 25]``, boxes ``[n, 25, 4]``) -> JSON form, present elements in slot order, box values
    rounded to ``digits``. Raises a ValueError for a class outside -1..4 or an invalid present box."""
    classes, boxes = check_layout(classes, boxes)
    cls, box = classes.cpu().numpy(), boxes.detach().cpu().to(torch.float64).numpy()
    _check_boxes(box, cls >= 0, "layout {i}, slot {j}")
    return [[{"class": CLASSES[c], "box": [round(float(v), digits) for v in box[i, j]]}
             for j, c in enumerate(row) if c >= 0] for i, row in enumerate(cls)]


def check_layout(classes: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check the shapes ``[n, L]`` / ``[n, L, 4]`` and class range -1..4; returns (classes as int64, boxes)."""
    if not isinstance(classes, torch.Tensor) or classes.dim() != 2 or classes.dtype.is_floating_point:
        raise ValueError(f"classes must be an integer tensor [n, L], got "
                         f"{list(classes.shape) if isinstance(classes, torch.Tensor) else type(classes).__name__}")
    if not isinstance(boxes, torch.Tensor) or boxes.shape != (*classes.shape, 4):
        raise ValueError(f"boxes must be a tensor [n, L, 4] = {[*classes.shape, 4]}, got "
                         f"{list(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__}")
    if classes.numel() and (int(classes.min()) < -1 or int(classes.max()) >= len(CLASSES)):
        bad = int(classes.min()) if int(classes.min()) < -1 else int(classes.max())
        raise ValueError(f"unknown class index {bad}; classes must lie in -1 (absent)..{len(CLASSES) - 1} {CLASSES}")
    return classes.long(), boxes


def _check_boxes(boxes: np.ndarray, present: np.ndarray, where: str) -> None:
    """ValueError for the first present box with NaN/inf, w or h <= 0, or outside the page (with tolerance)."""
    x, y, w, h = np.moveaxis(boxes, -1, 0)
    with np.errstate(invalid="ignore"):
        checks = (
            (~np.isfinite(boxes).all(-1), "is not finite"),
            ((w <= 0) | (h <= 0), "has w or h <= 0"),
            ((x < -PAGE_TOLERANCE) | (y < -PAGE_TOLERANCE) | (x + w > 1 + PAGE_TOLERANCE)
             | (y + h > 1 + PAGE_TOLERANCE), "leaves the page [0, 1]"),
        )
    for bad, problem in checks:
        hits = np.argwhere(bad & present)
        if len(hits):
            i, j = (int(v) for v in hits[0])
            raise ValueError(f"{where.format(i=i, j=j)}: box {boxes[i, j].tolist()} {problem}")


def _clip(boxes: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Clip the corners of present boxes to [0, 1]; absent boxes stay 0."""
    lo = np.clip(boxes[..., :2], 0.0, 1.0)
    hi = np.clip(boxes[..., :2] + boxes[..., 2:], 0.0, 1.0)
    return np.where(present[..., None], np.concatenate([lo, hi - lo], axis=-1), 0.0)


def page_counts(max_per_pdf: int | None = None) -> dict[str, int]:
    """Number of pages per split (with the cap ``max_per_pdf``, seed 0)."""
    return {s: int(load_split(s, max_per_pdf)[0].shape[0]) for s in SPLITS}


def pdf_counts() -> dict[str, int]:
    """Number of PDFs per split."""
    pdfs = _read()["pdf"].unique()
    return {s: sum(split_of(p) == s for p in pdfs) for s in SPLITS}

