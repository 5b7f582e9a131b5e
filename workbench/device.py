"""Choosing the device designs are evaluated and optimized on."""

from __future__ import annotations

import os

import torch

ENV_VAR = "WORKBENCH_DEVICE"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` -> $WORKBENCH_DEVICE if set, else CUDA when available, else CPU.

    An explicit device is checked: asking for CUDA on a machine without it is an error.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        device = os.environ.get(ENV_VAR) or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available on this machine")
    return dev
