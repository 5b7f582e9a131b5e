"""Optimizers by name, resolved through Python entry points (group ``workbench.optimizers``).

``workbench/`` imports no optimizer module; where it needs a default (``counterfactuals`` uses
"mcd"), it looks the name up here. A package registers its optimizers in its ``pyproject.toml``::

    [project.entry-points."workbench.optimizers"]
    mcd = "optimizers.mcd:MCD"

``"module:Class"`` strings also work without registration.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from .optimizer import Optimizer

GROUP = "workbench.optimizers"


def available_optimizers() -> list[str]:
    """Names of the registered optimizers."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def optimizer_class(name: str) -> type[Optimizer]:
    """The optimizer class registered as ``name`` (or named by ``"module:Class"``)."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"optimizer name must be a non-empty string, got {name!r}")
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise ValueError(f"cannot load optimizer {name!r}: {err}") from None
    else:
        matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not matches:
            known = available_optimizers()
            hint = (f"registered: {known}" if known else
                    "none is registered: install the package (pip install -e .) so its entry points exist")
            raise ValueError(f"unknown optimizer {name!r}; {hint}")
        cls = matches[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise TypeError(f"optimizer {name!r} resolves to {cls!r}, which is not a workbench Optimizer class")
    return cls


def make_optimizer(name: str, **params: Any) -> Optimizer:
    """An instance of the optimizer registered as ``name`` built with ``params``."""
    return optimizer_class(name)(**params)
