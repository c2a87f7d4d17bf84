"""Every knob of the driving simulator, as a schema a paper's params can nest (`sim:`).

Units: metres, seconds, radians, m/s, m/s^2. Defaults give a 3-lane highway at 15-28 m/s with
a scenario mix hard enough that the rule-based expert itself collides a few percent of the time
(in hard cut-ins), which is what makes collision-aware fine-tuning measurable.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import knob

SCENARIOS = ("cruise", "cut_in", "stalled", "closure")
COMMANDS = ("keep", "left", "right")  # navigation command ids 0, 1, 2 (left = towards +y)


@dataclass
class IDMConfig:
    """Intelligent Driver Model (Treiber et al. 2000) shared by traffic and the expert."""

    a_max: float = knob(1.5, gt=0, help="maximum acceleration a (m/s^2)")
    b_comf: float = knob(2.0, gt=0, help="comfortable deceleration b (m/s^2)")
    b_max: float = knob(8.0, gt=0, help="physical braking limit: IDM output is clipped at -b_max (m/s^2)")
    time_headway: float = knob(1.2, gt=0, help="desired time headway T (s)")
    s0: float = knob(2.0, ge=0, help="jam distance s0 (m)")
    delta: float = knob(4.0, gt=0, help="free-road exponent")


@dataclass
class MobilConfig:
    """MOBIL lane changes (Kesting et al. 2007), decided every `period` seconds."""

    politeness: float = knob(0.3, ge=0, help="weight of the new follower's loss of acceleration")
    threshold: float = knob(0.2, ge=0, help="minimum net gain of acceleration to change lane (m/s^2)")
    b_safe: float = knob(3.0, gt=0, help="the new follower may be made to brake at most this hard (m/s^2)")
    period: float = knob(1.0, gt=0, help="seconds between lane-change decisions")
    mandatory_range: float = knob(150.0, gt=0, help="closures / route lanes this close ahead force a lane choice (m)")
    mandatory_gain: float = knob(2.0, ge=0, help="incentive bonus (m/s^2) for leaving a closed lane or heading "
                                 "to the route lane")
    lat_speed: float = knob(1.2, gt=0, help="lateral speed of a normal lane change (m/s)")
    lat_gain: float = knob(0.8, gt=0, help="lateral speed per metre of lateral error, before the cap (1/s)")


@dataclass
class CutInConfig:
    """A vehicle in a lane next to the ego overtakes it and cuts in with a small gap, then brakes."""

    gap_min: float = knob(1.0, ge=0, help="smallest bumper gap ahead of the ego at which the cut starts (m)")
    gap_max: float = knob(10.0, ge=0, help="largest such gap (m)")
    speed_gain_min: float = knob(1.0, ge=0, help="the cutter holds this much more than the ego's speed before "
                                 "cutting (m/s)")
    speed_gain_max: float = knob(4.0, ge=0, help="upper end of that speed difference (m/s)")
    lat_speed: float = knob(3.0, gt=0, help="lateral speed of the aggressive cut (m/s)")
    brake_min: float = knob(1.0, ge=0, help="deceleration of the cutter while it cuts in, lower end (m/s^2)")
    brake_max: float = knob(6.0, ge=0, help="upper end (m/s^2)")
    brake_time: float = knob(1.5, ge=0, help="seconds the cutter brakes from the start of its cut")
    earliest: float = knob(1.0, ge=0, help="no cut before this many seconds into the scene")

    def validate(self) -> str | None:
        if self.gap_max < self.gap_min or self.speed_gain_max < self.speed_gain_min or self.brake_max < self.brake_min:
            return "cut_in: expected every *_max >= its *_min"
        return None


@dataclass
class RasterConfig:
    """The ego-centric bird's-eye raster: x forward is up, y left is to the left of the image."""

    size: int = knob(64, ge=8, help="pixels per side (square image)")
    resolution: float = knob(1.5, gt=0, help="metres per pixel")
    ego_row: int = knob(52, ge=0, help="image row of the ego centre (rows above it look ahead)")

    def validate(self) -> str | None:
        if self.ego_row >= self.size:
            return f"raster.ego_row: expected < size ({self.size})"
        return None


@dataclass
class SimConfig:
    """The road, the traffic, the scenario mix and the time step."""

    lanes: int = knob(3, ge=2, help="lanes; lane 0 is the rightmost, lanes count up to the left (+y)")
    lane_width: float = knob(3.75, gt=0, help="metres")
    vehicles: int = knob(16, ge=2, help="vehicle slots per scene, the ego included (slot 0)")
    traffic_min: int = knob(6, ge=0, help="fewest other vehicles in a scene")
    traffic_max: int = knob(13, ge=0, help="most other vehicles in a scene (<= vehicles - 2: room for a cutter / "
                            "stalled car)")
    dt: float = knob(0.5, gt=0, help="seconds between frames (observations, plans, logged waypoints)")
    substeps: int = knob(5, ge=1, help="integration steps per frame (dt / substeps = 0.1 s)")
    horizon: int = knob(6, ge=1, help="future waypoints of a plan / expert trajectory (6 x 0.5 s = 3 s)")
    speed_min: float = knob(15.0, ge=0, help="slowest desired speed of traffic (m/s)")
    speed_max: float = knob(28.0, gt=0, help="fastest desired speed of traffic and ego (m/s)")
    route_prob: float = knob(0.3, ge=0, le=1, help="chance a scene's route asks for another lane at some time")
    mix: dict[str, float] = knob(factory=lambda: {"cruise": 0.25, "cut_in": 0.35, "stalled": 0.2, "closure": 0.2},
                                 ge=0, keys=SCENARIOS, help="scenario type -> sampling weight")
    lateral_margin: float = knob(0.3, ge=0, help="a vehicle reacts to another once their sides are this close "
                                 "laterally (m): late reaction to a cut-in is what makes some expert collisions")
    expert_reaction: float = knob(0.5, ge=0, help="the expert judges who is in its lane from positions this "
                                  "many seconds old (s): its reaction delay to a vehicle moving in from the side")
    expert_range: float = knob(float("inf"), gt=0, help="the expert perceives vehicles and closures only when their "
                               "rear is at most this far ahead of its centre (m; inf: everything). A planner that "
                               "imitates it from a raster should not be asked to react to what the raster cannot "
                               "show: set it to the raster's view ahead (ego_row * resolution)")
    idm: IDMConfig = knob(factory=IDMConfig, help="car following")
    mobil: MobilConfig = knob(factory=MobilConfig, help="lane changes")
    cut_in: CutInConfig = knob(factory=CutInConfig, help="cut-in events")
    raster: RasterConfig = knob(factory=RasterConfig, help="bird's-eye observation")

    def validate(self) -> str | None:
        if sum(self.mix.values()) <= 0:
            return "mix: expected a positive total weight"
        if self.traffic_max < self.traffic_min or self.traffic_max > self.vehicles - 2:
            return f"traffic_max: expected traffic_min <= traffic_max <= vehicles - 2 ({self.vehicles - 2})"
        return None

    @property
    def sub_dt(self) -> float:
        return self.dt / self.substeps

    @property
    def road_width(self) -> float:
        return self.lanes * self.lane_width
