"""Rider position for low drag: where to put the saddle, the hands and how long the cranks are.

Coordinates in metres from the bottom bracket: the hip (on the saddle) ``hip_x`` behind and ``hip_y``
above it, the hands ``hand_x`` ahead and ``hand_y`` above it. The body is one fixed rider (default:
the median rider of the aero data). Drag comes from the CFD surrogate; the second objective is the
torso angle above horizontal (more upright = more comfortable), with the shoulder placed where the
torso and the slightly bent arm (95 % of its length) meet. Fit limits are constraints:
  - ``reach`` = hip-to-hand distance / (torso + 0.95 arm) <= 1: the hands can be reached;
  - ``leg_extension`` = farthest hip-to-pedal distance / (upper + lower leg) <= 1: the leg need not be
    over-stretched at the bottom of the stroke (the foot is not modelled);
  - ``knee_angle`` >= 60 degrees: the inner knee angle at the top of the stroke (deep flexion hurts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from workbench.domain import Domain
from workbench.objectives import Constraint, Objective
from workbench.spaces import MixedSpace, Real

from .data import RIDER_COLUMNS
from .surrogates import load_surrogate

#: the median rider of the aero data (metres)
MEDIAN_RIDER = {"upper_leg": 0.397, "lower_leg": 0.518, "arm_length": 0.637, "torso_length": 0.524,
                "neck_and_head_length": 0.305, "torso_width": 0.341}
#: position bounds: the 1 % / 99 % quantiles of the aero data, rounded outwards
POSITION_BOUNDS = {"hand_x": (0.21, 0.70), "hand_y": (0.34, 0.84), "hip_x": (0.26, 0.55), "hip_y": (0.34, 0.76),
                   "crank_length": (0.135, 0.195)}


class RiderAero(Domain):
    """Minimize drag (N) and maximize torso angle (degrees) of one rider, subject to fit limits."""

    name = "rider_aero"

    def __init__(self, rider: Mapping[str, float] | None = None, knee_angle: float = 60.0,
                 device: str | torch.device | None = None) -> None:
        unknown = sorted(set(rider or {}) - set(MEDIAN_RIDER))
        if unknown:
            raise KeyError(f"unknown body dimensions {unknown}; known: {list(MEDIAN_RIDER)}")
        self.rider = {**MEDIAN_RIDER, **(rider or {})}
        space = MixedSpace(Real(name, lo, hi) for name, (lo, hi) in POSITION_BOUNDS.items())
        super().__init__(space, [Objective("drag", "minimize"), Objective("torso_angle", "maximize")],
                         [Constraint("reach", 1.0, "<="), Constraint("leg_extension", 1.0, "<="),
                          Constraint("knee_angle", float(knee_angle), ">=")])
        self._drag = load_surrogate("drag", device)
        self._body = torch.tensor([self.rider[c] for c in RIDER_COLUMNS[5:]], dtype=torch.float64)

    def evaluate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.space.check_batch(x).to(torch.float64)
        hand_x, hand_y, hip_x, hip_y, crank = x.unbind(1)
        r = self.rider
        if self._drag.device != x.device:
            self._drag.to(x.device)
        with torch.no_grad():
            drag = self._drag.predict(torch.cat([x, self._body.to(x.device).expand(len(x), -1)], dim=1))[0][:, 0]
        arm, torso = 0.95 * r["arm_length"], r["torso_length"]
        hip_hand = torch.hypot(hip_x + hand_x, hand_y - hip_y)
        # angle at the hip between the hip->hand line and the torso (law of cosines; 0 when out of reach)
        cos_hip = ((torso ** 2 + hip_hand ** 2 - arm ** 2) / (2 * torso * hip_hand)).clamp(-1.0, 1.0)
        torso_angle = torch.rad2deg(torch.atan2(hand_y - hip_y, hip_x + hand_x) + torch.acos(cos_hip))
        hip_bb = torch.hypot(hip_x, hip_y)
        up, low = r["upper_leg"], r["lower_leg"]
        closest = (hip_bb - crank).clamp_min(1e-6)
        cos_knee = ((up ** 2 + low ** 2 - closest ** 2) / (2 * up * low)).clamp(-1.0, 1.0)
        return {"drag": drag.to(torch.float64), "torso_angle": torso_angle,
                "reach": hip_hand / (torso + arm), "leg_extension": (hip_bb + crank) / (up + low),
                "knee_angle": torch.acos(cos_knee) * (180.0 / math.pi)}
