"""NeuralFoil's networks in torch: batched, on any device, differentiable in the section and the angle.

The weights are neuralfoil's own ``nn-<size>.npz`` files (extra ``shapes``); the forward pass does what
``neuralfoil.get_aero_from_kulfan_parameters`` does for the integral outputs: scale the 25 inputs, run the
swish MLP on the section and on its mirror image (upper and lower surfaces swapped and negated, alpha negated),
average the two (CL and CM change sign on the mirror), subtract the Mahalanobis distance of the inputs from the
training data from the confidence logit, and unscale. Only the first four outputs (confidence, CL, CD, CM) are
computed: the last layer is cut to those rows, which gives the same numbers for a fraction of the work (checked
against neuralfoil in ``tests/test_airfoils.py``). Differentiability is what DRAKES and gradient guidance need;
the numpy package stays the reference.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .sections import INSTALL_HINT, SECTION_SIZE

MODEL_SIZES = ("xxsmall", "xsmall", "small", "medium", "large", "xlarge", "xxlarge", "xxxlarge")
N_INPUTS = 25
N_OUTPUTS = 4  # confidence logit, 2 CL, log-CD code, 20 CM


def weights_dir() -> Path:
    """neuralfoil's folder of network weights; an ImportError naming the ``shapes`` extra without it. The package
    is located, not imported (importing it imports aerosandbox and casadi, which the torch networks do not need)."""
    spec = importlib.util.find_spec("neuralfoil")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"NeuralFoil (the airfoil physics) is not installed: {INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "nn_weights_and_biases"
    if not folder.is_dir():
        raise ImportError(f"the neuralfoil package at {folder.parent} has no network weights; reinstall it: "
                          f"{INSTALL_HINT}")
    return folder


class NeuralFoil(nn.Module):
    """One NeuralFoil network (``size`` in ``MODEL_SIZES``) as a frozen torch module (float64 buffers)."""

    def __init__(self, size: str = "xxxlarge") -> None:
        super().__init__()
        if size not in MODEL_SIZES:
            raise ValueError(f"unknown NeuralFoil model size {size!r}; choose from {list(MODEL_SIZES)}")
        self.size = size
        folder = weights_dir()
        params = dict(np.load(folder / f"nn-{size}.npz"))
        layers = sorted({int(k.split(".")[1]) for k in params})
        self.n_layers = len(layers)
        for j, i in enumerate(layers):
            w, b = params[f"net.{i}.weight"], params[f"net.{i}.bias"]
            if j == len(layers) - 1:
                w, b = w[:N_OUTPUTS], b[:N_OUTPUTS]
            self.register_buffer(f"w{j}", torch.from_numpy(np.ascontiguousarray(w)).double())
            self.register_buffer(f"b{j}", torch.from_numpy(np.ascontiguousarray(b)).double())
        dist = np.load(folder / "scaled_input_distribution.npz")
        self.register_buffer("mean_in", torch.from_numpy(dist["mean_inputs_scaled"]).double())
        self.register_buffer("inv_cov", torch.from_numpy(dist["inv_cov_inputs_scaled"]).double())

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        """Scaled inputs ``[n, 25]`` -> the first four scaled outputs ``[n, 4]``, confidence logit penalized by
        the squared Mahalanobis distance over 2 x 25."""
        h = x
        for j in range(self.n_layers):
            h = h @ getattr(self, f"w{j}").T + getattr(self, f"b{j}")
            if j < self.n_layers - 1:
                h = h * torch.sigmoid(h)  # swish
        d = x - self.mean_in
        maha = ((d @ self.inv_cov) * d).sum(-1)
        return torch.cat([h[:, :1] - (maha / (2 * N_INPUTS)).unsqueeze(1), h[:, 1:]], dim=1)

    def forward(self, v: torch.Tensor, alpha: torch.Tensor, Re: float | torch.Tensor, n_crit: float = 9.0,
                xtr_upper: float = 1.0, xtr_lower: float = 1.0) -> dict[str, torch.Tensor]:
        """Sections ``v [n, 18]`` (Kulfan order of ``sections``) at angles ``alpha [n]`` (degrees) and Reynolds
        numbers ``Re`` (scalar or ``[n]``) -> ``confidence``, ``CL``, ``CD``, ``CM``, each ``[n]`` float64."""
        if v.dim() != 2 or v.shape[1] != SECTION_SIZE:
            raise ValueError(f"sections must be [n, {SECTION_SIZE}], got shape {list(v.shape)}")
        v = v.to(self.w0)
        n = v.shape[0]
        alpha = torch.as_tensor(alpha, dtype=v.dtype, device=v.device).expand(n)
        Re = torch.as_tensor(Re, dtype=v.dtype, device=v.device).expand(n)
        rad = torch.deg2rad(alpha)
        cos = torch.cos(rad)
        flow = [torch.sin(2 * rad), cos, 1 - cos ** 2, (torch.log(Re) - 12.5) / 3.5,
                torch.full_like(cos, (n_crit - 9) / 4.5), torch.full_like(cos, xtr_upper),
                torch.full_like(cos, xtr_lower)]
        x = torch.cat([v[:, :16], v[:, 16:17], v[:, 17:18] * 50, torch.stack(flow, dim=1)], dim=1)  # [n, 25]
        mirror = torch.cat([-v[:, 8:16], -v[:, :8], -v[:, 16:17], x[:, 17:18], -x[:, 18:19], x[:, 19:23],
                            x[:, 24:25], x[:, 23:24]], dim=1)
        y, ym = self._net(x), self._net(mirror)
        fused = (y + ym * torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=y.dtype, device=y.device)) / 2
        return {"confidence": torch.sigmoid(fused[:, 0]), "CL": fused[:, 1] / 2,
                "CD": torch.exp((fused[:, 2] - 2) * 2), "CM": fused[:, 3] / 20}


@lru_cache(maxsize=None)
def _cached(size: str, device: str) -> NeuralFoil:
    return NeuralFoil(size).to(device).eval().requires_grad_(False)


def neuralfoil(size: str = "xxxlarge", device: str | torch.device = "cpu") -> NeuralFoil:
    """The NeuralFoil network of ``size`` on ``device``, loaded once per process (shared; do not modify)."""
    return _cached(size, str(torch.device(device)))


def solve_alpha(model: NeuralFoil, v: torch.Tensor, cl: float, Re: float, alpha0: float | None = None,
                iterations: int = 8, bounds: tuple[float, float] = (-10.0, 20.0), **flow: float) -> torch.Tensor:
    """Angle of attack ``[n]`` (degrees) at which each section ``v [n, 18]`` gives lift ``cl``: batched Newton
    steps on CL(alpha) with the slope from autograd, each step limited to 4 degrees and clamped to ``bounds``.
    No gradient flows back (see ``at_lift`` for the differentiable answer)."""
    v = v.detach().to(model.w0)
    start = cl / (2 * np.pi) * 180 / np.pi if alpha0 is None else alpha0  # thin-airfoil guess
    alpha = torch.full((v.shape[0],), float(start), dtype=v.dtype, device=v.device)
    for _ in range(iterations):
        with torch.enable_grad():
            a = alpha.clone().requires_grad_(True)
            lift = model(v, a, Re, **flow)["CL"]
            slope, = torch.autograd.grad(lift.sum(), a)
        # a flat or falling lift curve (stall) gets the thin-airfoil slope so the step stays bounded
        slope = torch.where(slope > 0.01, slope, torch.full_like(slope, 2 * np.pi ** 2 / 180))
        step = ((cl - lift.detach()) / slope).clamp(-4.0, 4.0)
        alpha = (alpha + step).clamp(*bounds)
    return alpha


def at_lift(model: NeuralFoil, v: torch.Tensor, cl: float, Re: float, iterations: int = 8,
            bounds: tuple[float, float] = (-10.0, 20.0), **flow: float) -> dict[str, torch.Tensor]:
    """Aerodynamics of sections ``v [n, 18]`` trimmed to lift ``cl``: ``alpha``, ``confidence``, ``CL``,
    ``CD``, ``CM``, ``LD`` each ``[n]``. Differentiable in ``v`` when it requires grad: the solved angle is
    refined by one Newton step taken with gradients, which gives alpha's implicit derivative
    -dCL/dv / dCL/dalpha at the solution."""
    alpha = solve_alpha(model, v, cl, Re, iterations=iterations, bounds=bounds, **flow)
    if v.requires_grad:
        with torch.enable_grad():
            a = alpha.clone().requires_grad_(True)
            lift = model(v, a, Re, **flow)["CL"]
            slope, = torch.autograd.grad(lift.sum(), a, retain_graph=True)
            slope = torch.where(slope > 0.01, slope, torch.full_like(slope, 2 * np.pi ** 2 / 180)).detach()
            alpha = (alpha - (lift - cl) / slope).clamp(*bounds)
    out = model(v, alpha, Re, **flow)
    out["alpha"] = alpha
    out["LD"] = out["CL"] / out["CD"]
    return out
