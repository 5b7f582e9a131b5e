"""Evaluation metrics of generated digit images, in the held-out classifier's feature space.

- ``frechet_distance``: the FID formula between two feature sets. Here it is an **FID analogue computed in
  the held-out MNIST classifier's 128-d penultimate features**, not in Inception-v3's 2048-d pool features, so
  its values are not comparable with published FIDs of natural images;
- ``diversity``: mean pairwise Euclidean distance between the feature vectors of a set;
- ``target_accuracy``: share of images the classifier assigns to the target digit;
- ``summarize``: all of them for a batch of images, plus the mean target probability, mean ink and median
  JPEG size; ``reference_features``: held-out features of the 10,000 real test images (the FID reference),
  or of the test images of one digit.

Scale at 28 px: the 10,000 validation images score 0.21 against the test reference, 1,000 of them 0.71,
1,000 uniform-noise images 1,113. The FID analogue compares distributions, so a set of one digit is far from
the reference of all ten (100 validation 3s: 292); for a target-digit task compare with
``reference_features(..., digit=target)`` (the same 3s: 1.3).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .classifier import DigitClassifier, load_classifier
from .compress import jpeg_bytes
from .data import N_CLASSES, check_resolution, load_mnist


def _check_features(features: torch.Tensor, what: str, min_rows: int) -> np.ndarray:
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = list(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"{what} must be a feature matrix [n, d], got {shape}")
    if len(features) < min_rows:
        raise ValueError(f"{what} needs at least {min_rows} rows, got {len(features)}")
    arr = features.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite values")
    return arr


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to ``features_a: [n, d]`` and ``features_b: [m, d]``.

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))`` (the FID formula; see the module docstring
    for the feature space). ``tr((S_a S_b)^(1/2))`` is computed as the sum of the square roots of the
    eigenvalues of the symmetric PSD matrix ``S_a^(1/2) S_b S_a^(1/2)`` (same eigenvalues as ``S_a S_b``), which
    stays real and stable when a covariance is singular (fewer samples than dimensions). Float64 throughout;
    needs at least 2 rows per set; the result is clipped at 0 (round-off).
    """
    a = _check_features(features_a, "features_a", 2)
    b = _check_features(features_b, "features_b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def diversity(features: torch.Tensor, chunk: int = 2048) -> float:
    """Mean Euclidean distance over all pairs of distinct rows of ``features: [n, d]`` (n >= 2).

    Computed in chunks of ``chunk`` rows (memory O(chunk * n)), float64.
    """
    x = torch.from_numpy(_check_features(features, "features", 2))
    n = len(x)
    total = 0.0
    for i in range(0, n, chunk):
        total += float(torch.cdist(x[i:i + chunk], x).sum())
    return total / (n * (n - 1))


def target_accuracy(logits: torch.Tensor, target: int) -> float:
    """Share of rows of ``logits: [n, 10]`` whose arg-max is ``target``."""
    _check_logits(logits)
    _check_target(target)
    return float((logits.argmax(dim=1) == target).to(torch.float64).mean())


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] != N_CLASSES:
        shape = list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"expected classifier logits [n, {N_CLASSES}], got {shape}")
    if len(logits) == 0:
        raise ValueError("no logits: the set of images is empty")


def _check_target(target: int) -> int:
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= int(target) < N_CLASSES:
        raise ValueError(f"target must be a digit 0..{N_CLASSES - 1} (int), got {target!r}")
    return int(target)


@torch.no_grad()
def classify(model: DigitClassifier, images: torch.Tensor, batch: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits ``[n, 10]``, features ``[n, 128]``) of ``images: [n, 1, R, R]`` on the model's device, in chunks."""
    logits, feats = [], []
    for i in range(0, len(images), batch):
        h = model.features(images[i:i + batch].to(model.device))
        feats.append(h)
        logits.append(model.head(h))
    return torch.cat(logits), torch.cat(feats)


def reference_features(resolution: int = 28, device: str | torch.device | None = None, n: int = 10_000,
                       digit: int | None = None) -> torch.Tensor:
    """Held-out classifier features ``[m, 128]`` of real test images: the FID analogue's reference set.

    The first ``n`` test images (all 10,000 by default); with ``digit``, the first ``n`` test images of that
    label (``m`` = fewer when the label has fewer; about 1,000 per digit), the reference for a task that
    asks for one digit. Cached per process; treat as read-only.
    """
    check_resolution(resolution)
    if not 2 <= n <= 10_000:
        raise ValueError(f"n must be between 2 and 10,000 (the test split), got {n}")
    if digit is not None:
        digit = _check_target(digit)
    return _reference(resolution, str(torch.device(device if device is not None else "cpu")), n, digit)


@lru_cache(maxsize=16)
def _reference(resolution: int, device: str, n: int, digit: int | None) -> torch.Tensor:
    images, labels = load_mnist("test", resolution)
    if digit is not None:
        images = images[labels == digit]
    return classify(load_classifier("heldout", resolution, device), images[:n])[1]


def summarize(images: torch.Tensor, target: int | None, heldout: DigitClassifier,
              reference: torch.Tensor) -> dict[str, Any]:
    """Metrics of generated ``images: [n, 1, R, R]`` in [0, 1], judged by the ``heldout`` classifier.

    Returns ``n``; ``accuracy`` (share classified as ``target``) and ``target_probability`` (mean softmax
    probability of ``target``) when a target is given; ``fid`` (the Frechet distance between the images'
    held-out features and ``reference``, e.g. :func:`reference_features`: an FID analogue in the held-out
    classifier's feature space, not Inception's); ``diversity`` (mean pairwise feature distance);
    ``mean_ink`` (mean pixel value) and ``median_jpeg_bytes``.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 1:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected images [n, 1, R, R], got {shape}")
    if len(images) < 2:
        raise ValueError(f"summarize needs at least 2 images, got {len(images)}")
    logits, feats = classify(heldout, images)
    out: dict[str, Any] = {"n": len(images)}
    if target is not None:
        target = _check_target(target)
        out["accuracy"] = target_accuracy(logits, target)
        out["target_probability"] = float(logits.softmax(dim=1)[:, target].to(torch.float64).mean())
    out["fid"] = frechet_distance(feats, reference)
    out["diversity"] = diversity(feats)
    out["mean_ink"] = float(images.detach().to(torch.float64).mean())
    out["median_jpeg_bytes"] = float(jpeg_bytes(images).median())
    return out
