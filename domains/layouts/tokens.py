"""LayoutDM tokenization of page layouts (Inoue et al. 2023): 25 elements x 5 tokens (class, x, y, w, h) = 125.

One shared vocabulary of 134 tokens: the class tokens 0..4 (``data.CLASSES``), one PAD token (5) that fills all
five positions of an absent element, then 32 x bins (6..37), 32 y bins (38..69), 32 w bins (70..101) and 32 h
bins (102..133). Present elements come first in their order, absent ones are padded at the end. Each box
attribute (``x, y`` the top-left corner, ``w, h``; ``data``'s box form) is quantized to its nearest bin centre;
the centres are either fitted by 1-D k-means on the train split's boxes (``kind="kmeans"``, as LayoutDM, shipped
in ``data/bins.json``) or uniform, ``(k + 0.5) / 32`` (``kind="uniform"``). (LayoutDM quantizes the box centre
``cx, cy`` instead of the corner; its uniform bins are ``k / 32`` for positions and ``(k + 1) / 32`` for sizes.) Rewrite ``bins.json`` with
``python -m domains.layouts.tokens``.
"""

from __future__ import annotations

import json
from functools import lru_cache

import torch

from .data import CLASSES, DATA_DIR, MAX_ELEMENTS, check_layout

BINS_FILE = DATA_DIR / "bins.json"
ATTRIBUTES = ("x", "y", "w", "h")
N_CLASSES = len(CLASSES)
PAD = N_CLASSES  # token id 5
TOKENS_PER_ELEMENT = 1 + len(ATTRIBUTES)
LENGTH = MAX_ELEMENTS * TOKENS_PER_ELEMENT
KINDS = ("kmeans", "uniform")


def fit_bins(boxes: torch.Tensor, presence: torch.Tensor, bins: int = 32, max_iter: int = 300) -> dict:
    """1-D k-means bin centres of each box attribute over the present boxes: ``{"kind": "kmeans", "bins": bins,
    "x": [...], "y": [...], "w": [...], "h": [...]}`` (each ``bins`` increasing centres).

    ``boxes [n, L, 4]``, ``presence [n, L]`` bool. Lloyd's algorithm on the values, initialized at the quantiles
    ``(k + 0.5) / bins``; a cluster that is empty (e.g. two initial centres on the same repeated value, common
    for page margins) is re-seeded at the value farthest from its centre. Deterministic (no random draws).
    """
    if boxes.dim() != 3 or boxes.shape[-1] != 4 or presence.shape != boxes.shape[:2]:
        raise ValueError(f"expected boxes [n, L, 4] and presence [n, L], got {list(boxes.shape)} and "
                         f"{list(presence.shape)}")
    values = boxes[presence.bool()].to(torch.float64)  # [m, 4]
    if len(values) < bins:
        raise ValueError(f"need at least {bins} present boxes to fit {bins} bins, got {len(values)}")
    if not torch.isfinite(values).all():
        raise ValueError("boxes hold NaN or infinite values")
    out: dict = {"kind": "kmeans", "bins": bins}
    for a, name in enumerate(ATTRIBUTES):
        out[name] = [round(float(c), 6) for c in _kmeans_1d(values[:, a], bins, max_iter)]
    return out


def _kmeans_1d(v: torch.Tensor, k: int, max_iter: int) -> torch.Tensor:
    """Lloyd's algorithm in 1-D on values ``v [m]`` float64 -> ``k`` sorted centres."""
    unique, counts = torch.unique(v, return_counts=True)  # weighted unique values: same result, faster
    if len(unique) < k:
        raise ValueError(f"only {len(unique)} distinct values; cannot fit {k} bins")
    w = counts.to(torch.float64)
    centres = torch.quantile(v, (torch.arange(k, dtype=torch.float64) + 0.5) / k)
    assign = None
    for _ in range(max_iter):
        centres = centres.sort().values
        new = _nearest(unique, centres)
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, new, unique * w)
        mass = torch.zeros(k, dtype=torch.float64).index_add_(0, new, w)
        empty = mass == 0
        centres = torch.where(empty, centres, sums / mass.clamp(min=1e-300))
        if empty.any():  # re-seed empty clusters at the worst-served distinct values
            err = (unique - centres[new]).abs()
            far = err.argsort(descending=True)[: int(empty.sum())]
            centres[empty.nonzero().squeeze(1)] = unique[far]
        elif assign is not None and torch.equal(new, assign):
            break
        assign = new
    return centres.sort().values


def _nearest(values: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest of the sorted ``centres [k]`` for each value (ties to the lower bin)."""
    return torch.bucketize(values, (centres[1:] + centres[:-1]) / 2)


def uniform_bins(bins: int = 32) -> dict:
    """Uniform bin centres ``(k + 0.5) / bins`` for every attribute (in the form of :func:`fit_bins`)."""
    centres = [(k + 0.5) / bins for k in range(bins)]
    return {"kind": "uniform", "bins": bins, **{name: list(centres) for name in ATTRIBUTES}}


class Tokenizer:
    """Layouts (classes ``[n, 25]``, boxes ``[n, 25, 4]``) <-> tokens ``[n, 125]`` int64 (see the module doc).

    ``kind="kmeans"`` takes the centres from ``centres`` (a :func:`fit_bins` dict) or, when None, from
    ``data/bins.json``; ``kind="uniform"`` uses ``(k + 0.5) / bins``.
    """

    def __init__(self, kind: str = "kmeans", centres: dict | None = None, bins: int = 32):
        if kind not in KINDS:
            raise ValueError(f"unknown bin kind {kind!r}; choose from {KINDS}")
        if kind == "uniform":
            centres = uniform_bins(bins) if centres is None else centres
        elif centres is None:
            centres = json.loads(BINS_FILE.read_text())
        self.kind = kind
        self.bins = int(centres.get("bins", len(centres["x"])))
        table = []
        for name in ATTRIBUTES:
            c = torch.tensor(centres[name], dtype=torch.float32)
            if c.shape != (self.bins,) or not bool((c[1:] > c[:-1]).all()):
                raise ValueError(f"bin centres of {name!r} must be {self.bins} increasing values")
            table.append(c)
        self.centres = torch.stack(table)  # [4, bins]
        self.vocab_size = N_CLASSES + 1 + len(ATTRIBUTES) * self.bins
        self.length = LENGTH
        self.pad = PAD

    def offset(self, attribute: int) -> int:
        """First token id of attribute ``attribute`` (0..3 = x, y, w, h)."""
        return N_CLASSES + 1 + attribute * self.bins

    def bin_widths(self) -> torch.Tensor:
        """Width of each bin's interval ``[4, bins]`` (between the midpoints to its neighbours; the end bins
        reach to 0 and 1)."""
        mid = (self.centres[:, 1:] + self.centres[:, :-1]) / 2
        lo = torch.cat([torch.zeros(4, 1), mid], dim=1)
        hi = torch.cat([mid, torch.ones(4, 1)], dim=1)
        return (hi - lo).clamp(min=0)

    def quantize(self, boxes: torch.Tensor) -> torch.Tensor:
        """Bin index ``[..., 4]`` int64 (0..bins-1) of each attribute of boxes ``[..., 4]`` (nearest centre)."""
        centres = self.centres.to(boxes.device)
        return torch.stack([_nearest(boxes[..., a].contiguous().float(), centres[a]) for a in range(4)], dim=-1)

    def encode(self, classes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """(classes ``[n, 25]`` in -1..4, boxes ``[n, 25, 4]``) -> tokens ``[n, 125]`` int64, present elements first
        in their order, all five tokens of an absent element PAD."""
        classes, boxes = check_layout(classes, boxes)
        if classes.shape[1] != MAX_ELEMENTS:
            raise ValueError(f"expected {MAX_ELEMENTS} element slots, got {classes.shape[1]}")
        present = classes >= 0
        if not bool(torch.isfinite(boxes[present]).all()):
            raise ValueError("boxes of present elements hold NaN or infinite values")
        order = torch.sort((~present).to(torch.int8), dim=1, stable=True).indices  # present first, stable
        classes = classes.gather(1, order)
        boxes = boxes.gather(1, order.unsqueeze(-1).expand(-1, -1, 4))
        present = classes >= 0
        offsets = torch.tensor([self.offset(a) for a in range(4)], device=classes.device)
        attrs = self.quantize(boxes) + offsets  # [n, 25, 4]
        tokens = torch.cat([classes.unsqueeze(-1), attrs], dim=-1)
        tokens = torch.where(present.unsqueeze(-1), tokens, torch.full_like(tokens, PAD))
        return tokens.reshape(len(tokens), LENGTH)

    def _check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != LENGTH \
                or tokens.dtype.is_floating_point:
            raise ValueError(f"tokens must be an integer tensor [n, {LENGTH}], got "
                             f"{list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(f"tokens must lie in 0..{self.vocab_size - 1}, got values "
                             f"{int(tokens.min())}..{int(tokens.max())}")
        return tokens.long()

    def decode(self, tokens: torch.Tensor, return_invalid: bool = False, clip: bool = False):
        """Tokens ``[n, 125]`` -> (classes ``[n, 25]`` int64 in -1..4, boxes ``[n, 25, 4]`` float32 bin centres),
        element slots in token order (not compacted).

        An element is absent (class -1, box 0) when its class token is PAD. It is *broken*, and decoded as absent
        too, when its class position holds a bin token, or its class is real but an attribute position holds PAD,
        a class token or another attribute's bin. ``return_invalid=True`` also returns the broken mask
        ``[n, 25]`` bool. ``clip=True`` shrinks ``w, h`` so that no box overruns the right or bottom page edge
        (independently quantized ``x`` and ``w`` can: 3 % of the real test pages with the k-means bins).
        """
        tokens = self._check_tokens(tokens).view(-1, MAX_ELEMENTS, TOKENS_PER_ELEMENT)
        cls = tokens[..., 0]
        attrs = tokens[..., 1:] - torch.tensor([self.offset(a) for a in range(4)], device=tokens.device)
        attr_ok = ((attrs >= 0) & (attrs < self.bins)).all(-1)
        real = cls < N_CLASSES
        broken = (real & ~attr_ok) | (cls > PAD)
        present = real & attr_ok
        centres = self.centres.to(tokens.device)
        idx = attrs.clamp(0, self.bins - 1)
        boxes = torch.stack([centres[a][idx[..., a]] for a in range(4)], dim=-1)
        if clip:
            boxes = torch.cat([boxes[..., :2], torch.minimum(boxes[..., 2:], 1.0 - boxes[..., :2])], dim=-1)
        classes = torch.where(present, cls, torch.full_like(cls, -1))
        boxes = torch.where(present.unsqueeze(-1), boxes, torch.zeros_like(boxes))
        return (classes, boxes, broken) if return_invalid else (classes, boxes)

    def allowed(self) -> torch.Tensor:
        """Which tokens may appear at each position: bool ``[125, vocab]`` (class positions: class tokens and PAD;
        an attribute position: that attribute's bins and PAD)."""
        mask = torch.zeros(TOKENS_PER_ELEMENT, self.vocab_size, dtype=torch.bool)
        mask[0, : N_CLASSES + 1] = True
        for a in range(4):
            mask[1 + a, self.offset(a): self.offset(a) + self.bins] = True
        mask[:, PAD] = True
        return mask.repeat(MAX_ELEMENTS, 1)

    def moves(self, tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Single-token moves of a layout: bool ``[125, vocab]``, True at each coordinate position for its
        attribute's bins (not PAD, no class change); with ``tokens [n, 125]``, ``[n, 125, vocab]`` with only the
        present elements' coordinates. The swaps of DRAKES' ``estimator="swaps"``: moving one coordinate of a
        present element to another bin keeps the layout whole, while a class swap leaves the rewards unchanged, a
        swap to or from PAD breaks an element, and an absent element's coordinates count for nothing."""
        mask = self.allowed()
        mask[:, : N_CLASSES + 1] = False  # the class tokens and PAD: what is left are the bins
        if tokens is None:
            return mask
        present = tokens.view(len(tokens), MAX_ELEMENTS, TOKENS_PER_ELEMENT)[..., 0] < N_CLASSES
        return mask.to(tokens.device) & present.repeat_interleave(TOKENS_PER_ELEMENT, 1).unsqueeze(-1)

    def expected_boxes(self, probs: torch.Tensor, eps: float = 1e-3):
        """Differentiable soft decoding of token probabilities ``[n, 125, vocab]`` -> (presence ``[n, 25]`` =
        1 - P(PAD at the class position), class_probs ``[n, 25, 5]`` = the class tokens' probabilities renormalized,
        boxes ``[n, 25, 4]`` = for each attribute the expected bin centre under its bins' renormalized
        probabilities). Probability on tokens that are not allowed at a position is ignored. The renormalizing
        sums are clamped at ``eps``: exact on one-hot rows (the sums are 0 or 1), and the gradient stays bounded
        (at most ``1 / eps`` times a bin centre) where a relaxed row puts almost all of an attribute on PAD; with
        1e-12 it reached 1e11, and DRAKES' updates overflowed."""
        if probs.dim() != 3 or probs.shape[1:] != (LENGTH, self.vocab_size):
            raise ValueError(f"probs must be [n, {LENGTH}, {self.vocab_size}], got {list(probs.shape)}")
        p = probs.view(len(probs), MAX_ELEMENTS, TOKENS_PER_ELEMENT, self.vocab_size)
        presence = 1.0 - p[:, :, 0, PAD]
        cls = p[:, :, 0, :N_CLASSES]
        class_probs = cls / cls.sum(-1, keepdim=True).clamp(min=eps)
        centres = self.centres.to(probs.device, probs.dtype)
        coords = []
        for a in range(4):
            q = p[:, :, 1 + a, self.offset(a): self.offset(a) + self.bins]
            coords.append((q * centres[a]).sum(-1) / q.sum(-1).clamp(min=eps))
        return presence, class_probs, torch.stack(coords, dim=-1)


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The k-means tokenizer of ``data/bins.json`` (cached; treat as read-only)."""
    if not BINS_FILE.exists():
        raise FileNotFoundError(f"{BINS_FILE} is missing; write it with python -m domains.layouts.tokens")
    return Tokenizer("kmeans")


def main() -> None:
    """Refit the k-means bins on the train split (at most 20 pages per PDF, seed 0) and write ``bins.json``."""
    from .data import load_split

    torch.set_num_threads(1)
    classes, boxes = load_split("train")
    fitted = fit_bins(boxes, classes >= 0)
    fitted["fitted_on"] = "train split, load_split('train', max_per_pdf=20, seed=0), present boxes"
    BINS_FILE.write_text(json.dumps(fitted, indent=1) + "\n")
    print(f"wrote {BINS_FILE} ({int((classes >= 0).sum())} boxes)")


if __name__ == "__main__":
    main()
