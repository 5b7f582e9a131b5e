"""MNIST digit design: grayscale images scored by JPEG compressibility, a digit classifier and ink.

Objectives (any subset; default directions in brackets, override with ``(name, direction)``):
  - ``"compressibility"`` [maximize]: minus the size in bytes of the image as a quality-95 grayscale JPEG
    (:func:`.compress.jpeg_bytes`; DDPO's compressibility reward);
  - ``"digit"`` [maximize]: the classifier's softmax probability that the image shows ``target``;
  - ``"ink"`` [minimize]: the mean pixel intensity (0 = black background, 1 = white stroke).
``oracle="reward"`` scores digits with classifier "a" (what an optimizer sees); ``"heldout"`` with classifier
"b" (trained on the other half of the training images; for judging designs). ``evaluate_soft`` gives the
same objectives with gradients, compressibility through the differentiable proxy
:func:`.compress.jpeg_proxy_bytes`. This is the image task of SVDD (Li et al., 2024): reward-guided sampling
of a diffusion prior, here on real MNIST.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from workbench.domain import Domain
from workbench.objectives import Objective, as_objectives
from workbench.plotting import grid_size
from workbench.spaces import TensorSpace

from .classifier import ROLES, DigitClassifier, load_classifier
from .compress import jpeg_bytes, jpeg_proxy_bytes
from .data import N_CLASSES, SPLITS, check_resolution, load_mnist

#: objective name -> its default direction
OBJECTIVES = {"compressibility": "maximize", "digit": "maximize", "ink": "minimize"}
#: prior configuration -> the resolution it generates
PRIOR_RESOLUTIONS = {"full": 28, "tiny": 14}
#: the splits of ``dataset()`` (the halves partition "train", so "train" itself is not listed again)
DATASET_SPLITS = ("train_a", "train_b", "valid", "test")


def image_space(resolution: int = 28) -> TensorSpace:
    """8-bit images ``[1, R, R]``: pixels ``k / 255`` in [0, 1] (stored as one byte each)."""
    r = check_resolution(resolution)
    return TensorSpace((1, r, r), 0.0, 1.0, levels=256)


class MNISTDigits(Domain):
    """Digit images ``TensorSpace((1, R, R), 0, 1)``; see the module docstring for the objectives.

    >>> dom = MNISTDigits(objectives=("compressibility", "digit"), target=3)
    >>> images, labels = dom.images("test")
    >>> dom.evaluate(images[:8])     # {"compressibility": [8], "digit": [8]}, float64
    """

    name = "mnist_digits"

    def __init__(self, objectives: Sequence[str | tuple | Objective] | str = ("compressibility",), target: int = 0,
                 oracle: str = "reward", resolution: int = 28, prior: str = "full",
                 device: str | torch.device | None = None) -> None:
        objs = as_objectives(objectives, default="maximize", directions=OBJECTIVES)
        bad = [o.name for o in objs if o.name not in OBJECTIVES]
        if bad:
            raise ValueError(f"unknown objectives {bad}; choose from {list(OBJECTIVES)}")
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < N_CLASSES:
            raise ValueError(f"target must be a digit 0..{N_CLASSES - 1} (int), got {target!r}")
        if oracle not in ROLES:
            raise ValueError(f"oracle must be one of {list(ROLES)}, got {oracle!r}")
        resolution = check_resolution(resolution)
        if prior not in PRIOR_RESOLUTIONS:
            raise ValueError(f"prior must be one of {list(PRIOR_RESOLUTIONS)}, got {prior!r}")
        if PRIOR_RESOLUTIONS[prior] != resolution:
            raise ValueError(f"prior {prior!r} generates {PRIOR_RESOLUTIONS[prior]} px images but resolution is "
                             f"{resolution}; use prior='full' with resolution=28 or prior='tiny' with resolution=14")
        super().__init__(image_space(resolution), objs)
        self.target = int(target)
        self.oracle_role = oracle
        self.resolution = resolution
        self.prior_config = prior
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._names = [o.name for o in objs]
        self.classifier: DigitClassifier | None = (load_classifier(oracle, resolution, self.device)
                                                   if "digit" in self._names else None)

    # ------------------------------------------------------------------ scoring
    def _check(self, x: Any) -> torch.Tensor:
        r = self.resolution
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"expected a tensor of images [n, 1, {r}, {r}], got {type(x).__name__}")
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, r, r):
            raise ValueError(f"expected images of shape [n, 1, {r}, {r}], got {list(x.shape)}")
        if not x.dtype.is_floating_point:
            raise ValueError(f"expected float images (e.g. float32) in [0, 1], got dtype {x.dtype}")
        return x

    def _classifier_on(self, device: torch.device) -> DigitClassifier:
        if self.classifier is None or self.classifier.device != device:
            self.classifier = load_classifier(self.oracle_role, self.resolution, device)
        return self.classifier

    def _digit(self, x: torch.Tensor) -> torch.Tensor:
        logits = self._classifier_on(x.device)(x)
        return logits.to(torch.float64).softmax(dim=1)[:, self.target]

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Objectives by name, each ``[n]`` float64 on ``x``'s device, of images ``x: [n, 1, R, R]`` (float).

        Only the objectives asked for are computed; the classifier runs once per call. A wrong shape or a
        non-float dtype is a ValueError (the evaluation engine marks NaN and out-of-range rows failed before).
        """
        x = self._check(x)
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            if "compressibility" in self._names:
                out["compressibility"] = -jpeg_bytes(x).to(x.device)
            if "digit" in self._names:
                out["digit"] = self._digit(x)
            if "ink" in self._names:
                out["ink"] = x.to(torch.float64).mean(dim=(1, 2, 3))
        return {name: out[name] for name in self._names}

    def evaluate_soft(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable objectives ``[n]`` float64 of images ``x: [n, 1, R, R]`` (e.g. soft images of a
        diffusion sampler, clamped to [0, 1]); gradients flow to ``x``. "digit" and "ink" equal
        :meth:`evaluate`'s; "compressibility" is minus :func:`.compress.jpeg_proxy_bytes`."""
        x = self._check(x)
        out: dict[str, torch.Tensor] = {}
        if "compressibility" in self._names:
            out["compressibility"] = -jpeg_proxy_bytes(x)
        if "digit" in self._names:
            out["digit"] = self._digit(x)
        if "ink" in self._names:
            out["ink"] = x.to(torch.float64).mean(dim=(1, 2, 3))
        return {name: out[name] for name in self._names}

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's logits ``[n, 10]`` of images ``x: [n, 1, R, R]`` (no gradients)."""
        x = self._check(x)
        with torch.no_grad():
            return self._classifier_on(x.device)(x)

    # ------------------------------------------------------------------ pictures and data
    def render(self, x: torch.Tensor, ax: Any = None, ncols: int | None = None,
               titles: Sequence[str] | None = None) -> Any:
        """Draw images ``[n, 1, R, R]`` or ``[n, R, R]`` as one grid on one Axes, white digits on black as in
        MNIST (values clamped to [0, 1]; NaN pixels shown red). ``ncols`` defaults to about sqrt(n);
        ``titles`` (one per image) are written above each cell. Returns the Axes."""
        import matplotlib.pyplot as plt

        x = torch.as_tensor(x).detach().to("cpu", torch.float64)
        if x.dim() == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 3 or x.shape[0] == 0:
            raise ValueError(f"render expects images [n, 1, H, W] or [n, H, W] with n >= 1, got {list(x.shape)}")
        n, h, w = x.shape
        ncols, nrows = grid_size(n, ncols, titles, "images")
        gap = 1 if titles is None else max(1, h // 3)
        canvas = np.full(((h + gap) * nrows + gap, (w + 1) * ncols + 1, 3), 0.35)  # grey separators
        values = x.numpy()
        for k in range(n):
            r, c = divmod(k, ncols)
            top, left = gap + r * (h + gap), 1 + c * (w + 1)
            img = np.clip(np.nan_to_num(values[k], nan=0.0), 0.0, 1.0)
            cell = np.repeat(img[:, :, None], 3, axis=2)
            cell[np.isnan(values[k])] = (1.0, 0.0, 0.0)
            canvas[top:top + h, left:left + w] = cell
        if ax is None:
            _, ax = plt.subplots(figsize=(max(2.0, 0.6 * ncols), max(2.0, 0.6 * nrows * (h + gap) / h)))
        ax.imshow(canvas, interpolation="nearest")
        if titles is not None:
            for k, title in enumerate(titles):
                r, c = divmod(k, ncols)
                ax.text(1 + c * (w + 1) + w / 2, r * (h + gap) + gap - 0.5, str(title), ha="center", va="bottom",
                        fontsize=7, color="black", clip_on=False)
        ax.set_xticks([])
        ax.set_yticks([])
        return ax

    def dataset(self) -> pd.DataFrame:
        """One row per real image: ``split`` (train_a, train_b, valid, test), ``label`` and ``index`` (its
        position in that split); the tensors come from :meth:`images`."""
        frames = []
        for split in DATASET_SPLITS:
            _, labels = load_mnist(split, self.resolution)
            frames.append(pd.DataFrame({"split": split, "label": labels.numpy(), "index": np.arange(len(labels))}))
        return pd.concat(frames, ignore_index=True)

    def images(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images ``[n, 1, R, R]`` float32 in [0, 1], labels ``[n]`` int64) of ``split`` (one of
        ``data.SPLITS``) at this domain's resolution."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return load_mnist(split, self.resolution)

    def prior(self) -> Any:
        """The image diffusion prior of ``prior_config`` ("full": 28 px, "tiny": 14 px) on the constructor's
        ``device`` (samplers move it to the study's device)."""
        from .prior import load_prior

        return load_prior(self.prior_config, self.device)

    def describe(self) -> dict[str, Any]:
        spec = super().describe()
        spec["settings"] = {"target": self.target, "oracle": self.oracle_role, "oracle_half": ROLES[self.oracle_role],
                            "resolution": self.resolution, "prior": self.prior_config}
        return spec
