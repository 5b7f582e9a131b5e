"""Page layouts: real typeset pages (boxes of text, title, list, table and figure elements), a masked-diffusion
prior over their tokens with a corrector, layout metrics (alignment, overlap, max IoU, FID) and rewards.

``PageLayouts``: ``LayoutSpace`` token rows (25 elements x class, x, y, w, h) scored by alignment, overlap,
coverage, margin and reading-order errors, exactly (``evaluate``) or through expected boxes (``evaluate_soft``);
``partial`` builds the conditional tasks. ``load_prior`` / ``load_corrector``: the shipped models. See
``docs/layouts.md``.
"""

from .data import CLASSES, MAX_ELEMENTS, SPLITS, load_split
from .domain import OBJECTIVES, TASKS, LayoutSpace, PageLayouts
from .prior import load_corrector, load_prior
from .tokens import Tokenizer, default_tokenizer

__all__ = ["PageLayouts", "LayoutSpace", "OBJECTIVES", "TASKS", "CLASSES", "MAX_ELEMENTS", "SPLITS", "load_split",
           "load_prior", "load_corrector", "Tokenizer", "default_tokenizer"]
