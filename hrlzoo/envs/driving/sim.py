"""The batched driving simulator: N scenes advanced together as numpy array ops.

    sim = DrivingSim(cfg, seeds=range(64))      # one scene per seed
    sim.step()                                  # one frame (cfg.dt) with the rule-based expert driving
    sim.step(ego_controls=controller)           # or with the ego driven by a controller (see control.py)

Each frame is `cfg.substeps` integration steps. In every step:
1. every vehicle finds its leader in its lateral corridor (vehicles, stalled cars, closures
   and a crashed ego are all obstacles) and gets an IDM acceleration;
2. every `mobil.period` seconds, every free vehicle (the ego included, as the expert) picks
   its lane with MOBIL; closures ahead and the ego's route add a mandatory incentive;
3. a waiting cutter whose rear is `cut_gap` metres ahead of the ego's front cuts in;
4. lateral lane tracking, kinematic bicycle update;
5. the ego is checked for collision (exact box overlap with every other vehicle and the
   closure) and for leaving the road; a crashed ego stops and stays an obstacle;
6. traffic far behind / ahead of the ego is recycled to the other end when there is room.

The expert: the ego runs the same IDM + MOBIL as traffic, with the route's incentive, but
(unlike traffic, which also yields to the lane a changing vehicle is heading for) follows a
vehicle only once its body is within `lateral_margin` of the ego's corridor, judged on where
it was `expert_reaction` seconds ago, and perceives nothing farther ahead than `expert_range`
(default: everything). That late reaction is why a hard cut-in (small gap,
braking cutter) sometimes ends in a collision: 3-4% of the default scene mix, all but a few
of them cut-ins.

The navigation command (0 keep, 1 left, 2 right) compares the expert's chosen lane with the
ego's current lane. It is computed whoever drives, so a learned planner gets the same command
the expert would act on.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hrlzoo.envs.driving.config import SimConfig
from hrlzoo.envs.driving.geometry import box_corners, boxes_overlap
from hrlzoo.envs.driving.raster import render
from hrlzoo.envs.driving.scenes import SCENE_FIELDS, VEHICLE_FIELDS, make_scenes
from hrlzoo.envs.driving.traffic import (bicycle_step, gather, idm_accel, lane_center, lane_keep_steer, lane_of,
                                         lateral_extent, neighbours)

KEEP, LEFT, RIGHT = 0, 1, 2
HISTORY = 3  # frames of boxes kept for the raster (t, t-1, t-2)


class DrivingSim:
    """N driving scenes, one per seed. Vehicle arrays are (N, V), slot 0 is the ego."""

    def __init__(self, cfg: SimConfig, seeds):
        self.cfg = cfg
        self.reset(seeds)

    # ------------------------------------------------------------------ state
    def reset(self, seeds) -> None:
        """Start every scene afresh from its seed."""
        self.seeds = np.asarray(list(seeds), dtype=np.int64)
        self._load(make_scenes(self.seeds, self.cfg), np.ones(len(self.seeds), dtype=bool))

    def reset_scenes(self, mask, seeds) -> None:
        """Restart the scenes where `mask` is true from new `seeds` (one per true entry)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.seeds[mask] = np.asarray(list(seeds), dtype=np.int64)
            self._load(make_scenes(self.seeds[mask], self.cfg), mask)

    def _load(self, sc: dict, mask: np.ndarray) -> None:
        n, V = len(self.seeds), self.cfg.vehicles
        if mask.all():  # fresh arrays; `lane` keeps each vehicle's starting lane (for target_lane)
            for k in VEHICLE_FIELDS:
                setattr(self, k, sc[k].copy())
            self.closure = sc["closure"].copy()
            for k in SCENE_FIELDS:
                setattr(self, k, sc[k].copy())
            self.acc = np.zeros((n, V))
            self.steer = np.zeros((n, V))
            self.yaw_rate = np.zeros((n, V))
            self.lat_speed = np.full((n, V), self.cfg.mobil.lat_speed)
            self.cut_state = np.zeros(n, dtype=np.int64)  # 0 waiting, 1 cutting, 2 done / none
            self.cut_brake_until = np.full(n, -np.inf)
            self.time = np.zeros(n)
            self.frame = np.zeros(n, dtype=np.int64)
            self.crashed = np.zeros(n, dtype=bool)
            self.offroad = np.zeros(n, dtype=bool)
            self.crash_frame = np.full(n, -1, dtype=np.int64)
            self.offroad_frame = np.full(n, -1, dtype=np.int64)
        else:
            for k in VEHICLE_FIELDS + ("closure",) + SCENE_FIELDS:
                getattr(self, k)[mask] = sc[k]
            for k in ("acc", "steer", "yaw_rate", "time"):
                getattr(self, k)[mask] = 0.0
            self.lat_speed[mask] = self.cfg.mobil.lat_speed
            self.cut_brake_until[mask] = -np.inf
            self.frame[mask] = 0
            for k in ("crashed", "offroad"):
                getattr(self, k)[mask] = False
            self.crash_frame[mask] = -1
            self.offroad_frame[mask] = -1
        self.cut_state[mask] = np.where(self.cutter[mask] >= 0, 0, 2)
        lag = round(self.cfg.expert_reaction / self.cfg.sub_dt) + 1  # lateral positions the expert sees, oldest first
        if mask.all():
            self.target_lane = self.lane.astype(np.int64)
            self._y_seen = [self.y.copy()] * lag
        else:
            self.target_lane = np.where(mask[:, None], self.lane, self.target_lane)
            self._y_seen = [np.where(mask[:, None], self.y, y) for y in self._y_seen]
        snap = self.boxes(), self.active.copy()
        if mask.all():
            self.history = [snap] * HISTORY  # newest first; before t=0 the scene is at rest
        else:
            self.history = [(np.where(mask[:, None, None], snap[0], b), np.where(mask[:, None], snap[1], a))
                            for b, a in self.history]

    @property
    def n(self) -> int:
        return len(self.seeds)

    def boxes(self) -> np.ndarray:
        """Vehicle boxes (N, V, 5) in the world frame: x, y, heading, length, width."""
        return np.stack([self.x, self.y, self.h, self.length, self.width], axis=-1)

    def ego_pose(self) -> np.ndarray:
        """(N, 3): the ego's x, y, heading in the world frame."""
        return np.stack([self.x[:, 0], self.y[:, 0], self.h[:, 0]], axis=-1)

    def ego_state(self) -> np.ndarray:
        """(N, 4): speed (m/s), acceleration (m/s^2), yaw rate (rad/s), steering angle (rad)."""
        state = np.stack([self.v[:, 0], self.acc[:, 0], self.yaw_rate[:, 0], self.steer[:, 0]], axis=-1)
        return state.astype(np.float32)

    def route_active(self) -> np.ndarray:
        return (self.route_lane >= 0) & (self.time >= self.route_time)

    def command(self) -> np.ndarray:
        """(N,) navigation command: 0 keep lane, 1 change left (+y), 2 change right."""
        cur = lane_of(self.y[:, 0], self.cfg.lane_width, self.cfg.lanes)
        tgt = self.target_lane[:, 0]
        return np.where(tgt > cur, LEFT, np.where(tgt < cur, RIGHT, KEEP)).astype(np.int64)

    def route_y(self) -> np.ndarray:
        """(N,) world y of the centre of the lane the route asks for; NaN while there is none."""
        return np.where(self.route_active(), lane_center(self.route_lane, self.cfg.lane_width), np.nan)

    def render(self) -> np.ndarray:
        """Ego-centric rasters (N, C, size, size) uint8 of the current frame (see raster.py)."""
        c = self.cfg
        size = np.stack([self.length[:, 0], self.width[:, 0]], -1)
        return render(c.raster, self.ego_pose(), size, self.history, self.closure, self.route_y(), c.lanes,
                      c.lane_width)

    def observe(self) -> dict:
        """What a planner sees: raster (N, C, H, W) uint8, ego_state (N, 4) float32, command (N,) int64."""
        return {"raster": self.render(), "ego_state": self.ego_state(), "command": self.command()}

    def done(self) -> np.ndarray:
        """(N,) the ego has crashed or left the road."""
        return self.crashed | self.offroad

    # ------------------------------------------------------------------ dynamics
    def _obstacles(self):
        """Every object a vehicle may have to follow or yield to, (N, 2V + 1): the vehicles,
        then a "claim" of each vehicle changing lane (a copy at its target lane's centre, so
        two vehicles do not merge into the same gap), then the closure. Lateral sizes are the
        boxes' extents across the road at their current headings."""
        c, cl = self.cfg, self.closure
        lat = lateral_extent(self.length, self.width, self.h)
        claim = self.active & (lane_of(self.y, c.lane_width, c.lanes) != self.target_lane)
        ox = np.concatenate([self.x, self.x, cl[:, :1]], 1)
        oy = np.concatenate([self.y, lane_center(self.target_lane, c.lane_width), cl[:, 1:2]], 1)
        olen = np.concatenate([self.length, self.length, cl[:, 3:4]], 1)
        owid = np.concatenate([lat, self.width, cl[:, 4:5]], 1)
        ov = np.concatenate([self.v, self.v, np.zeros((self.n, 1))], 1)
        ovalid = np.concatenate([self.active, claim, cl[:, 3:4] > 0], 1)
        return ox, oy, olen, owid, ov, ovalid

    def _self_mask(self) -> np.ndarray:
        """(V, 2V + 1): a vehicle ignores itself and its own claim."""
        if getattr(self, "_self_mask_cache", None) is None:
            V = self.cfg.vehicles
            eye = np.eye(V, dtype=bool)
            self._self_mask_cache = np.concatenate([eye, eye, np.zeros((V, 1), dtype=bool)], 1)
        return self._self_mask_cache

    def _mobil(self, acc_now, decide, obstacles, ego_driven: bool):
        """Lane choice (MOBIL, with mandatory incentives) of every free vehicle whose turn it is
        to decide; updates target_lane. Works on the flat list of deciding (scene, vehicle) pairs."""
        c, m, idm = self.cfg, self.cfg.mobil, self.cfg.idm
        V = c.vehicles
        lane = lane_of(self.y, c.lane_width, c.lanes)
        settled = np.abs(self.y - lane_center(self.target_lane, c.lane_width)) < 0.3
        if ego_driven:  # a planner need not centre itself: the expert's choice is made once it is in the lane
            settled[:, 0] = lane[:, 0] == self.target_lane[:, 0]
        free = self.active & ~self.stalled & settled & decide
        has_cutter = (self.cutter >= 0) & (self.cut_state < 2)
        free[np.flatnonzero(has_cutter), self.cutter[has_cutter]] = False
        free[:, 0] &= self.cut_state != 0  # the ego holds its lane until a pending cut-in has happened
        r, k = np.nonzero(free)
        if len(r) == 0:
            return
        ox, oy, olen, owid, ov, ovalid = (o[r] for o in obstacles)  # (Q, M): each query's own scene
        q = lambda a: a[r, k][:, None]  # noqa: E731  (Q, 1)
        x, v, v0, ln, acc = q(self.x), q(self.v), q(self.v0), q(lane), q(acc_now)
        length, width = q(self.length), q(self.width)
        exclude = self._self_mask()[k][:, None, :]
        cl = self.closure[r]
        cl_lane = lane_of(cl[:, 1:2], c.lane_width, c.lanes)
        is_ego = (k == 0)[:, None]
        reach = np.where(is_ego, min(m.mandatory_range, c.expert_range), m.mandatory_range)
        cl_ahead = (cl[:, 3:4] > 0) & (cl[:, 0:1] + cl[:, 3:4] / 2 > x) & (cl[:, 0:1] - cl[:, 3:4] / 2 - x < reach)
        if np.isfinite(c.expert_range):  # the expert's lane choice sees nothing beyond its range
            ovalid = ovalid & ~(is_ego & (ox - olen / 2 - x > c.expert_range))
        route_on = self.route_active()[r][:, None] & is_ego
        route_lane = self.route_lane[r][:, None]
        best_gain = np.full(x.shape, -np.inf)
        best_lane = q(self.target_lane)
        for d in (-1, 1):
            cand = ln + d
            qy = lane_center(np.clip(cand, 0, c.lanes - 1), c.lane_width)
            lg, li, fg, fi = neighbours(x, qy, length, width, ox, oy, olen, owid, ovalid, c.lateral_margin, exclude)
            a_new = idm_accel(v, v0, lg, gather(ov, li), idm)
            f_is_vehicle = np.isfinite(fg) & (fi < 2 * V)
            fi_v = fi % V
            f_new = idm_accel(gather(self.v[r], fi_v), gather(self.v0[r], fi_v), fg, v, idm)
            f_old = gather(acc_now[r], fi_v)
            safe = (lg > 1.0) & (~f_is_vehicle | ((fg > 1.0) & (f_new >= -m.b_safe)))
            gain = a_new - acc + m.politeness * np.where(f_is_vehicle, f_new - f_old, 0.0)
            # mandatory: leave a closed lane; never enter a lane closed just ahead
            gain += np.where(cl_ahead & (cl_lane == ln), m.mandatory_gain, 0.0)
            gain -= np.where(cl_ahead & (cl_lane == cand), 10 * m.mandatory_gain, 0.0)
            # the route (ego only): towards the route lane, never away from it
            towards = np.sign(route_lane - ln) == d
            gain += np.where(route_on, np.where(towards, m.mandatory_gain, -m.mandatory_gain), 0.0)
            ok = (cand >= 0) & (cand < c.lanes) & safe & (gain > m.threshold) & (gain > best_gain)
            best_gain = np.where(ok, gain, best_gain)
            best_lane = np.where(ok, cand, best_lane)
        # two vehicles of one scene may not start moving into the same lane at the same step
        new = best_lane[:, 0]
        moving = np.flatnonzero(new != ln[:, 0])
        _, first = np.unique(r[moving] * c.lanes + new[moving], return_index=True)
        keep = np.zeros(len(r), dtype=bool)
        keep[moving[first]] = True
        self.target_lane[r[keep], k[keep]] = new[keep]

    def _cut_ins(self):
        """Start the cut of every waiting cutter whose rear is `cut_gap` ahead of the ego's front."""
        c = self.cfg
        rows = np.flatnonzero(self.cut_state == 0)
        if len(rows) == 0:
            return
        k = self.cutter[rows]
        gap = (self.x[rows, k] - self.length[rows, k] / 2) - (self.x[rows, 0] + self.length[rows, 0] / 2)
        ego_lane = lane_of(self.y[rows, 0], c.lane_width, c.lanes)
        adjacent = np.abs(self.lane_now(rows, k) - ego_lane) == 1
        go = (self.time[rows] >= c.cut_in.earliest) & (gap >= self.cut_gap[rows]) & adjacent
        late = self.time[rows] > 15.0  # never triggered: give up
        r, kk = rows[go], k[go]
        self.target_lane[r, kk] = ego_lane[go]
        self.lat_speed[r, kk] = c.cut_in.lat_speed
        self.cut_state[r] = 1
        self.cut_brake_until[r] = self.time[r] + c.cut_in.brake_time
        self.cut_state[rows[late & ~go]] = 2

    def lane_now(self, rows, cols):
        return lane_of(self.y[rows, cols], self.cfg.lane_width, self.cfg.lanes)

    def substep(self, ego_acc=None, ego_steer=None) -> None:
        """Advance every scene by dt / substeps. Without ego controls the expert drives the ego."""
        c, idm, dt = self.cfg, self.cfg.idm, self.cfg.sub_dt
        obstacles = self._obstacles()
        ox, oy, olen, owid, ov, ovalid = obstacles
        V = c.vehicles
        lat = owid[:, :V]
        exclude = self._self_mask()
        # traffic yields to claims of vehicles changing lane; the expert ego only to bodies
        # and sees where the others were `expert_reaction` seconds ago across the road
        ovalid_ego = ovalid.copy()
        ovalid_ego[:, V:2 * V] = False
        if np.isfinite(c.expert_range):  # nor, for car following, anything beyond its range
            ovalid_ego &= ox - olen / 2 - self.x[:, :1] <= c.expert_range
        oy_ego = oy.copy()
        oy_ego[:, :V] = self._y_seen[0]
        lg, li, _, _ = neighbours(self.x, self.y, self.length, lat, ox, oy, olen, owid, ovalid,
                                  c.lateral_margin, exclude=exclude)
        lg0, li0, _, _ = neighbours(self.x[:, :1], self.y[:, :1], self.length[:, :1], lat[:, :1], ox, oy_ego, olen,
                                    owid, ovalid_ego, c.lateral_margin, exclude=exclude[:1])
        lg[:, :1], li[:, :1] = lg0, li0
        acc = idm_accel(self.v, self.v0, lg, gather(ov, li), idm)
        w = np.flatnonzero(self.cut_state == 0)  # a waiting cutter holds `cut_gain` above the ego's speed
        kw = self.cutter[w]
        free_acc = idm_accel(self.v[w, kw], np.inf, lg[w, kw], gather(ov, li)[w, kw], idm)
        acc[w, kw] = np.minimum(free_acc, np.clip(2.0 * (self.v[w, 0] + self.cut_gain[w] - self.v[w, kw]),
                                                  -idm.b_comf, 2 * idm.a_max))
        # MOBIL lane choices: vehicle k decides every `period` seconds, staggered by k substeps
        period = max(1, round(c.mobil.period / dt))
        tick = np.rint(self.time / dt).astype(np.int64)
        decide = (tick[:, None] + np.arange(V)[None, :]) % period == 0
        self._mobil(acc, decide, obstacles, ego_driven=ego_acc is not None)
        # cut-ins: trigger, then brake from the start of the cut for `brake_time` seconds
        self._cut_ins()
        rows = np.flatnonzero(self.cut_state == 1)
        if len(rows):
            k = self.cutter[rows]
            braking = self.time[rows] < self.cut_brake_until[rows]
            acc[rows, k] = np.where(braking, np.minimum(acc[rows, k], -self.cut_brake[rows]), acc[rows, k])
            done = ~braking
            self.lat_speed[rows[done], k[done]] = c.mobil.lat_speed
            self.v0[rows[done], k[done]] = np.maximum(self.v[rows[done], k[done]], c.speed_min)
            self.cut_state[rows[done]] = 2
        acc = np.where(self.stalled, -idm.b_max, acc)
        steer = lane_keep_steer(self.y, self.h, self.v, self.length, lane_center(self.target_lane, c.lane_width),
                                self.lat_speed, c.mobil.lat_gain)
        driving = ~self.done()
        if ego_acc is not None:
            acc[:, 0] = np.where(driving, ego_acc, acc[:, 0])
            steer[:, 0] = np.where(driving, ego_steer, steer[:, 0])
        # a crashed / off-road ego stops where it is
        acc[:, 0] = np.where(driving, acc[:, 0], -idm.b_max)
        steer[:, 0] = np.where(driving, steer[:, 0], 0.0)
        h_old = self.h
        x, y, h, v = bicycle_step(self.x, self.y, self.h, self.v, acc, steer, self.length, dt, 1.5 * c.speed_max)
        move = self.active
        self.x, self.y, self.h, self.v = (np.where(move, new, old)
                                          for new, old in ((x, self.x), (y, self.y), (h, self.h), (v, self.v)))
        self.acc, self.steer, self.yaw_rate = acc, steer, (self.h - h_old) / dt
        self.time = self.time + dt
        self._y_seen = self._y_seen[1:] + [self.y.copy()]
        self._check_ego()
        self._recycle()

    def _check_ego(self) -> None:
        """Collision (exact box overlap) with any vehicle or the closure, and leaving the road."""
        boxes = self.boxes()
        ego = boxes[:, :1]
        others = np.concatenate([boxes[:, 1:], self.closure[:, None]], 1)
        valid = np.concatenate([self.active[:, 1:], self.closure[:, None, 3] > 0], 1)
        hit = (boxes_overlap(ego, others) & valid).any(1)
        ys = box_corners(ego[:, 0])[..., 1]
        off = (ys.min(-1) < 0) | (ys.max(-1) > self.cfg.road_width)
        new_hit = hit & ~self.done()
        new_off = off & ~self.done()
        self.crash_frame = np.where(new_hit, self.frame, self.crash_frame)
        self.offroad_frame = np.where(new_off, self.frame, self.offroad_frame)
        self.crashed |= new_hit
        self.offroad |= new_off

    def traffic_overlaps(self) -> np.ndarray:
        """(N,) pairs of traffic vehicles (the ego excluded) whose boxes overlap now."""
        b = self.boxes()[:, 1:]
        a = self.active[:, 1:]
        hit = boxes_overlap(b[:, :, None], b[:, None, :]) & a[:, :, None] & a[:, None, :]
        return np.triu(hit, 1).sum((1, 2))

    def _recycle(self) -> None:
        """Move traffic more than 100 m behind the ego to 150-190 m ahead (and more than 250 m
        ahead to 90 m behind), in its own lane, when that lane is free from 30 m behind to 80 m
        ahead of the new place (room to brake for a stopped car)."""
        c = self.cfg
        ex = self.x[:, :1]
        movable = self.active & ~self.stalled
        movable[:, 0] = False
        has_cutter = (self.cutter >= 0) & (self.cut_state < 2)
        movable[np.flatnonzero(has_cutter), self.cutter[has_cutter]] = False
        slot = np.arange(c.vehicles)[None, :]
        moves = ((self.x < ex - 100.0, ex + 150.0 + 10.0 * (slot % 5)), (self.x > ex + 250.0, ex - 90.0 + 0 * slot))
        for far, new_x in moves:
            cand = movable & far
            if not cand.any():
                continue
            for r, k in zip(*np.nonzero(cand)):
                nx = new_x[r, k]
                same = self.active[r] & (np.abs(self.y[r] - self.y[r, k]) < c.lane_width)
                same[k] = False
                ahead = self.x[r, same] - nx
                if np.any((ahead > -30.0) & (ahead < 80.0)):
                    continue
                cl = self.closure[r]
                cl_ahead = -30.0 < cl[0] - cl[3] / 2 - nx < 80.0 + cl[3]
                if cl[3] > 0 and abs(cl[1] - self.y[r, k]) < c.lane_width and cl_ahead:
                    continue
                self.x[r, k] = nx
                self.v[r, k] = self.v0[r, k]

    def step(self, ego_controls: Callable[["DrivingSim", int], tuple] | None = None) -> None:
        """Advance one frame (cfg.dt). `ego_controls(sim, k)` -> (acc (N,), steer (N,)) for
        substep k drives the ego; None lets the expert drive it."""
        for k in range(self.cfg.substeps):
            if ego_controls is None:
                self.substep()
            else:
                self.substep(*ego_controls(self, k))
        self.frame += 1
        self.history = [(self.boxes(), self.active.copy())] + self.history[:HISTORY - 1]
