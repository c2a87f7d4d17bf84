"""Scene generation: one scene per seed, drawn from its own generator, so a scene depends on
its seed only (not on which batch it is simulated in).

Scenario types (config.SCENARIOS):
- cruise:  free traffic; lane changes come from MOBIL and the route.
- cut_in:  a vehicle starts beside the ego in a neighbouring lane, holding a speed a little
           above the ego's; once its rear bumper is `gap` metres ahead of the ego's front it
           cuts into the ego lane at high lateral speed, braking for a while (the hard case for
           the expert). The ego keeps its lane until then, and the scene has no route.
- stalled: a stopped vehicle 60-160 m ahead, usually in the ego lane.
- closure: a blocked lane segment (a line of cones, one static box) 80-200 m ahead, 30-80 m long.
"""

from __future__ import annotations

import numpy as np

from hrlzoo.envs.driving.config import SCENARIOS, SimConfig
from hrlzoo.envs.driving.traffic import lane_center

# per-vehicle fields of a scene, stacked to (N, V)
VEHICLE_FIELDS = ("x", "y", "h", "v", "length", "width", "v0", "lane", "active", "stalled")
# per-scene fields, stacked to (N,)
SCENE_FIELDS = ("scenario", "cutter", "cut_gap", "cut_brake", "cut_gain", "route_lane", "route_time")
NO_CLOSURE = np.array([0.0, -1e4, 0.0, 0.0, 0.0])  # an inactive closure box, far off the road


def _free(x, lane, xs, lanes, active, clearance):
    """True when no active vehicle in `lane` is within `clearance` metres of `x`."""
    same = active & (lanes == lane)
    return not np.any(np.abs(xs[same] - x) < clearance)


def make_scene(seed: int, cfg: SimConfig) -> dict:
    """The initial state of scene `seed`: per-vehicle arrays (V,), per-scene scalars, a closure box."""
    rng = np.random.default_rng(seed)
    V, lanes = cfg.vehicles, cfg.lanes
    names = list(cfg.mix)
    w = np.array([cfg.mix[n] for n in names], dtype=np.float64)
    scenario = names[rng.choice(len(names), p=w / w.sum())]
    s = {k: np.zeros(V) for k in ("x", "y", "h", "v", "v0")}
    s["length"] = rng.uniform(4.2, 5.0, V)
    s["width"] = rng.uniform(1.8, 2.0, V)
    s["lane"] = np.zeros(V, dtype=np.int64)
    s["active"] = np.zeros(V, dtype=bool)
    s["stalled"] = np.zeros(V, dtype=bool)
    s["x"][:] = -1e4  # parked far away while inactive

    ego_lane = int(rng.integers(lanes))
    ego_v0 = rng.uniform(0.75 * cfg.speed_max, cfg.speed_max)
    s["lane"][0], s["x"][0], s["v0"][0], s["active"][0] = ego_lane, 0.0, ego_v0, True
    s["v"][0] = rng.uniform(0.6, 1.0) * ego_v0

    n_traffic = int(rng.integers(cfg.traffic_min, cfg.traffic_max + 1))
    slot = 1
    for _ in range(n_traffic):
        for _try in range(20):
            lane = int(rng.integers(lanes))
            x = rng.uniform(-80.0, 220.0)
            v0 = rng.uniform(cfg.speed_min, cfg.speed_max)
            if _free(x, lane, s["x"], s["lane"], s["active"], 1.2 * v0 + 10.0):
                s["lane"][slot], s["x"][slot], s["v"][slot], s["v0"][slot], s["active"][slot] = lane, x, v0, v0, True
                slot += 1
                break

    def clear(lane, lo, hi):
        drop = s["active"] & (s["lane"] == lane) & (s["x"] > lo) & (s["x"] < hi)
        drop[0] = False
        s["active"][drop] = False
        s["x"][drop] = -1e4

    def take_slot():
        free = np.flatnonzero(~s["active"])
        return int(free[0])

    cutter, cut_gap, cut_brake, gain = -1, 0.0, 0.0, 0.0
    closure = NO_CLOSURE.copy()
    if scenario == "cut_in":
        side = [ln for ln in (ego_lane - 1, ego_lane + 1) if 0 <= ln < lanes]
        lane = int(side[rng.integers(len(side))])
        clear(lane, -60.0, 200.0)
        clear(ego_lane, 0.0, 50.0)  # room ahead of the ego for the cutter to move into
        cutter = take_slot()
        c = cfg.cut_in
        gain = rng.uniform(c.speed_gain_min, c.speed_gain_max)
        s["lane"][cutter], s["x"][cutter] = lane, -rng.uniform(0.0, 10.0)
        s["v"][cutter], s["v0"][cutter], s["active"][cutter] = s["v"][0] + gain, ego_v0 + gain, True
        cut_gap = rng.uniform(c.gap_min, c.gap_max)
        cut_brake = rng.uniform(c.brake_min, c.brake_max)
    elif scenario == "stalled":
        lane = ego_lane if rng.random() < 0.8 else int(rng.integers(lanes))
        x = rng.uniform(60.0, 160.0)
        clear(lane, x - 90.0, x + 20.0)
        k = take_slot()
        s["lane"][k], s["x"][k], s["v"][k], s["v0"][k] = lane, x, 0.0, 0.0
        s["active"][k], s["stalled"][k] = True, True
    elif scenario == "closure":
        lane = ego_lane if rng.random() < 0.7 else int(rng.integers(lanes))
        x0, length = rng.uniform(80.0, 200.0), rng.uniform(30.0, 80.0)
        clear(lane, x0 - 90.0, x0 + length + 10.0)
        closure = np.array([x0 + length / 2, float(lane_center(lane, cfg.lane_width)), 0.0, length,
                            cfg.lane_width - 0.6])

    route_lane, route_time = -1, 0.0
    if rng.random() < cfg.route_prob and scenario != "cut_in":
        others = [ln for ln in range(lanes) if ln != ego_lane]
        route_lane = int(others[rng.integers(len(others))])
        route_time = rng.uniform(0.0, 6.0)

    s["y"] = np.where(s["active"], lane_center(s["lane"], cfg.lane_width), -1e4)
    return {**s, "closure": closure, "scenario": SCENARIOS.index(scenario), "cutter": cutter,
            "cut_gap": cut_gap, "cut_brake": cut_brake, "cut_gain": gain, "route_lane": route_lane,
            "route_time": route_time}


def make_scenes(seeds, cfg: SimConfig) -> dict:
    """Scenes for every seed, stacked: vehicle fields (N, V), scene fields (N,), closure (N, 5)."""
    scenes = [make_scene(int(sd), cfg) for sd in seeds]
    return {k: np.stack([sc[k] for sc in scenes]) for k in scenes[0]}
