"""Bicycle domains on the BIKED / FRAMED data (biked-commons, MIT licence): frame structure and rider aerodynamics.

``BikeFrame``: 37 frame parameters -> mass, compliances, safety factors (FEA surrogate), geometric
buildability checks and rider fit (``geometry``), and optionally FRAMED's validity label (a classifier).
``RiderAero``: rider position on the bike -> drag (CFD surrogate) and torso angle, with fit limits.
See ``docs/bicycles.md``.
"""

from .aero import RiderAero
from .data import (FRAME_COLUMNS, MATERIALS, RIDER_COLUMNS, STRUCTURE_TARGETS, load_aero, load_frames,
                   load_frames_with_results, load_structure, load_validity)
from .frame import PROPERTIES, STRUCTURAL, BikeFrame, frame_space
from .geometry import CHECKS, FIT, FORKS, MEDIUM_ROAD_FIT, WHEELS, Build, frame_points
from .surrogates import Surrogate, load_surrogate

__all__ = ["BikeFrame", "RiderAero", "load_structure", "load_validity", "load_aero", "load_frames",
           "load_frames_with_results", "load_surrogate", "Surrogate", "frame_space", "frame_points", "Build", "CHECKS",
           "FIT", "MEDIUM_ROAD_FIT", "WHEELS", "FORKS", "STRUCTURAL",
           "PROPERTIES", "FRAME_COLUMNS", "MATERIALS", "RIDER_COLUMNS", "STRUCTURE_TARGETS"]
