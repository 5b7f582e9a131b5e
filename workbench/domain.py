"""The Domain protocol: what is designed, and how designs are scored."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .objectives import Constraint, Objective, as_constraints, as_objectives
from .spaces import MixedSpace, Space


@dataclass
class Evaluation:
    """Scores of a batch of ``n`` designs, in the user's directions.

    objectives: ``[n, k]``; constraints: ``[n, c]`` raw values; ok: ``[n]`` bool;
    errors: one message (or None) per row; seconds: ``[n]`` evaluation time per row.
    """

    objectives: torch.Tensor
    constraints: torch.Tensor
    ok: torch.Tensor
    errors: list[str | None] = field(default_factory=list)
    seconds: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.objectives.shape[0])


class Domain:
    """A designed object: a space, objectives, constraints and a batched ``evaluate``.

    Subclasses implement ``evaluate(x: [n, *space.shape])`` returning one of: a tensor
    ``[n, k + c]`` (objectives then constraints), a tuple ``(objectives [n, k],
    constraints [n, c])``, a mapping from objective/constraint name to ``[n]`` values,
    or an :class:`Evaluation`. The evaluation engine turns that into per-row results.
    """

    name: str = "domain"

    def __init__(self, space: Space, objectives: Sequence[Objective | str | tuple],
                 constraints: Sequence[Constraint | str | tuple] = (), name: str | None = None) -> None:
        if not isinstance(space, Space):
            raise TypeError(f"space must be a workbench Space, got {type(space).__name__}")
        self.space = space
        self.objectives = as_objectives(objectives)
        self.constraints = as_constraints(constraints)
        clash = {o.name for o in self.objectives} & {c.name for c in self.constraints}
        if clash:
            raise ValueError(f"names used both as objective and constraint: {sorted(clash)}")
        if name is not None:
            self.name = name
        elif type(self).name == "domain":
            self.name = type(self).__name__

    @property
    def n_obj(self) -> int:
        return len(self.objectives)

    @property
    def n_con(self) -> int:
        return len(self.constraints)

    def evaluate(self, x: torch.Tensor) -> Any:
        """Score a batch ``x: [n, *space.shape]`` (see the class docstring for return forms)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement evaluate()")

    def evaluate_soft(self, x: torch.Tensor) -> Any:
        """Differentiable scores of soft designs: relaxed sequences ``[n, length, vocab]`` (rows sum to 1)
        for a sequence space, continuous tensors ``[n, *shape]`` for a tensor space.

        Domains whose objectives are differentiable (a CNN oracle, a smooth proxy of a
        non-differentiable score) implement this so gradient-based samplers (DRAKES, DPS) can
        back-propagate the reward. Returns the same forms as :meth:`evaluate`, with gradients attached.
        """
        raise NotImplementedError(f"{type(self).__name__} has no differentiable evaluate_soft(); "
                                  "gradient-based samplers need one")

    def dataset(self) -> pd.DataFrame | None:
        """Real designs of this domain (readable columns), where it has them."""
        return None

    def prior(self) -> Any:
        """A trained generative model over the space, where the domain has one."""
        return None

    def optimizer_hints(self) -> dict[str, Any]:
        """Extra knowledge an optimizer may use (e.g. a counterfactual query); passed as ``Problem.hints``."""
        return {}

    def pareto_front(self, n: int = 1000) -> torch.Tensor | None:
        """Known true Pareto front ``[m, k]`` in the user's directions (benchmarks only)."""
        return None

    def render(self, x: torch.Tensor, ax: Any = None) -> Any:
        """Draw designs ``x: [n, *space.shape]`` in the domain's own form (bike drawings, sequence logos, image
        grids, page layouts, molecule grids); returns the Axes (or Figure) drawn on.

        This is the picture hook of the protocol: with ``ax=None`` a domain makes a figure sized for ``n``
        designs, and :meth:`picture` (and so the HTML report, on a study's best designs) saves that figure.
        """
        raise NotImplementedError(f"{type(self).__name__} has no render()")

    def picture(self, x: torch.Tensor, path: str | os.PathLike | None = None, dpi: int = 100) -> bytes:
        """PNG bytes of :meth:`render` on designs ``x: [n, *space.shape]``, also written to ``path`` if given.

        The figure is closed afterwards, so pictures of many studies do not pile up in matplotlib's memory.
        """
        import io

        import matplotlib.pyplot as plt

        drawn = self.render(x)
        fig = drawn if hasattr(drawn, "savefig") else getattr(drawn, "figure", None)
        if fig is None:
            raise TypeError(f"{type(self).__name__}.render() returned {type(drawn).__name__}; expected a matplotlib "
                            "Axes or Figure")
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        finally:
            plt.close(fig)
        png = buffer.getvalue()
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(png)
        return png

    def describe(self) -> dict[str, Any]:
        """JSON description stored with every study, so storage can be read without this code."""
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "space": self.space.to_spec(),
                "objectives": [o.to_spec() for o in self.objectives],
                "constraints": [c.to_spec() for c in self.constraints]}

    @classmethod
    def from_function(cls, space: Space, fn: Callable[..., Any], objectives: Sequence[Objective | str | tuple],
                      constraints: Sequence[Constraint | str | tuple] = (), dataset: pd.DataFrame | None = None,
                      name: str | None = None, inputs: str = "tensor") -> FunctionDomain:
        """Turn a batched function (or a trained model's predict) into a domain.

        ``inputs`` says what ``fn`` receives: "tensor" (``[n, d]`` torch), "numpy" or
        "frame" (readable DataFrame, as a scikit-learn model expects). ``fn`` may return
        a tensor/array ``[n, k + c]``, a tuple (objectives, constraints), a dict by name,
        or a DataFrame with objective/constraint columns.
        """
        return FunctionDomain(space, fn, objectives, constraints, dataset=dataset, name=name, inputs=inputs)


class FunctionDomain(Domain):
    """A domain built from a batched function; see :meth:`Domain.from_function`."""

    _INPUTS = ("tensor", "numpy", "frame")

    def __init__(self, space: Space, fn: Callable[..., Any], objectives: Sequence[Objective | str | tuple],
                 constraints: Sequence[Constraint | str | tuple] = (), dataset: pd.DataFrame | None = None,
                 name: str | None = None, inputs: str = "tensor") -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if inputs not in self._INPUTS:
            raise ValueError(f"inputs must be one of {self._INPUTS}, got {inputs!r}")
        super().__init__(space, objectives, constraints, name=name or getattr(fn, "__name__", "function"))
        self.fn = fn
        self.inputs = inputs
        if dataset is not None and isinstance(space, MixedSpace):
            space.from_frame(dataset)  # clear error now if the data does not fit the space
        self._dataset = dataset

    def evaluate(self, x: torch.Tensor) -> Any:
        if self.inputs == "tensor":
            return self.fn(x)
        if self.inputs == "numpy":
            return self.fn(x.detach().cpu().numpy())
        return self.fn(self.space.to_frame(x))

    def dataset(self) -> pd.DataFrame | None:
        return self._dataset


def split_outputs(domain: Domain, out: Any, n: int, keep_grad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalize whatever ``domain.evaluate`` returned into (objectives ``[n, k]``, constraints ``[n, c]``).

    ``keep_grad`` keeps the autograd graph (for :meth:`Domain.evaluate_soft`); otherwise
    the values are detached.
    """
    k, c = domain.n_obj, domain.n_con
    names_f = [o.name for o in domain.objectives]
    names_g = [g.name for g in domain.constraints]
    if isinstance(out, pd.DataFrame):
        out = {col: out[col].to_numpy() for col in out.columns}
    if isinstance(out, Mapping):
        missing = [name for name in names_f + names_g if name not in out]
        if missing:
            raise ValueError(f"evaluate() returned no values for {missing}; it returned {sorted(out)}")
        cols = [_as_column(out[name], n, name, keep_grad) for name in names_f + names_g]
        stacked = torch.stack(cols, dim=1) if cols else torch.empty((n, 0), dtype=torch.float64)
        return stacked[:, :k], stacked[:, k:]
    if isinstance(out, tuple):
        if len(out) != 2:
            raise ValueError(f"evaluate() returned a tuple of {len(out)}; expected (objectives, constraints)")
        f = _as_matrix(out[0], n, k, "objectives", keep_grad)
        g = (_as_matrix(out[1], n, c, "constraints", keep_grad) if c
             else torch.empty((n, 0), dtype=torch.float64, device=f.device))
        return f, g
    both = _as_matrix(out, n, k + c, "objectives and constraints", keep_grad)
    return both[:, :k], both[:, k:]


def _to_tensor(value: Any, keep_grad: bool = False) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return (value if keep_grad else value.detach()).to(torch.float64)
    return torch.from_numpy(np.array(value, dtype=np.float64))


def _as_column(value: Any, n: int, name: str, keep_grad: bool = False) -> torch.Tensor:
    t = _to_tensor(value, keep_grad)
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if tuple(t.shape) != (n,):
        raise ValueError(f"evaluate() returned shape {list(t.shape)} for {name!r}; expected [{n}]")
    return t


def _as_matrix(value: Any, n: int, width: int, what: str, keep_grad: bool = False) -> torch.Tensor:
    t = _to_tensor(value, keep_grad)
    if t.dim() == 1 and width == 1:
        t = t.unsqueeze(1)
    if tuple(t.shape) != (n, width):
        raise ValueError(f"evaluate() returned {what} of shape {list(t.shape)}; expected [{n}, {width}]")
    return t
