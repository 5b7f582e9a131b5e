"""design-workbench: studies, campaigns and Pareto analysis for scientific design optimization."""

from ._version import __version__
from .determinism import deterministic_mode  # first: sets the cuBLAS workspace before anything touches CUDA
from .campaign import Campaign
from .counterfactuals import counterfactuals
from .device import resolve_device
from .domain import Domain, Evaluation, FunctionDomain
from .evaluation import Evaluator
from .objectives import Constraint, Objective
from .optimizer import Optimizer, Problem
from .plotting import plot_hypervolume, plot_parallel, plot_pairwise, plot_pareto, save
from .results import StudyResults
from .spaces import Binary, Categorical, Integer, MixedSpace, Real, SequenceSpace, Space, TensorSpace
from .storage import StorageError, open_storage
from .study import Study

__all__ = ["__version__", "deterministic_mode", "Campaign", "counterfactuals", "resolve_device", "Domain", "Evaluation",
           "FunctionDomain", "Evaluator", "Constraint",
           "Objective", "Optimizer", "Problem", "StudyResults", "Binary", "Categorical", "Integer", "MixedSpace", "Real",
           "SequenceSpace", "Space", "TensorSpace", "StorageError", "open_storage", "Study",
           "plot_hypervolume", "plot_parallel", "plot_pairwise", "plot_pareto", "save"]
