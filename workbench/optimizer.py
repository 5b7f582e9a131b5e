"""The Optimizer protocol: ask / tell with a resumable state of tensors and JSON."""

from __future__ import annotations

import hashlib
import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .domain import Evaluation
from .objectives import Constraint, Objective, objective_signs, violations
from .spaces import Space


@dataclass
class Problem:
    """What an optimizer may know of a domain: its space, objectives, constraints, device and hints."""

    space: Space
    objectives: list[Objective]
    constraints: list[Constraint]
    device: torch.device
    seed: int
    ref_point: torch.Tensor | None = None  # [k] minimization-space reference point, where known
    hints: dict[str, Any] = field(default_factory=dict)  # domain.optimizer_hints(): optional extra knowledge
    load_prior: Callable[[], Any] | None = None  # domain.prior, called on first use of ``prior``
    evaluate: Callable[[torch.Tensor], Evaluation] | None = None  # score designs without storing them (rewards)
    evaluate_soft: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None  # differentiable

    @property
    def prior(self) -> Any:
        """The domain's trained generative model (loaded once, on first use), or None."""
        if not hasattr(self, "_prior"):
            self._prior = self.load_prior() if self.load_prior is not None else None
        return self._prior

    @property
    def n_obj(self) -> int:
        return len(self.objectives)

    @property
    def n_con(self) -> int:
        return len(self.constraints)

    def minimized(self, evaluation: Evaluation) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Evaluation -> (F ``[n, k]`` minimized, G ``[n, c]`` violations (<= 0 feasible), ok ``[n]``).

        Failed rows get F = +inf and G = +inf, so every optimizer ranks them last.
        """
        device = self.device
        ok = evaluation.ok.to(device)
        f = evaluation.objectives.to(device, torch.float64) * objective_signs(self.objectives, device)
        g = violations(self.constraints, evaluation.constraints.to(device, torch.float64))
        inf = torch.tensor(float("inf"), dtype=torch.float64, device=device)
        f = torch.where(ok.unsqueeze(1), f, inf)
        g = torch.where(ok.unsqueeze(1), g, inf)
        return f, g, ok

    def minimized_soft(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft designs (see ``Domain.evaluate_soft``) -> differentiable (F ``[n, k]`` minimized, G ``[n, c]``
        violations)."""
        if self.evaluate_soft is None:
            raise ValueError("this problem has no differentiable evaluation (Domain.evaluate_soft)")
        f, g = self.evaluate_soft(x)
        return f * objective_signs(self.objectives, f.device), violations(self.constraints, g)


class Optimizer(ABC):
    """Generic search: ``ask(n)`` proposes designs, ``tell(x, evaluation)`` learns from their scores.

    Parameters go in ``__init__`` and are stored as attributes of the same name
    (scikit-learn style), so ``params()`` can record them with the study. ``setup`` is
    called once by the Study with the :class:`Problem`; a resumed study then calls
    ``load_state_dict`` with the last stored ``state_dict``.
    """

    name: str = "optimizer"

    def setup(self, problem: Problem) -> None:
        """Bind to a problem and seed the generator; subclasses extend and check the space."""
        self.problem = problem
        self.device = problem.device
        self.generator = torch.Generator(device=problem.device)
        self.generator.manual_seed(int(problem.seed))

    @property
    def default_batch_size(self) -> int:
        """How many designs one ``ask`` proposes when the study does not say."""
        return 1

    @abstractmethod
    def ask(self, n: int) -> torch.Tensor:
        """Propose ``n`` designs ``[n, *space.shape]`` on the problem's device."""

    @abstractmethod
    def tell(self, x: torch.Tensor, evaluation: Evaluation) -> None:
        """Learn from the scores of designs ``x`` (as returned by ``ask``)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically: tensors and JSON values only."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["generator"].to(torch.uint8).cpu()
        if saved.numel() == self.generator.get_state().numel():
            self.generator.set_state(saved)
            return
        # saved on another device type (a CUDA generator's state is 16 bytes, a CPU one's 5056): that random
        # stream cannot go on here, so a study run on a GPU still opens on a CPU, with a new seeded stream
        warnings.warn(f"{self.name}: the stored random state is from another device type than {self.device}; "
                      "results stay readable, but continuing this study draws a different random stream",
                      stacklevel=2)
        self.generator.manual_seed(int.from_bytes(hashlib.sha256(saved.numpy().tobytes()).digest()[:8], "little"))

    def counters(self) -> dict[str, int]:
        """Extra call counters stored with the study (e.g. denoiser calls of a sampler)."""
        return {}

    def params(self) -> dict[str, Any]:
        """Constructor parameters (JSON values), recorded with the study."""
        out = {}
        for pname in inspect.signature(type(self).__init__).parameters:
            if pname == "self" or not hasattr(self, pname):
                continue
            value = getattr(self, pname)
            if value is None or isinstance(value, (str, int, float, bool)):
                out[pname] = value
            elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
                out[pname] = list(value)
            else:
                out[pname] = repr(value)
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "class": f"{type(self).__module__}.{type(self).__qualname__}", "params": self.params()}
