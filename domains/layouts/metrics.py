"""Layout metrics as in LayoutGAN++ (Kikuchi et al. 2021, ``ktrk115/const_layout``, ``metric.py``) and LayoutDM
(Inoue et al. 2023, ``CyberAgentAILab/layout-dm``, ``src/trainer/trainer/helpers/metric.py``), on hard layouts
(classes ``[n, L]``, -1 = absent; boxes ``[n, L, 4]`` = ``(x, y, w, h)``, top-left corner, as ``data``).

For a layout with present elements ``1..N``, box ``i`` has edges ``l_i, r_i, t_i, b_i`` and centre ``(xc_i, yc_i)``,
area ``A_i``, and ``I_ij`` is the intersection area of boxes ``i`` and ``j``.

- ``alignment`` (LayoutGAN++ "Alignment", from Attribute-conditioned Layout GAN, Li et al. 2020, sec. 3.6.4;
  ``compute_alignment``; LayoutDM's ``alignment-LayoutGAN++``):
  ``d_i = min_{j != i} min_{e in {l, xc, r, t, yc, b}} |e_i - e_j|`` (0 when ``i`` has no partner),
  ``alignment = (1 / N) sum_i -log(1 - d_i)``. Lower is better; the papers print it x 100.
  The reference code marks missing pairs with distance 1 and then zeroes every ``d_i == 1``; so do we.
  LayoutDM's copy masks absent elements only as ``i``, not as partners ``j`` (its zero-padded boxes then count
  as partners at the page corner); we follow const_layout and mask both.
- ``overlap`` (LayoutGAN++ "Overlap", Li et al. 2020 sec. 3.6.3; ``compute_overlap``; LayoutDM's
  ``overlap-LayoutGAN++``): ``overlap = (1 / N) sum_i sum_{j != i} I_ij / A_i`` (0 where ``A_i = 0``). Lower is
  better; printed x 100.
- ``max_iou`` (LayoutGAN++ "Maximum IoU", ``compute_maximum_iou``): layouts of both sets are grouped by the
  multiset of their classes; for a generated layout ``g`` and a reference ``r`` of the same group,
  ``s(g, r) = (1 / N) sum_c max_{pi} sum_{i of class c} IoU(g_i, r_{pi(i)})`` (a best one-to-one matching of the
  boxes of each class, Hungarian); inside each group the generated and reference layouts are matched one to one
  to maximize the sum of ``s`` (Hungarian again), and the result is the mean of ``s`` over all matched pairs of
  all groups (generated layouts whose multiset has no reference, or that are left over in a group, do not count;
  0 when nothing matches). Higher is better.
  The reference code builds the ``[N_g, N_r]`` score matrix of a group with ``np.meshgrid`` (shape
  ``[N_r, N_g]``) and reshapes the flat list to ``[N_g, N_r]``: when a group has different numbers of
  generated and reference layouts, the matrix is scrambled (``S.T.reshape(N_g, N_r)``), so the matching is not
  one to one and the score comes out higher (real test vs valid split: 0.2505 instead of 0.2272). We match
  correctly; ``reference_quirk=True`` reproduces the published code (LayoutDM uses it only for conditional
  generation, where each group has as many generated as reference layouts and the two agree).
- ``validity`` (ours): a layout is valid when it has at least one element and every present box is finite,
  has ``w, h > 0`` and lies inside the page ``[0, 1]^2`` (tolerance ``tol``).
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .data import check_layout


def _edges(boxes: torch.Tensor) -> torch.Tensor:
    """``[n, L, 4]`` (x, y, w, h) -> ``[n, 6, L]``: left, x centre, right, top, y centre, bottom."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, x + w / 2, x + w, y, y + h / 2, y + h], dim=1)


def alignment(classes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """LayoutGAN++ alignment of each layout ``[n]`` (lower is better; 0 for fewer than two elements)."""
    classes, boxes = check_layout(classes, boxes)
    present = classes >= 0
    e = _edges(boxes.to(torch.float64))  # [n, 6, L]
    d = (e.unsqueeze(-1) - e.unsqueeze(-2)).abs()  # [n, 6, L, L]
    pair = present.unsqueeze(-1) & present.unsqueeze(-2)
    pair &= ~torch.eye(classes.shape[1], dtype=torch.bool, device=classes.device)
    d = d.masked_fill(~pair.unsqueeze(1), 1.0)
    d = d.amin(dim=(1, 3))  # [n, L]: over the 6 edge kinds and the partners j
    d = d.masked_fill(d == 1.0, 0.0)
    score = -torch.log1p(-d)
    return (score.sum(-1) / present.sum(-1).clamp(min=1)).float()


def _intersection(boxes: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection areas ``[n, L, L]`` of boxes ``[n, L, 4]``."""
    x0, y0 = boxes[..., 0], boxes[..., 1]
    x1, y1 = x0 + boxes[..., 2], y0 + boxes[..., 3]
    iw = (torch.minimum(x1.unsqueeze(-1), x1.unsqueeze(-2)) - torch.maximum(x0.unsqueeze(-1), x0.unsqueeze(-2)))
    ih = (torch.minimum(y1.unsqueeze(-1), y1.unsqueeze(-2)) - torch.maximum(y0.unsqueeze(-1), y0.unsqueeze(-2)))
    return iw.clamp(min=0) * ih.clamp(min=0)


def overlap(classes: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """LayoutGAN++ overlap of each layout ``[n]`` (lower is better; 0 for an empty layout)."""
    classes, boxes = check_layout(classes, boxes)
    present = classes >= 0
    b = boxes.to(torch.float64)
    inter = _intersection(b)
    pair = present.unsqueeze(-1) & present.unsqueeze(-2)
    pair &= ~torch.eye(classes.shape[1], dtype=torch.bool, device=classes.device)
    area = (b[..., 2] * b[..., 3]).unsqueeze(-1)  # A_i, broadcast over j
    ratio = torch.where(pair & (area > 0), inter / torch.where(area > 0, area, 1.0), 0.0)
    return (ratio.sum(dim=(1, 2)) / present.sum(-1).clamp(min=1)).float()


def validity(classes: torch.Tensor, boxes: torch.Tensor, tol: float = 1e-6) -> torch.Tensor:
    """bool ``[n]``: non-empty, and every present box finite, with ``w, h > 0``, inside ``[0, 1]^2`` (+- ``tol``).
    The share of valid layouts is ``validity(...).float().mean()``."""
    classes, boxes = check_layout(classes, boxes)
    present = classes >= 0
    x, y, w, h = boxes.unbind(-1)
    ok = torch.isfinite(boxes).all(-1) & (w > 0) & (h > 0) & (x >= -tol) & (y >= -tol) \
        & (x + w <= 1 + tol) & (y + h <= 1 + tol)
    return present.any(-1) & (ok | ~present).all(-1)


# ----------------------------------------------------------------------------------------------- maximum IoU

def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a [..., 4]`` and ``b [..., 4]`` (broadcast; 0 where the union is empty)."""
    iw = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    ih = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _groups(classes: torch.Tensor, boxes: torch.Tensor) -> dict[tuple[int, ...], np.ndarray]:
    """Layouts grouped by their class multiset: key (sorted classes) -> boxes ``[k, N, 4]`` float64 with the
    elements of each layout sorted by class (stable), so that slots of one class line up across the group."""
    classes, boxes = check_layout(classes, boxes)
    cls, box = classes.cpu().numpy(), boxes.detach().cpu().to(torch.float64).numpy()
    out: dict[tuple[int, ...], list[np.ndarray]] = defaultdict(list)
    for row, b in zip(cls, box):
        keep = np.flatnonzero(row >= 0)
        order = keep[np.argsort(row[keep], kind="stable")]
        out[tuple(row[order].tolist())].append(b[order])
    return {k: np.stack(v) for k, v in out.items()}


def _pair_scores(key: tuple[int, ...], gen: np.ndarray, ref: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """``s(g, r)`` of every generated layout ``gen [N_g, K, 4]`` and reference ``ref [N_r, K, 4]`` -> ``[N_g, N_r]``."""
    n_gen, n_ref, k = len(gen), len(ref), len(key)
    total = np.zeros((n_gen, n_ref))
    start = 0
    for _, run in itertools.groupby(key):
        m = len(list(run))
        g, r = gen[:, start:start + m], ref[:, start:start + m]
        start += m
        if m == 1:
            total += _iou(g[:, None, 0], r[None, :, 0])
            continue
        perms = np.array(list(itertools.permutations(range(m)))) if m <= 4 else None
        rows = max(1, chunk // max(1, n_ref * m * m * (len(perms) if perms is not None else 1)))
        for i in range(0, n_gen, rows):
            iou = _iou(g[i:i + rows, None, :, None], r[None, :, None, :])  # [rows, N_r, m, m]
            if perms is not None:  # exact maximum by enumerating the m! matchings
                best = iou[..., np.arange(m), perms].sum(-1).max(-1)
            else:
                flat = iou.reshape(-1, m, m)
                best = np.array([flat[p][linear_sum_assignment(flat[p], maximize=True)].sum()
                                 for p in range(len(flat))]).reshape(iou.shape[:2])
            total[i:i + rows] += best
    return total / k


def max_iou(generated: tuple[torch.Tensor, torch.Tensor], reference: tuple[torch.Tensor, torch.Tensor],
            return_details: bool = False, reference_quirk: bool = False):
    """LayoutGAN++ maximum IoU of ``generated = (classes [n, L], boxes [n, L, 4])`` against ``reference`` (e.g. the
    test split): see the module doc. Returns a float, or with ``return_details`` a dict with ``max_iou``,
    ``matched`` (number of matched generated layouts) and ``n`` (all generated layouts). ``reference_quirk``:
    reproduce the reference code's scrambled score matrix (see the module doc)."""
    gen_groups, ref_groups = _groups(*generated), _groups(*reference)
    scores = []
    for key in gen_groups.keys() & ref_groups.keys():
        if not key:  # empty layouts: nothing to match (the reference code would divide by zero)
            continue
        s = _pair_scores(key, gen_groups[key], ref_groups[key])
        if reference_quirk:
            s = np.ascontiguousarray(s.T).reshape(s.shape)
        rows, cols = linear_sum_assignment(s, maximize=True)
        scores.append(s[rows, cols])
    flat = np.concatenate(scores) if scores else np.zeros(0)
    value = float(flat.mean()) if len(flat) else 0.0
    if return_details:
        return {"max_iou": value, "matched": int(len(flat)), "n": int(generated[0].shape[0])}
    return value


def summarize(classes: torch.Tensor, boxes: torch.Tensor,
              reference: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, float]:
    """Means over the layouts: ``alignment``, ``overlap`` (raw; the papers print them x 100), ``validity`` (share
    of valid layouts), ``elements`` (mean number of elements); with ``reference`` also ``max_iou`` and
    ``max_iou_matched`` (share of generated layouts that found a reference layout with the same classes)."""
    out = {
        "alignment": float(alignment(classes, boxes).mean()),
        "overlap": float(overlap(classes, boxes).mean()),
        "validity": float(validity(classes, boxes).float().mean()),
        "elements": float((classes >= 0).sum(-1).float().mean()),
    }
    if reference is not None:
        details = max_iou((classes, boxes), reference, return_details=True)
        out["max_iou"] = details["max_iou"]
        out["max_iou_matched"] = details["matched"] / max(details["n"], 1)
    return out
