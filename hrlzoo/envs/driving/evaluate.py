"""Scoring planned trajectories: open loop against logged futures, closed loop in the simulator.

Open loop (`evaluate_plans`), nuScenes-style, for B frames of a datagen split:
- l2 (B, T): distance between the planned and the expert waypoint at each future step;
  `l2_at(l2, dt)` reads it at 1, 2, 3 s (UniAD convention: the error *at* that time);
- collision (B, T): the ego box placed on the plan (heading along the path) overlaps an
  agent's future box at the same step (exact separating-axis test; closures included);
- offroad (B, T): a corner of that ego box is off the road;
- progress (B,): metres along the road (world x) from the start to the last waypoint.

Closed loop (`closed_loop`): the planner is called every frame on `sim.observe()` and its plan
is executed for one frame by the tracking controller (control.py). Per scene:
- collision: the ego touched a vehicle or a closure (the scene's ego then stops);
- offroad: a corner of the ego left the road;
- progress: metres along the road driven;
- ttc: share of frames with no time-to-collision violation: the ego and every other box
  extrapolated at constant velocity for 0.3, 0.6, 0.9 s must not overlap (NAVSIM: 1 s, 0.1 s steps);
- comfort: share of frames with longitudinal acceleration in [-4.05, 2.40] m/s^2, |yaw rate|
  <= 0.95 rad/s, |lateral acceleration| <= 4.89 m/s^2, |jerk| <= 4.13 m/s^3 (NAVSIM's bounds);
- ep: progress / the expert's progress on the same scene, clipped to [0, 1] (1 where the
  expert moves < 5 m);
- pdms = no_collision x no_offroad x (5 ep + 5 ttc + 2 comfort) / 12, in [0, 1].
This follows NAVSIM's PDM score (multiplicative penalties times a weighted average) with
three simplifications, our reading: every collision counts (NAVSIM counts at-fault ones only),
TTC and comfort are shares of frames rather than pass/fail over a 4 s window, and progress is
relative to our rule-based expert rather than to the PDM-Closed planner.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from hrlzoo.envs.driving.config import SCENARIOS, SimConfig
from hrlzoo.envs.driving.control import PlanTracker
from hrlzoo.envs.driving.geometry import box_corners, boxes_overlap, from_frame, path_headings, to_frame
from hrlzoo.envs.driving.sim import DrivingSim

TTC_TIMES = (0.3, 0.6, 0.9)
COMFORT = {"acc_min": -4.05, "acc_max": 2.40, "yaw_rate": 0.95, "lat_acc": 4.89, "jerk": 4.13}
PDMS_WEIGHTS = {"ep": 5.0, "ttc": 5.0, "comfort": 2.0}

Planner = Callable[[dict], np.ndarray]  # observation dict (sim.observe()) -> plan (N, T, 2), ego frame


def plan_boxes(plan_xy, ego_size) -> np.ndarray:
    """Ego boxes (B, T, 5) along planned waypoints (B, T, 2), heading along the path."""
    plan_xy = np.asarray(plan_xy, dtype=np.float64)[..., :2]
    h = path_headings(plan_xy)
    size = np.broadcast_to(np.asarray(ego_size, dtype=np.float64)[:, None, :], plan_xy.shape[:-1] + (2,))
    return np.concatenate([plan_xy, h[..., None], size], -1)


def offroad_boxes(boxes_world, cfg: SimConfig) -> np.ndarray:
    """A corner of a world-frame box (...,5) lies off the road."""
    ys = box_corners(boxes_world)[..., 1]
    return (ys.min(-1) < 0) | (ys.max(-1) > cfg.road_width)


def evaluate_plans(plan, expert_future, agents_future, agents_valid, ego_size, ego_pose, cfg: SimConfig) -> dict:
    """Open-loop metrics of plans (B, T, 2) given the logged frames (see module doc).

    expert_future (B, T, 2+), agents_future (B, T, A, 5) and agents_valid (B, T, A) as in a
    datagen split; ego_size (B, 2); ego_pose (B, 3) world pose of the ego at planning time.
    """
    plan = np.asarray(plan, dtype=np.float64)[..., :2]
    boxes = plan_boxes(plan, ego_size)
    collision = (boxes_overlap(boxes[:, :, None, :], agents_future) & agents_valid).any(-1)
    world = from_frame(boxes, np.asarray(ego_pose)[:, None, :])
    offroad = offroad_boxes(world, cfg)
    expert = np.asarray(expert_future, dtype=np.float64)[..., :2]
    l2 = np.linalg.norm(plan - expert, axis=-1)
    ex_world = from_frame(expert, np.asarray(ego_pose)[:, None, :])
    return {"l2": l2, "collision": collision, "offroad": offroad,
            "progress": world[:, -1, 0] - np.asarray(ego_pose)[:, 0],
            "expert_progress": ex_world[:, -1, 0] - np.asarray(ego_pose)[:, 0]}


def l2_at(l2, dt: float, seconds=(1, 2, 3)) -> dict:
    """Mean L2 error at 1, 2, 3 s (the waypoint at that time): {'l2_1s': ..., ...}."""
    return {f"l2_{s}s": float(np.mean(l2[:, round(s / dt) - 1])) for s in seconds if round(s / dt) <= l2.shape[1]}


def ttc_violation(sim: DrivingSim) -> np.ndarray:
    """(N,) the ego and another box, moved on at constant velocity, overlap within TTC_TIMES
    (scenes already in collision excluded)."""
    b = sim.boxes()
    others = np.concatenate([b[:, 1:], sim.closure[:, None]], 1)
    v = np.concatenate([sim.v[:, 1:], np.zeros((sim.n, 1))], 1)
    valid = np.concatenate([sim.active[:, 1:], sim.closure[:, None, 3] > 0], 1)
    hit = np.zeros(sim.n, dtype=bool)
    for t in TTC_TIMES:
        e = b[:, 0].copy()
        e[:, 0] += sim.v[:, 0] * np.cos(e[:, 2]) * t
        e[:, 1] += sim.v[:, 0] * np.sin(e[:, 2]) * t
        o = others.copy()
        o[..., 0] += v * np.cos(o[..., 2]) * t
        o[..., 1] += v * np.sin(o[..., 2]) * t
        hit |= (boxes_overlap(e[:, None], o) & valid).any(1)
    return hit & ~sim.done()


def closed_loop(cfg: SimConfig, seeds, planner: Planner | None, frames: int,
                reference_progress: np.ndarray | None = None, privileged: bool = False,
                start: DrivingSim | None = None) -> dict:
    """Run `planner` (None: the expert) on scenes `seeds` for `frames` frames (see module doc).

    Returns per-scene arrays: collision, offroad, progress, ttc, comfort, ep, pdms, scenario,
    seed. `reference_progress` (N,) is the expert's progress on the same seeds; None runs the
    expert to get it (pass the expert's own result's "progress" to score several planners).
    `privileged` adds the simulator itself to the observation as obs["sim"] (read it, do not
    step it), for oracle planners such as `expert_plan`. `start`: hand over a copy of this
    simulator in its current state (e.g. after some frames of the expert) instead of starting
    the scenes `seeds` afresh (NAVSIM-style episodes from logged states); `seeds` is then unused.
    """
    sim = DrivingSim(cfg, seeds) if start is None else copy.deepcopy(start)
    n = sim.n
    x0 = sim.x[:, 0].copy()
    ttc_ok = np.zeros(n)
    comfy = np.zeros(n)
    live = np.zeros(n)
    prev_acc = sim.acc[:, 0].copy()
    for _ in range(frames):
        alive = ~sim.done()
        if planner is None:
            sim.step()
        else:
            obs = sim.observe()
            if privileged:
                obs["sim"] = sim
            plan = np.asarray(planner(obs), dtype=np.float64)
            if plan.shape[:2] != (n, cfg.horizon) or not np.isfinite(plan).all():
                raise ValueError(f"planner returned {plan.shape} plans with non-finite values or not (N={n}, "
                                 f"T={cfg.horizon}, 2)")
            sim.step(ego_controls=PlanTracker(sim, plan))
        st = sim.ego_state().astype(np.float64)
        acc, yaw = st[:, 1], st[:, 2]
        jerk = (acc - prev_acc) / cfg.dt
        prev_acc = acc
        ok = ((acc >= COMFORT["acc_min"]) & (acc <= COMFORT["acc_max"]) & (np.abs(yaw) <= COMFORT["yaw_rate"])
              & (np.abs(st[:, 0] * yaw) <= COMFORT["lat_acc"]) & (np.abs(jerk) <= COMFORT["jerk"]))
        ttc_ok += alive & ~ttc_violation(sim)
        comfy += alive & ok
        live += alive
    progress = sim.x[:, 0] - x0
    if reference_progress is None:
        reference_progress = progress if planner is None else closed_loop(cfg, seeds, None, frames,
                                                                          start=start)["progress"]
    ref = np.asarray(reference_progress, dtype=np.float64)
    ep = np.where(ref < 5.0, 1.0, np.clip(progress / np.maximum(ref, 1e-9), 0.0, 1.0))
    ttc = ttc_ok / np.maximum(live, 1)
    comfort = comfy / np.maximum(live, 1)
    w = PDMS_WEIGHTS
    pdms = (~sim.crashed) * (~sim.offroad) * (w["ep"] * ep + w["ttc"] * ttc + w["comfort"] * comfort) / sum(w.values())
    return {"collision": sim.crashed.copy(), "offroad": sim.offroad.copy(), "progress": progress, "ttc": ttc,
            "comfort": comfort, "ep": ep, "pdms": pdms, "scenario": sim.scenario.copy(), "seed": sim.seeds.copy()}


def expert_plan(obs: dict) -> np.ndarray:
    """Oracle planner (needs `privileged=True`): the trajectory the expert would drive over
    the next `horizon` frames from the current state, found by simulating a copy of the scene."""
    sim = obs["sim"]
    future = copy.deepcopy(sim)
    poses = []
    for _ in range(sim.cfg.horizon):
        future.step()
        poses.append(future.ego_pose())
    return to_frame(np.stack(poses, 1), sim.ego_pose()[:, None, :])[..., :2]


def summarize(result: dict, by_scenario: bool = False) -> dict:
    """Scene means of a closed-loop result (rates in %, PDMS x 100); with `by_scenario`,
    {"all": ..., "<scenario>": ...} for every scenario type present."""
    if by_scenario:
        out = {"all": summarize(result)}
        for i, name in enumerate(SCENARIOS):
            m = result["scenario"] == i
            if m.any():
                out[name] = summarize({k: v[m] for k, v in result.items()})
        return out
    return {"scenes": int(len(result["collision"])),"collision_pct": 100 * float(np.mean(result["collision"])),
            "offroad_pct": 100 * float(np.mean(result["offroad"])),
            "progress_m": float(np.mean(result["progress"])),
            "ttc": float(np.mean(result["ttc"])), "comfort": float(np.mean(result["comfort"])),
            "ep": float(np.mean(result["ep"])), "pdms": 100 * float(np.mean(result["pdms"]))}


def constant_velocity_planner(dt: float, horizon: int) -> Planner:
    """A baseline: straight ahead at the current speed (ego frame)."""
    steps = dt * np.arange(1, horizon + 1)

    def plan(obs: dict) -> np.ndarray:
        v = obs["ego_state"][:, 0].astype(np.float64)
        return np.stack([v[:, None] * steps, np.zeros((len(v), horizon))], -1)

    return plan
