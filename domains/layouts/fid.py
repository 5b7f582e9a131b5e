"""Layout FID: the Frechet distance between two sets of layouts in the feature space of a trained layout encoder.

As in LayoutGAN++ (Kikuchi et al., 2021) and LayoutDM (Inoue et al., 2023): a small transformer encoder over a
layout's elements (class embedding plus box embedding, one token each, and a summary token), trained to tell real
pages from perturbed ones (and to reconstruct the page from its summary); the summary token's output, before the
real-vs-fake head, is the feature vector, and FID is the Frechet distance between Gaussians fitted to the
features of two sets. This is our own encoder, trained on this repository's pages (``train_fid.py``), so its
numbers are comparable with each other, not with the published PubLayNet / Rico FIDs.

The encoder has no position encoding: a layout is a set of elements, so the order of the slots (and where the
absent ones are) does not change the features. Its box inputs carry sines and cosines down to a period of 1/32
of the page, so it sees misalignment at about the scale of the 32 bins of ``tokens``: quantizing the test pages
to the k-means bins costs well under the FID between two halves of the test split (see ``docs/layouts.md``).
FID is biased upwards for small sets: compare sets of the same size against the same reference.

    from domains.layouts.fid import fid
    fid(gen_classes, gen_boxes, ref_classes, ref_boxes)   # lower is closer to the reference set
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from workbench.checkpoints import Checkpointed, read_checkpoint

from .data import CLASSES, check_layout

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CHECKPOINT = CHECKPOINT_DIR / "fid_encoder.pt"
TRAIN_COMMAND = "python -m domains.layouts.train_fid"

#: default architecture (``train_fid.RECIPE`` may override it)
DEFAULT_CONFIG: dict[str, Any] = {"d_model": 128, "heads": 4, "layers": 3, "ff": 256, "frequencies": 6}


def box_inputs(boxes: torch.Tensor, frequencies: int = 0) -> torch.Tensor:
    """Per-element box inputs: x, y, w, h and the right and bottom edges x + w, y + h (``[..., 6]``), then, for
    ``frequencies`` > 0, sin and cos of ``2^k pi`` times each of them, k < frequencies (``[..., 6 (1 + 2 f)]``):
    sharp position codes, with which attention can tell aligned edges from nearly aligned ones."""
    v = torch.cat([boxes, boxes[..., :2] + boxes[..., 2:]], dim=-1)
    if frequencies <= 0:
        return v
    scales = math.pi * 2.0 ** torch.arange(frequencies, dtype=v.dtype, device=v.device)
    angles = (v.unsqueeze(-1) * scales).flatten(-2)
    return torch.cat([v, torch.sin(angles), torch.cos(angles)], dim=-1)


class _Block(nn.Module):
    """Pre-norm transformer block: multi-head self-attention with a key mask, then a GELU MLP."""

    def __init__(self, d: int, heads: int, ff: int) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model {d} is not a multiple of heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))

    def forward(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keys[:, None, None, :])
        x = x + self.out(a.transpose(1, 2).reshape(n, t, d))
        return x + self.mlp(self.norm2(x))


class LayoutEncoder(Checkpointed):
    """Transformer encoder over a layout's elements -> a feature vector ``[n, d_model]`` (the FID features).

    Each present element is a token: class embedding + an MLP of its box (``box_inputs``: x, y, w, h, x + w, y + h
    and their sines and cosines at ``frequencies`` octaves); a learned
    summary token is prepended; absent elements are masked out of attention. ``forward`` returns the summary
    token's final (layer-normed) output; ``logits`` adds the real-vs-fake head (positive = looks real).

    config: ``d_model``, ``heads``, ``layers``, ``ff`` (MLP width), ``frequencies``; training adds ``recipe``,
    ``kinds`` and ``seed``.
    """

    checkpoint_format = "layout-fid-encoder/1"
    checkpoint_kind = "layout FID encoder"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = dict(DEFAULT_CONFIG if config is None else config)
        d, heads, layers, ff = (int(self.config[k]) for k in ("d_model", "heads", "layers", "ff"))
        self.dim = d
        self.class_embedding = nn.Embedding(len(CLASSES), d)
        self.frequencies = int(self.config.get("frequencies", 0))
        self.box_embedding = nn.Sequential(nn.Linear(6 * (1 + 2 * self.frequencies), d), nn.GELU(), nn.Linear(d, d))
        self.summary = nn.Parameter(torch.randn(d) * 0.02)
        self.blocks = nn.ModuleList(_Block(d, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 1)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def forward(self, classes: torch.Tensor, boxes: torch.Tensor, presence: torch.Tensor | None = None) -> torch.Tensor:
        """``classes [n, L]`` (int, -1 = absent), ``boxes [n, L, 4]``, ``presence [n, L]`` (bool; default
        ``classes >= 0``) -> features ``[n, d_model]``. Absent slots' classes and boxes are ignored."""
        if presence is None:
            presence = classes >= 0
        presence = presence.bool()
        boxes = torch.where(presence.unsqueeze(-1), boxes, torch.zeros((), dtype=boxes.dtype, device=boxes.device))
        tokens = (self.class_embedding(classes.clamp(0, len(CLASSES) - 1))
                  + self.box_embedding(box_inputs(boxes, self.frequencies)))
        x = torch.cat([self.summary.expand(len(classes), 1, -1), tokens], dim=1)
        keys = torch.cat([torch.ones_like(presence[:, :1]), presence], dim=1)
        for block in self.blocks:
            x = block(x, keys)
        return self.norm(x[:, 0])

    def logits(self, classes: torch.Tensor, boxes: torch.Tensor, presence: torch.Tensor | None = None) -> torch.Tensor:
        """Real-vs-fake logits ``[n]`` (positive: looks like a real page)."""
        return self.head(self(classes, boxes, presence)).squeeze(-1)


@lru_cache(maxsize=None)
def _load(path: str, device: str) -> LayoutEncoder:
    return LayoutEncoder.from_checkpoint(read_checkpoint(path)).to(device)  # type: ignore[return-value]


def load_encoder(device: str | torch.device | None = None, path: str | Path | None = None) -> LayoutEncoder:
    """The shipped FID encoder (frozen, eval mode; cached per path and device; CPU by default). A
    FileNotFoundError naming the training command when the checkpoint is missing."""
    path = Path(path) if path is not None else CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"layout FID encoder checkpoint {path} is missing; train it with `{TRAIN_COMMAND}` "
                                f"(about 6 minutes on one CPU core)")
    return _load(str(path.resolve()), str(torch.device(device or "cpu")))


def _as_layout(classes: Any, boxes: Any) -> tuple[torch.Tensor, torch.Tensor]:
    classes = torch.as_tensor(classes)
    boxes = torch.as_tensor(boxes)
    classes, boxes = check_layout(classes, boxes)
    boxes = boxes.float()
    present = classes >= 0
    bad = present & ~torch.isfinite(boxes).all(-1)
    if bool(bad.any()):
        i, j = (int(v) for v in bad.nonzero()[0])
        raise ValueError(f"layout {i}, slot {j}: box {boxes[i, j].tolist()} is not finite")
    return classes, boxes


@torch.no_grad()
def layout_features(classes: Any, boxes: Any, batch_size: int = 1024, encoder: LayoutEncoder | None = None,
                    device: str | torch.device | None = None) -> torch.Tensor:
    """FID features ``[n, d]`` (float32, CPU) of layouts ``classes [n, L]``, ``boxes [n, L, 4]`` (tensors or
    arrays; -1 = absent element), in batches of ``batch_size``, with ``encoder`` (default: ``load_encoder``
    on ``device``, the CPU by default). Present boxes must be finite."""
    classes, boxes = _as_layout(classes, boxes)
    if encoder is None:
        encoder = load_encoder(device)
    dev = encoder.device
    out = [encoder(classes[i:i + batch_size].to(dev), boxes[i:i + batch_size].to(dev)).float().cpu()
           for i in range(0, len(classes), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, encoder.dim)


def _stats(feats: Any) -> tuple[np.ndarray, np.ndarray]:
    x = feats.detach().cpu().double().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"expected features [n, d] with n >= 2, got shape {list(x.shape)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_from_stats(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))`` for Gaussians N(mu, cov).

    The trace of the matrix square root is computed as ``sum sqrt(eig(A^(1/2) B A^(1/2)))``, a symmetric
    positive semi-definite matrix with the same eigenvalues as ``A B`` (real by construction: no complex
    ``sqrtm`` and no imaginary parts to drop); eigenvalues below 0 from rounding are clipped to 0.
    """
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    return max(value, 0.0)


def frechet_distance(feats_a: Any, feats_b: Any) -> float:
    """Frechet distance between Gaussians fitted (mean, unbiased covariance) to ``feats_a [n, d]`` and
    ``feats_b [m, d]`` (tensors or arrays, n, m >= 2); see ``frechet_from_stats``."""
    mu_a, cov_a = _stats(feats_a)
    mu_b, cov_b = _stats(feats_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"features have different widths: {mu_a.shape[0]} and {mu_b.shape[0]}")
    return frechet_from_stats(mu_a, np.atleast_2d(cov_a), mu_b, np.atleast_2d(cov_b))


def fid(gen_classes: Any, gen_boxes: Any, ref_classes: Any, ref_boxes: Any, batch_size: int = 1024,
        device: str | torch.device | None = None) -> float:
    """Layout FID of generated layouts against reference layouts (e.g. ``load_split("test")``), with the
    shipped encoder. Lower is better; it depends on the set sizes (compare sets of similar size)."""
    encoder = load_encoder(device)
    return frechet_distance(layout_features(gen_classes, gen_boxes, batch_size, encoder),
                            layout_features(ref_classes, ref_boxes, batch_size, encoder))
