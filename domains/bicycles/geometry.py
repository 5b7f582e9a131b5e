"""Frame geometry from the 37 parameters: the side view, rider-fit quantities and buildability checks.

One function, :func:`frame_points`, builds every key point of a batch of frames (torch, any device);
the drawing (``BikeFrame.render``), the fit quantities and the checks all use it, so a frame that is
drawn with overlapping wheels is also one that fails ``wheel_overlap``.

Construction (BikeCAD's, as the MIT DeCoDE lab's Bike-Bench rebuilds it; metres, degrees; bottom
bracket at the origin, x forward, y up):

- rear axle: ``CS Length`` from the bottom bracket, ``BB Drop`` above it;
- seat tube: ``ST Length`` from the bottom bracket at ``ST Angle``, leaning back; the top tube meets it
  ``ST UX`` below its top, the seat stays ``SS E`` below its top;
- head tube: its top is ``Stack`` above the bottom bracket, its axis at ``HT Angle``; the down tube meets
  it ``HT LX`` above its bottom, which fixes its height; ``DT Length`` (bottom bracket to that junction)
  fixes its horizontal position; the top tube meets it ``HT UX`` below its top;
- front axle: at the rear axle's height (equal wheels, a level bike), ``fork_offset`` ahead of the
  steering axis. The fork's length follows from that (reported as ``fork_length``, crown to axle along
  the steering axis); the data hold neither wheels nor forks, so both are :class:`Build` settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

#: wheel presets: radius in metres to the tyre's outside (bead seat diameter / 2 + tyre height)
WHEELS = {"700c": 0.337,   # 622 mm rim, 25-28 mm tyre: BikeCAD's default road wheel of 674 mm
          "650b": 0.3375,  # 584 mm rim, 47 mm tyre (road plus, gravel)
          "29in": 0.368,   # 622 mm rim, 57 mm tyre (mountain)
          "26in": 0.3295,  # 559 mm rim, 50 mm tyre (mountain, touring)
          "24in": 0.2985,  # 507 mm rim, 45 mm tyre (children)
          "20in": 0.253}   # 406 mm rim, 50 mm tyre (BMX, children, folding)
#: fork presets: offset (rake), metres, perpendicular from the steering axis to the front axle
FORKS = {"road": 0.045, "mtb": 0.044}

TUBES = ("tt", "dt", "st", "ht", "bb", "cs", "ss")
_OD = {"tt": "TT OD", "dt": "DT OD", "st": "ST OD", "ht": "HT OD", "bb": "BB OD", "cs": "CS OD", "ss": "SS OD"}
_WALL = {t: f"{t.upper()} Thickness" for t in TUBES}
#: parameters that are lengths or sizes and must be positive (BB Drop may be negative: a raised bottom bracket)
POSITIVE = ("CS Length", "Stack", "SS E", "ST Length", "HT Length", "DT Length", "HT LX", "HT UX", "ST UX", "BB Length",
            "Dropout Offset", "SSB Offset", "CSB Offset", "CS F", "SS Z", *(_OD[t] for t in TUBES),
            *(_WALL[t] for t in TUBES))
ANGLES = ("ST Angle", "HT Angle")
#: tube -> (start point, end point) of frame_points
TUBE_ENDS = {"cs": ("bb", "rear_axle"), "ss": ("rear_axle", "ss_top"), "st": ("bb", "st_top"), "dt": ("bb", "dt_top"),
             "tt": ("tt_rear", "tt_front"), "ht": ("ht_top", "ht_bottom"), "ssb": ("ssb_a", "ssb_b"),
             "csb": ("csb_a", "csb_b")}


@dataclass(frozen=True)
class Build:
    """What the frame data leave out, as documented settings (metres).

    wheel: a :data:`WHEELS` name or a radius; fork: a :data:`FORKS` name or an offset; crank: crank length;
    wheel_gap: the least gap between the two tyres (an axle distance of two radii plus this);
    tyre_gap: the least gap between a tyre and a tube; ground: the least gap between a pedal at the
    bottom of its stroke (the crank's end) and the ground; seatpost: (least, most) saddle height above
    the seat tube's top.
    """

    wheel: str | float = "700c"
    fork: str | float = "road"
    crank: float = 0.1725
    wheel_gap: float = 0.010
    tyre_gap: float = 0.0
    ground: float = 0.015
    seatpost: tuple[float, float] = (0.04, 0.25)

    def __post_init__(self) -> None:
        if isinstance(self.wheel, str) and self.wheel not in WHEELS:
            raise ValueError(f"unknown wheel {self.wheel!r}; choose from {sorted(WHEELS)} or give a radius in metres")
        if isinstance(self.fork, str) and self.fork not in FORKS:
            raise ValueError(f"unknown fork {self.fork!r}; choose from {sorted(FORKS)} or give an offset in metres")
        if not 0.1 <= self.radius <= 0.5:
            raise ValueError(f"a wheel radius must be in [0.1, 0.5] m, got {self.radius}")
        if not 0.0 <= self.offset <= 0.1:
            raise ValueError(f"a fork offset must be in [0, 0.1] m, got {self.offset}")
        if self.crank <= 0 or min(self.wheel_gap, self.tyre_gap, self.ground) < 0:
            raise ValueError("crank must be > 0 and the gaps >= 0")
        if not 0 <= self.seatpost[0] <= self.seatpost[1]:
            raise ValueError(f"seatpost must be (least, most) with 0 <= least <= most, got {self.seatpost}")

    @property
    def radius(self) -> float:
        return float(WHEELS[self.wheel] if isinstance(self.wheel, str) else self.wheel)

    @property
    def offset(self) -> float:
        return float(FORKS[self.fork] if isinstance(self.fork, str) else self.fork)

    def to_spec(self) -> dict:
        return {**asdict(self), "seatpost": list(self.seatpost)}


def check_parameters(params: Mapping[str, torch.Tensor]) -> dict[int, str]:
    """Rows whose parameters cannot describe a frame -> the reason: a non-positive length, diameter or
    wall thickness, or an angle outside (0, 180) degrees."""
    bad: dict[int, str] = {}
    for name in POSITIVE:
        for row in torch.nonzero(~(params[name] > 0)).flatten().tolist():
            bad.setdefault(row, f"{name} must be positive, got {float(params[name][row]):g}")
    for name in ANGLES:
        value = params[name]
        for row in torch.nonzero(~((value > 0) & (value < 180))).flatten().tolist():
            bad.setdefault(row, f"{name} must be in (0, 180) degrees, got {float(value[row]):g}")
    return bad


def _unit(angle: torch.Tensor, forward: bool) -> torch.Tensor:
    """``[n, 2]`` unit vectors: up and back at ``angle`` (seat tube) or down and forward (head tube)."""
    if forward:
        return torch.stack([torch.cos(angle), -torch.sin(angle)], dim=1)
    return torch.stack([-torch.cos(angle), torch.sin(angle)], dim=1)


def frame_points(params: Mapping[str, torch.Tensor], build: Build = Build()) -> dict[str, torch.Tensor]:
    """Key points ``[n, 2]`` of a batch of frames given by parameter columns ``[n]`` (float64 tensors).

    Impossible geometry (a down tube too short to reach its head tube, stays shorter than the drop) is
    clamped so that every point stays finite; the checks report it.
    """
    p = params
    sta, hta = torch.deg2rad(p["ST Angle"]), torch.deg2rad(p["HT Angle"])
    drop = p["BB Drop"]
    rear_x = -torch.sqrt((p["CS Length"] ** 2 - drop ** 2).clamp_min(1e-12))
    rear = torch.stack([rear_x, drop], dim=1)
    u_st, d_ht = _unit(sta, False), _unit(hta, True)
    st_len = p["ST Length"]
    above_dt = (p["HT Length"] - p["HT LX"]).clamp_min(0.0)  # head-tube top to the down-tube junction
    dt_y = p["Stack"] - above_dt * torch.sin(hta)
    dt_x = torch.sqrt((p["DT Length"] ** 2 - dt_y ** 2).clamp_min(0.0))
    dt_top = torch.stack([dt_x, dt_y], dim=1)
    ht_top = dt_top - above_dt[:, None] * d_ht
    pts = {"bb": torch.zeros_like(rear), "rear_axle": rear, "st_top": st_len[:, None] * u_st,
           "tt_rear": (st_len - p["ST UX"]).clamp_min(0.0)[:, None] * u_st,
           "ss_top": (st_len - p["SS E"]).clamp_min(0.0)[:, None] * u_st,
           "ht_top": ht_top, "ht_bottom": ht_top + p["HT Length"][:, None] * d_ht,
           "tt_front": ht_top + p["HT UX"][:, None] * d_ht, "dt_top": dt_top}
    # front axle: at the rear axle's height, build.offset ahead of the steering axis
    offset = build.offset
    along = (dt_y - drop + offset * torch.cos(hta)) / torch.sin(hta).clamp_min(1e-3)  # down the axis from dt_top
    normal = torch.stack([torch.sin(hta), torch.cos(hta)], dim=1)  # perpendicular to the axis, forward
    pts["front_axle"] = dt_top + along[:, None] * d_ht + offset * normal
    pts["fork_crown"] = pts["ht_bottom"]
    # bridges: a stub across the stay, SSB / CSB Offset from the rear axle (bridges are transverse)
    for key, far, shift, od in (("ssb", "ss_top", p["SSB Offset"], p["SS OD"]), ("csb", "bb", p["CSB Offset"],
                                                                              p["CS OD"])):
        vec = pts[far] - rear
        length = vec.norm(dim=1, keepdim=True).clamp_min(1e-6)
        unit = vec / length
        centre = rear + torch.minimum(shift[:, None], length) * unit
        across = torch.stack([-unit[:, 1], unit[:, 0]], dim=1) * (0.6 * od[:, None] + 0.01)
        pts[f"{key}_a"], pts[f"{key}_b"] = centre - across, centre + across
    return pts


def _segment_distance(point: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance ``[n]`` from points ``[n, 2]`` to the segments a -> b."""
    ab = b - a
    t = (((point - a) * ab).sum(1) / (ab * ab).sum(1).clamp_min(1e-12)).clamp(0.0, 1.0)
    return (point - (a + t[:, None] * ab)).norm(dim=1)


#: the fit quantities (metres): what a rider feels, and what a study can freeze or bound
FIT = ("stack", "reach", "saddle_height_min", "saddle_height_max", "front_center", "wheelbase", "bb_height",
       "fork_length")
#: one rider on a medium road frame (metres, ``BikeFrame(fit=...)``): a 0.70 m saddle height that the seat tube
#: allows, the stack and reach of a medium road frame and a road fork's length, so that "lighter" cannot mean "smaller"
MEDIUM_ROAD_FIT = {"saddle_height_min": (None, 0.70), "saddle_height_max": (0.70, None), "stack": (0.54, 0.62),
                   "reach": (0.36, 0.42), "fork_length": (0.34, 0.44)}


def fit_quantities(params: Mapping[str, torch.Tensor], pts: Mapping[str, torch.Tensor],
                   build: Build = Build()) -> dict[str, torch.Tensor]:
    """Rider-fit and size quantities ``[n]`` of frames: stack and reach (to the head tube's top), the saddle
    heights the seat tube allows (``build.seatpost`` above its top, along it), front centre and wheelbase
    (axle to axle), bottom-bracket height (level bike) and the fork length the frame implies."""
    reach = pts["ht_top"][:, 0]
    st_len = params["ST Length"]
    return {"stack": params["Stack"].clone(), "reach": reach,
            "saddle_height_min": st_len + build.seatpost[0], "saddle_height_max": st_len + build.seatpost[1],
            "front_center": pts["front_axle"].norm(dim=1),
            "wheelbase": (pts["front_axle"] - pts["rear_axle"]).norm(dim=1),
            "bb_height": build.radius - params["BB Drop"],
            "fork_length": (pts["front_axle"] - pts["fork_crown"]).norm(dim=1)}


#: the buildability checks, each a violation in metres (<= 0: passes); CHECK_DOC says what each asks
CHECKS = ("wheel_overlap", "front_wheel_down_tube", "rear_wheel_seat_tube", "rear_wheel_bottom_bracket",
          "chain_stay_reach", "seat_stay_reach", "seat_tube_junctions", "head_tube_junctions", "down_tube_reach",
          "top_tube_direction", "wall_thickness", "bb_ground_clearance")
CHECK_DOC = {
    "wheel_overlap": "the axles are at least two wheel radii plus wheel_gap apart",
    "front_wheel_down_tube": "the front tyre clears the down tube by tyre_gap",
    "rear_wheel_seat_tube": "the rear tyre clears the seat tube's axis by tyre_gap (BikeCAD cuts the seat tube's "
                            "back for the wheel; a cut past the axis would sever it)",
    "rear_wheel_bottom_bracket": "the chain stays are long enough for the rear tyre to clear the bottom-bracket shell",
    "chain_stay_reach": "the chain stays are longer than the bottom-bracket drop, so they reach the rear axle",
    "seat_stay_reach": "the seat stays are longer than the wheel radius: they meet the seat tube outside the wheel",
    "seat_tube_junctions": "top tube and seat stays meet the seat tube on it (ST UX and SS E below ST Length)",
    "head_tube_junctions": "top tube and down tube meet the head tube on it, in that order (HT UX + HT LX below "
                           "HT Length)",
    "down_tube_reach": "the down tube is long enough to reach the head tube",
    "top_tube_direction": "the top tube runs forward from the seat tube to the head tube (no tube through another)",
    "wall_thickness": "every tube's wall is positive and below its outer radius",
    "bb_ground_clearance": "a pedal at the bottom of its stroke clears the ground",
}


def frame_checks(params: Mapping[str, torch.Tensor], pts: Mapping[str, torch.Tensor],
                 build: Build = Build()) -> dict[str, torch.Tensor]:
    """Violations ``[n]`` (metres; <= 0 passes) of the :data:`CHECKS` for frames and their points."""
    r = build.radius
    od = {t: params[_OD[t]] for t in TUBES}
    walls = torch.stack([torch.maximum(params[_WALL[t]] - od[t] / 2, -params[_WALL[t]]) for t in TUBES], dim=1)
    stay = (pts["ss_top"] - pts["rear_axle"]).norm(dim=1)
    return {
        "wheel_overlap": 2 * r + build.wheel_gap - (pts["front_axle"] - pts["rear_axle"]).norm(dim=1),
        "front_wheel_down_tube": r + od["dt"] / 2 + build.tyre_gap
        - _segment_distance(pts["front_axle"], pts["bb"], pts["dt_top"]),
        "rear_wheel_seat_tube": r + build.tyre_gap - _segment_distance(pts["rear_axle"], pts["bb"], pts["st_top"]),
        "rear_wheel_bottom_bracket": r + od["bb"] / 2 + build.tyre_gap - params["CS Length"],
        "chain_stay_reach": params["BB Drop"].abs() + 1e-3 - params["CS Length"],
        "seat_stay_reach": r - stay,
        "seat_tube_junctions": torch.maximum(params["ST UX"], params["SS E"]) - params["ST Length"],
        "head_tube_junctions": params["HT UX"] + params["HT LX"] - params["HT Length"],
        "down_tube_reach": pts["dt_top"][:, 1].abs() - params["DT Length"],
        "top_tube_direction": pts["tt_rear"][:, 0] - pts["tt_front"][:, 0] + 0.05,
        "wall_thickness": walls.amax(dim=1),
        "bb_ground_clearance": build.crank + build.ground - (r - params["BB Drop"]),
    }

