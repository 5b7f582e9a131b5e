"""Standard multi-objective benchmark problems as workbench domains, with known Pareto fronts."""

from .dtlz import DTLZ2, C1DTLZ1
from .mixture import GaussianMixture2D
from .motif import PlantedMotif
from .osy import OSY
from .zdt import ZDT1, ZDT2, ZDT3

__all__ = ["ZDT1", "ZDT2", "ZDT3", "DTLZ2", "C1DTLZ1", "OSY", "PlantedMotif", "GaussianMixture2D"]
