"""Page-layout design: token rows of up to 25 elements (class, x, y, w, h), scored by layout quality rewards.

Objectives (any subset; every one is an error, minimized, 0 at best):
  - ``"alignment"``: LayoutGAN++ alignment (``metrics.alignment``);
  - ``"overlap"``: LayoutGAN++ overlap (``metrics.overlap``);
  - ``"coverage"``: how far the union area of the boxes lies outside ``coverage=(lo, hi)`` of the page;
  - ``"margins"``: total length by which boxes reach into a page margin of ``margin`` (fraction of the page);
  - ``"reading_order"``: how far later elements start above earlier ones in the same column.
``evaluate`` scores token rows exactly; ``evaluate_soft`` scores relaxed token probabilities through the expected
boxes (``Tokenizer.expected_boxes``), equal to ``evaluate`` on one-hot rows, for gradient-based samplers.
Conditional generation (classes given, classes and sizes given, completion) is a :class:`Partial` of fixed tokens
(``partial``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from workbench.domain import Domain
from workbench.generative import MaskedDiffusion, Partial
from workbench.objectives import Objective, as_objectives
from workbench.spaces import SequenceSpace

from . import rewards
from .data import CLASSES, MAX_ELEMENTS, load_split, to_elements
from .prior import CONFIGS as PRIOR_CONFIGS
from .prior import load_prior
from .tokens import ATTRIBUTES, N_CLASSES, PAD, TOKENS_PER_ELEMENT, Tokenizer, default_tokenizer

OBJECTIVES = ("alignment", "overlap", "coverage", "margins", "reading_order")
#: the conditional tasks of ``partial``: which of an element's five tokens are given
TASKS = {"c_to_sp": (0,), "cs_to_p": (0, 3, 4), "completion": None}


class LayoutSpace(SequenceSpace):
    """Layout token rows ``[n, 125]`` over the tokenizer's vocabulary (shown as ``text x07 y12 w30 h02 ...``).

    ``invalid_rows`` also rejects a token that does not belong at its position (a coordinate where a class goes)
    and a page without any whole element. An element whose five tokens mix PAD and non-PAD (a masked prior draws
    the tokens of one element independently, so it can happen) is *broken*: decoding leaves it out, as LayoutDM
    does, and ``broken_elements`` counts them. ``sample`` draws uniform random layouts (each element present with
    probability 1/2)."""

    def __init__(self, tokenizer: Tokenizer | None = None) -> None:
        self.tokenizer = tokenizer or default_tokenizer()
        names = [*CLASSES, "PAD"] + [f"{a}{k:02d}" for a in ATTRIBUTES for k in range(self.tokenizer.bins)]
        super().__init__(names, self.tokenizer.length, separator=" ")

    def invalid_rows(self, x: torch.Tensor) -> dict[int, str]:
        bad = super().invalid_rows(x)
        rows = [r for r in range(len(x)) if r not in bad]
        if not rows:
            return bad
        tokens = x[rows].long()
        allowed = self.tokenizer.allowed().to(tokens.device)
        misplaced = ~allowed[torch.arange(tokens.shape[1], device=tokens.device), tokens]
        whole = ~(tokens.view(len(rows), MAX_ELEMENTS, TOKENS_PER_ELEMENT) == PAD).any(-1)
        for i, r in enumerate(rows):
            if misplaced[i].any():
                col = int(torch.nonzero(misplaced[i]).flatten()[0])
                kind = "class" if col % TOKENS_PER_ELEMENT == 0 else ATTRIBUTES[col % TOKENS_PER_ELEMENT - 1]
                bad[r] = f"token {self.alphabet[int(tokens[i, col])]!r} at position {col} is not a {kind} token"
            elif not whole[i].any():
                bad[r] = "the layout has no element"
        return dict(sorted(bad.items()))

    def broken_elements(self, x: torch.Tensor) -> torch.Tensor:
        """Elements per layout ``[n]`` whose tokens mix PAD and non-PAD (left out when decoding)."""
        pad = self.check_batch(x).view(len(x), MAX_ELEMENTS, TOKENS_PER_ELEMENT) == PAD
        return (pad.any(-1) & ~pad.all(-1)).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        g = generator
        dev = device if device is not None else (g.device if g is not None else "cpu")
        present = torch.rand(n, MAX_ELEMENTS, generator=g, device=dev) < 0.5
        present[:, 0] = True
        classes = torch.randint(0, N_CLASSES, (n, MAX_ELEMENTS), generator=g, device=dev)
        bins = torch.randint(0, self.tokenizer.bins, (n, MAX_ELEMENTS, 4), generator=g, device=dev)
        offsets = torch.tensor([self.tokenizer.offset(a) for a in range(4)], device=dev)
        elements = torch.cat([classes.unsqueeze(-1), bins + offsets], dim=-1)
        elements = torch.where(present.unsqueeze(-1), elements, PAD)
        return elements.reshape(n, self.tokenizer.length)


class PageLayouts(Domain):
    """Page layouts as tokens (see the module docstring).

    >>> dom = PageLayouts(objectives=("alignment", "overlap"))
    >>> x = dom.encode(*dom.dataset_split("test"))          # [n, 125] tokens of real test pages
    >>> dom.evaluate(x)                                     # {"alignment": [n], "overlap": [n]}, float64
    """

    name = "page_layouts"

    def __init__(self, objectives: Sequence[str | tuple | Objective] | str = ("alignment", "overlap"),
                 coverage: tuple[float, float] = (0.2, 0.5), margin: float = 0.05, prior: str = "full",
                 device: str | torch.device | None = None) -> None:
        objs = as_objectives(objectives, default="minimize")
        bad = [o.name for o in objs if o.name not in OBJECTIVES]
        if bad:
            raise ValueError(f"unknown objectives {bad}; choose from {list(OBJECTIVES)}")
        if prior not in PRIOR_CONFIGS:
            raise ValueError(f"prior must be one of {sorted(PRIOR_CONFIGS)}, got {prior!r}")
        super().__init__(LayoutSpace(), objs)
        self.tokenizer = self.space.tokenizer
        self.coverage = (float(coverage[0]), float(coverage[1]))
        self.margin = float(margin)
        rewards.coverage_reward(torch.ones(1, 1), torch.full((1, 1, 4), 0.1), *self.coverage)  # checks the range
        rewards.margin_reward(torch.ones(1, 1), torch.full((1, 1, 4), 0.1), self.margin)
        self.prior_config = prior
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    # ------------------------------------------------------------------ scoring
    def scores(self, presence: torch.Tensor, boxes: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every objective ``[n]`` (errors, lower is better) of soft layouts: presence ``[n, 25]``, boxes
        ``[n, 25, 4]``; differentiable in both."""
        names = {o.name for o in self.objectives}
        out = {}
        if "alignment" in names:
            out["alignment"] = -rewards.alignment_reward(presence, boxes)
        if "overlap" in names:
            out["overlap"] = -rewards.overlap_reward(presence, boxes)
        if "coverage" in names:
            out["coverage"] = -rewards.coverage_reward(presence, boxes, *self.coverage)
        if "margins" in names:
            out["margins"] = -rewards.margin_reward(presence, boxes, self.margin)
        if "reading_order" in names:
            out["reading_order"] = -rewards.reading_order_reward(presence, boxes)
        return {o.name: out[o.name] for o in self.objectives}

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives by name, each ``[n]`` float64, of token rows ``x: [n, 125]`` (rows that are no layout are
        reported by ``space.invalid_rows`` first)."""
        classes, boxes = self.decode_tensors(x)
        with torch.no_grad():
            return {k: v.to(torch.float64) for k, v in self.scores(rewards.hard_presence(classes), boxes).items()}

    def evaluate_soft(self, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable objectives ``[n]`` of relaxed token rows ``probs [n, 125, V]`` (or ``V + 1`` with the
        prior's MASK column, ignored); equal to :meth:`evaluate` on one-hot rows."""
        if not probs.dtype.is_floating_point:
            raise TypeError(f"evaluate_soft expects float probabilities [n, 125, V], got {probs.dtype}; "
                            "use evaluate() for tokens")
        if probs.dim() == 3 and probs.shape[-1] == self.tokenizer.vocab_size + 1:
            probs = probs[..., :-1]
        presence, _, boxes = self.tokenizer.expected_boxes(probs)
        return self.scores(presence, boxes)

    # ------------------------------------------------------------- layouts
    def encode(self, classes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Layouts (classes ``[n, 25]`` in -1..4, boxes ``[n, 25, 4]`` x, y, w, h) -> tokens ``[n, 125]``."""
        return self.tokenizer.encode(classes, boxes)

    def decode_tensors(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``[n, 125]`` -> (classes ``[n, 25]``, boxes ``[n, 25, 4]``); broken elements left out, and a box
        whose independently quantized x and w (or y and h) overrun the page shrunk to its edge."""
        return self.tokenizer.decode(self.space.check_batch(torch.as_tensor(x)), clip=True)

    def decode(self, x: torch.Tensor) -> list[list[dict]]:
        """Tokens -> one list of ``{"class", "box"}`` elements per layout (the data file's form)."""
        return to_elements(*self.decode_tensors(x))

    def dataset_split(self, split: str, max_per_pdf: int | None = 20, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """(classes, boxes) of a split of the real pages (see ``data.load_split``)."""
        return load_split(split, max_per_pdf=max_per_pdf, seed=seed)

    def dataset(self) -> pd.DataFrame:
        from .data import load_pages

        return load_pages()

    def prior(self) -> MaskedDiffusion:
        """The masked-diffusion layout prior (``prior="full"`` or ``"tiny"``)."""
        return load_prior(self.prior_config, self.device)

    def partial(self, task: str, classes: torch.Tensor, boxes: torch.Tensor, keep: float = 0.2) -> Partial:
        """Fixed tokens for a conditional task, one row per layout of ``(classes, boxes)``:
        ``"c_to_sp"`` (classes given; absent elements stay absent), ``"cs_to_p"`` (classes, widths and heights
        given), ``"completion"`` (the first ``ceil(keep * elements)`` elements given, at least one)."""
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {sorted(TASKS)}")
        tokens = self.encode(classes, boxes)
        elements = tokens.view(len(tokens), MAX_ELEMENTS, TOKENS_PER_ELEMENT)
        absent = elements[..., 0] == PAD
        if TASKS[task] is None:
            count = (~absent).sum(1, keepdim=True)
            given = torch.arange(MAX_ELEMENTS).unsqueeze(0) < torch.ceil(count * keep).clamp(min=1)
            mask = given.unsqueeze(-1).expand(-1, -1, TOKENS_PER_ELEMENT)
        else:
            which = torch.zeros(TOKENS_PER_ELEMENT, dtype=torch.bool)
            which[list(TASKS[task])] = True
            mask = which.expand(len(tokens), MAX_ELEMENTS, -1) | absent.unsqueeze(-1)
        return Partial(tokens, mask.reshape(len(tokens), -1), row_masks=True)

    # ------------------------------------------------------------- pictures
    def render(self, x: torch.Tensor, ax: Any = None, per_row: int = 6, titles: Sequence[str] | None = None) -> Any:
        """Draw the layouts ``x [n, 125]`` in a grid (boxes coloured by class); returns the figure."""
        from .render import draw_grid

        classes, boxes = self.decode_tensors(x)
        return draw_grid(classes, boxes, fig=ax, per_row=per_row, titles=titles)

    def describe(self) -> dict[str, Any]:
        spec = super().describe()
        spec["settings"] = {"prior": self.prior_config, "coverage": list(self.coverage), "margin": self.margin}
        return spec
