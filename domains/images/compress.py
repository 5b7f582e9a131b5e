"""JPEG compressibility: the true reward (bytes of a Pillow JPEG) and a differentiable proxy of it.

``jpeg_bytes``: the size in bytes of each image saved by Pillow (libjpeg-turbo) as a grayscale ("L") JPEG at
quality ``JPEG_QUALITY`` = 95, as in DDPO's compressibility reward; pixels are ``round(x * 255)``. Pillow's
standard Huffman tables are used (no ``optimize``), so the size is a fixed header (quantization and Huffman
tables, about 330 bytes) plus the entropy-coded blocks. Throughput on the 2-core development machine
(Pillow 13 with libjpeg-turbo; ``python -m domains.images.compress --throughput``): about 21,700 images/s at
28 px and 23,800 at 14 px in one thread. A thread pool over chunks of 512 was slower (16,900 images/s with 2
threads): for such small images the per-image Python work (buffer, Image object), which holds the GIL,
outweighs the encoding, which releases it; so ``jpeg_bytes`` encodes in the calling thread. The proxy runs
at about 34,000 images/s at 28 px (float64).

``jpeg_proxy_bytes``: the same quantity estimated in torch, differentiable in the pixels. Each image is
padded to a multiple of 8 by edge replication (as libjpeg pads partial blocks), level-shifted to [-128, 127],
cut into 8 x 8 blocks and transformed with the orthonormal 2-D DCT-II (JPEG's forward DCT), each coefficient
divided by its entry of the standard luminance quantization table scaled for the quality (libjpeg's
``jpeg_quality_scaling``). The DC coefficients are differenced along the blocks in raster order (JPEG codes
DC as the change from the previous block). Each (AC or differenced DC) value ``q`` then costs
``log2(1 + sqrt(q^2 + eps^2)) - log2(1 + eps)`` "bits": about the number of magnitude bits JPEG spends on
it, zero for a zero coefficient, smooth everywhere (``eps`` = ``PROXY_EPS``). Bytes = ``a + b * bits`` with
``a, b`` fitted by least squares (``python -m domains.images.compress --calibrate``) on real MNIST images and
perturbed ones (blurred, noised, blank, thresholded, blended with noise, salt and pepper, uniform noise) at
both resolutions; the fit and its held-out quality live in ``checkpoints/jpeg_proxy.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data import RESOLUTIONS, load_mnist

#: JPEG quality of the reward (DDPO's compressibility reward uses 95)
JPEG_QUALITY = 95
#: smoothing of the proxy's per-coefficient cost at zero (in quantization steps)
PROXY_EPS = 0.1
PROXY_FILE = Path(__file__).resolve().parent / "checkpoints" / "jpeg_proxy.json"

#: the standard JPEG luminance quantization table (ITU-T T.81, Annex K, Table K.1), quality 50
LUMINANCE_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)


# ----------------------------------------------------------------------------- true JPEG size
def _check_images(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 1:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected grayscale images [n, 1, H, W], got {shape}")
    if not images.dtype.is_floating_point:
        raise ValueError(f"expected float images in [0, 1], got dtype {images.dtype}")
    return images


def to_bytes(images: torch.Tensor) -> np.ndarray:
    """Float images ``[n, 1, H, W]`` in [0, 1] -> uint8 pixels ``[n, H, W]`` (``round(x * 255)``, clamped).

    NaN pixels raise a ValueError (they have no byte value)."""
    x = _check_images(images).detach()
    if torch.isnan(x).any():
        raise ValueError("images contain NaN pixels; JPEG needs finite values in [0, 1]")
    return (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def jpeg_bytes(images: torch.Tensor) -> torch.Tensor:
    """Size in bytes of each image as a grayscale quality-95 JPEG: ``[n, 1, H, W]`` in [0, 1] -> float64 ``[n]``
    on the CPU. Values outside [0, 1] are clamped; NaN is an error."""
    pixels = to_bytes(images)
    h, w = pixels.shape[1:]
    sizes = []
    for im in pixels:
        buffer = io.BytesIO()
        Image.frombytes("L", (w, h), im.tobytes()).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        sizes.append(buffer.tell())
    return torch.tensor(sizes, dtype=torch.float64)


# ----------------------------------------------------------------------------- differentiable proxy
def quantization_table(quality: int = JPEG_QUALITY) -> torch.Tensor:
    """The luminance table ``[8, 8]`` float64 scaled for ``quality`` as libjpeg does (baseline: 1..255)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    base = torch.tensor(LUMINANCE_TABLE, dtype=torch.float64)
    return torch.div(base * scale + 50, 100, rounding_mode="floor").clamp(1, 255)


def dct_matrix() -> torch.Tensor:
    """The orthonormal 8-point DCT-II matrix ``[8, 8]`` (row u = frequency); ``D @ block @ D.T`` is JPEG's FDCT."""
    k = torch.arange(8, dtype=torch.float64)
    norm = torch.where(k == 0, math.sqrt(1 / 8), math.sqrt(2 / 8)).unsqueeze(1)
    return norm * torch.cos((2 * k.unsqueeze(0) + 1) * k.unsqueeze(1) * math.pi / 16)


@lru_cache(maxsize=8)
def _constants(device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    return dct_matrix().to(device, dtype), quantization_table().to(device, dtype)


def quantized_coefficients(images: torch.Tensor) -> torch.Tensor:
    """Unrounded quantized DCT coefficients ``[n, H8, W8, 8, 8]`` of images ``[n, 1, H, W]`` in [0, 1].

    ``H8 = ceil(H / 8)``; block ``(i, j)`` covers rows ``8i..8i+7`` and columns ``8j..8j+7``. Differentiable.
    Computed in float64 unless the input is float64 already (then too).
    """
    x = _check_images(images).to(torch.float64)
    d, q = _constants(str(x.device), x.dtype)
    n, _, h, w = x.shape
    ph, pw = -(-h // 8) * 8, -(-w // 8) * 8
    x = x * 255.0 - 128.0
    if (ph, pw) != (h, w):
        x = torch.nn.functional.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
    blocks = x.view(n, ph // 8, 8, pw // 8, 8).transpose(2, 3)  # [n, H8, W8, 8, 8]
    return (d @ blocks @ d.T) / q


def proxy_bits(images: torch.Tensor) -> torch.Tensor:
    """The proxy's smooth bit count ``[n]`` float64 of images ``[n, 1, H, W]`` (see the module docstring)."""
    c = quantized_coefficients(images)
    n = c.shape[0]
    flat = c.reshape(n, -1, 64)  # [n, blocks (raster order), 64]
    dc = flat[:, :, 0]
    dc_diff = torch.diff(dc, dim=1, prepend=torch.zeros_like(dc[:, :1]))  # first block: predictor 0
    values = torch.cat([dc_diff, flat[:, :, 1:].reshape(n, -1)], dim=1)
    eps = PROXY_EPS
    cost = torch.log2(1 + torch.sqrt(values * values + eps * eps)) - math.log2(1 + eps)
    return cost.sum(dim=1)


@lru_cache(maxsize=1)
def proxy_fit() -> dict[str, Any]:
    """The fitted proxy (``intercept``, ``slope`` and fit quality) from ``PROXY_FILE``."""
    if not PROXY_FILE.exists():
        raise FileNotFoundError(f"JPEG proxy calibration {PROXY_FILE} is missing; write it with "
                                "`python -m domains.images.compress --calibrate`")
    fit = json.loads(PROXY_FILE.read_text())
    if fit.get("quality") != JPEG_QUALITY or fit.get("eps") != PROXY_EPS:
        raise ValueError(f"{PROXY_FILE} was fitted for quality {fit.get('quality')} and eps {fit.get('eps')}, but "
                         f"the proxy uses {JPEG_QUALITY} and {PROXY_EPS}; rerun `python -m domains.images.compress "
                         "--calibrate`")
    return fit


def jpeg_proxy_bytes(images: torch.Tensor) -> torch.Tensor:
    """Differentiable estimate of :func:`jpeg_bytes`: images ``[n, 1, H, W]`` -> float64 ``[n]``.

    Gradients flow to ``images`` (no rounding or clamping inside). Calibrated for images in [0, 1].
    """
    fit = proxy_fit()
    return fit["intercept"] + fit["slope"] * proxy_bits(images)


# ----------------------------------------------------------------------------- calibration
def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image ``[n, 1, H, W]`` with its own Gaussian of standard deviation ``sigma: [n]`` pixels
    (separable, edge-replicated, radius ``ceil(3 * max sigma)``)."""
    radius = max(1, math.ceil(3 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-t.square() / (2 * sigma.to(images.dtype).unsqueeze(1).square()))  # [n, taps]
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    n = len(images)
    x = torch.nn.functional.pad(images, (radius,) * 4, mode="replicate").transpose(0, 1)  # [1, n, H+2r, W+2r]
    x = torch.nn.functional.conv2d(x, kernel.view(n, 1, 1, -1), groups=n)
    x = torch.nn.functional.conv2d(x, kernel.view(n, 1, -1, 1), groups=n)
    return x.transpose(0, 1)


def calibration_images(split: str, resolution: int, n_real: int, seed: int) -> dict[str, torch.Tensor]:
    """Real and perturbed images ``[k, 1, R, R]`` in [0, 1] by kind, all drawn with one seeded generator.

    Kinds: ``real`` (``n_real`` images of ``split``), ``blurred`` (sigma 0.3..2.3 px), ``noised`` (Gaussian
    noise, sigma 0.02..0.42, clamped), ``thresholded`` (binary at a random level), ``blended`` (a random mix of
    a digit and uniform noise), ``salt_pepper`` (up to 20 % of pixels replaced by uniform values), ``blank``
    (constant images, black included) and ``uniform`` (uniform noise); ``n_real / 8`` of each perturbation,
    ``n_real / 32`` blank and uniform.
    """
    gen = torch.Generator().manual_seed(seed)
    x, _ = load_mnist(split, resolution)
    x = x[torch.randperm(len(x), generator=gen)[:n_real]]
    m, r = max(1, n_real // 8), resolution

    def level(k: int) -> torch.Tensor:
        return torch.rand(k, 1, 1, 1, generator=gen)

    noise = x[:m] + (0.02 + 0.4 * level(m)) * torch.randn(m, 1, r, r, generator=gen)
    mix = level(m)
    replaced = torch.rand(m, 1, r, r, generator=gen) < 0.2 * level(m)
    blank = level(max(1, m // 4)).expand(-1, 1, r, r).clone()
    blank[0] = 0.0
    return {"real": x,
            "blurred": gaussian_blur(x[:m], 0.3 + 2.0 * torch.rand(m, generator=gen)),
            "noised": noise.clamp(0, 1),
            "thresholded": (x[m:2 * m] > 0.1 + 0.8 * level(m)).to(x.dtype),
            "blended": mix * x[2 * m:3 * m] + (1 - mix) * torch.rand(m, 1, r, r, generator=gen),
            "salt_pepper": torch.where(replaced, torch.rand(m, 1, r, r, generator=gen), x[3 * m:4 * m]),
            "blank": blank,
            "uniform": torch.rand(max(1, m // 4), 1, r, r, generator=gen)}


def _correlations(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr
    return {"pearson": float(pearsonr(pred, true)[0]), "spearman": float(spearmanr(pred, true)[0]),
            "rmse_bytes": float(np.sqrt(np.mean((pred - true) ** 2))), "n": int(len(true))}


def descent_check(resolution: int = 28, n: int = 16, steps: int = 100, lr: float = 0.02,
                  seed: int = 0) -> dict[str, float]:
    """Gradient descent on the proxy of ``n`` real test images (Adam, pixels clamped to [0, 1] after each
    step): their true mean JPEG size before and after, and the share of images whose true size fell."""
    gen = torch.Generator().manual_seed(seed)
    x, _ = load_mnist("test", resolution)
    x0 = x[torch.randperm(len(x), generator=gen)[:n]]
    z = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = jpeg_proxy_bytes(z).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            z.clamp_(0, 1)
    before, after = jpeg_bytes(x0), jpeg_bytes(z.detach())
    return {"resolution": resolution, "images": n, "steps": steps, "lr": lr,
            "true_bytes_before": float(before.mean()), "true_bytes_after": float(after.mean()),
            "proxy_bytes_before": float(jpeg_proxy_bytes(x0).mean()),
            "proxy_bytes_after": float(jpeg_proxy_bytes(z.detach()).mean()),
            "share_lowered": float((after < before).to(torch.float64).mean())}


def calibrate(n_real: int = 4000, seed: int = 0) -> dict[str, Any]:
    """Fit ``bytes = a + b * bits`` on train images (both resolutions) and measure it on test images."""
    fit_bits, fit_bytes, held = [], [], {}
    for resolution in RESOLUTIONS:
        for kind, x in calibration_images("train", resolution, n_real, seed).items():
            fit_bits.append(proxy_bits(x).numpy())
            fit_bytes.append(jpeg_bytes(x).numpy())
        held[resolution] = {kind: (proxy_bits(x).numpy(), jpeg_bytes(x).numpy())
                            for kind, x in calibration_images("test", resolution, n_real // 2, seed + 1).items()}
    bits, size = np.concatenate(fit_bits), np.concatenate(fit_bytes)
    (intercept, slope), *_ = np.linalg.lstsq(np.stack([np.ones_like(bits), bits], axis=1), size, rcond=None)
    heldout: dict[str, Any] = {}
    for resolution, kinds in held.items():
        pred = {k: intercept + slope * b for k, (b, _) in kinds.items()}
        true = {k: t for k, (_, t) in kinds.items()}
        off = [k for k in kinds if k != "real"]
        heldout[str(resolution)] = {
            "all": _correlations(np.concatenate(list(pred.values())), np.concatenate(list(true.values()))),
            "real": _correlations(pred["real"], true["real"]),
            "off_manifold": _correlations(np.concatenate([pred[k] for k in off]), np.concatenate([true[k] for k in off])),
            "mean_true_bytes": {k: float(t.mean()) for k, t in true.items()}}
    all_pred = np.concatenate([intercept + slope * b for kinds in held.values() for b, _ in kinds.values()])
    all_true = np.concatenate([t for kinds in held.values() for _, t in kinds.values()])
    heldout["both"] = _correlations(all_pred, all_true)
    return {"quality": JPEG_QUALITY, "eps": PROXY_EPS, "intercept": float(intercept), "slope": float(slope),
            "fitted_on": f"train split, {n_real} real images per resolution (28, 14) plus perturbations, seed {seed}",
            "fit_rows": int(len(size)), "heldout": heldout,
            "heldout_set": f"test split, {n_real // 2} real images per resolution plus perturbations, seed {seed + 1}"}


def throughput(resolution: int = 28, repeats: int = 3) -> dict[str, float]:
    """Best-of-``repeats`` images per second of :func:`jpeg_bytes` and :func:`jpeg_proxy_bytes` on the 10,000
    real test images."""
    x, _ = load_mnist("test", resolution)
    out = {}
    for name, fn in (("jpeg_bytes", jpeg_bytes), ("jpeg_proxy_bytes", jpeg_proxy_bytes)):
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            fn(x)
            best = min(best, time.perf_counter() - started)
        out[name] = len(x) / best
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.images.compress", description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", action="store_true", help=f"fit the proxy and write {PROXY_FILE.name}")
    parser.add_argument("--throughput", action="store_true", help="measure jpeg_bytes images per second")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.calibrate or args.throughput):
        parser.error("nothing to do: pass --calibrate and/or --throughput")
    torch.set_num_threads(2)
    if args.throughput:
        for resolution in RESOLUTIONS:
            rates = throughput(resolution)
            print(f"{resolution} px: " + ", ".join(f"{k} {v:,.0f} images/s" for k, v in rates.items()))
    if args.calibrate:
        started = time.perf_counter()
        fit = calibrate(seed=args.seed)
        PROXY_FILE.parent.mkdir(parents=True, exist_ok=True)
        PROXY_FILE.write_text(json.dumps(fit, indent=2) + "\n")
        proxy_fit.cache_clear()
        fit["descent"] = [descent_check(r) for r in RESOLUTIONS]
        fit["command"] = "python -m domains.images.compress --calibrate" + (f" --seed {args.seed}" if args.seed else "")
        PROXY_FILE.write_text(json.dumps(fit, indent=2) + "\n")
        print(f"bytes = {fit['intercept']:.2f} + {fit['slope']:.4f} * bits ({time.perf_counter() - started:.0f} s)")
        for key, value in fit["heldout"].items():
            rows = value if key == "both" else value["all"]
            print(f"held-out {key}: Pearson {rows['pearson']:.4f}, Spearman {rows['spearman']:.4f}, "
                  f"RMSE {rows['rmse_bytes']:.1f} bytes")
        for d in fit["descent"]:
            print(f"descent at {d['resolution']} px: true bytes {d['true_bytes_before']:.0f} -> "
                  f"{d['true_bytes_after']:.0f}, lowered for {d['share_lowered']:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
