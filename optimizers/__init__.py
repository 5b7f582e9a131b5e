"""Generic search and sampling algorithms, shared by every domain whose space they support."""

from .mcd import MCD
from .nsga2 import NSGA2
from .random_search import RandomSearch

__all__ = ["MCD", "NSGA2", "RandomSearch"]


def __getattr__(name: str):
    # heavy optional modules load on first use
    if name == "QLogNEHVI":
        from .qlognehvi import QLogNEHVI

        return QLogNEHVI
    raise AttributeError(f"module 'optimizers' has no attribute {name!r}")
