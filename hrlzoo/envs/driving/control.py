"""The tracking controller that turns a planned ego trajectory into acceleration and steering.

A plan is `horizon` waypoints (x, y) in the ego frame at the time it was made, one every `dt`
seconds (the first at t = dt). Within the next frame the controller
- holds the constant acceleration that covers the distance to the first waypoint in dt
  (a = 2 (s1 - v dt) / dt^2, clipped to [-b_max, ACC_MAX]): a stop plan brakes, a far one speeds up;
- steers by pure pursuit towards the plan's point `LOOKAHEAD` seconds ahead of now
  (interpolated in time along origin -> waypoints), recomputed at every substep.
Plans are made again every frame, so only their first second or so is ever executed.
"""

from __future__ import annotations

import numpy as np

from hrlzoo.envs.driving.geometry import from_frame, to_frame
from hrlzoo.envs.driving.traffic import MAX_STEER, WHEELBASE_FRACTION

ACC_MAX = 4.0  # m/s^2
LOOKAHEAD = 0.8  # s


class PlanTracker:
    """`sim.step(ego_controls=PlanTracker(sim, plan))` executes one frame of `plan` (N, T, 2)."""

    def __init__(self, sim, plan):
        plan = np.asarray(plan, dtype=np.float64)[..., :2]
        c = sim.cfg
        pose = sim.ego_pose()
        origin = np.zeros_like(plan[:, :1])
        self.path = from_frame(np.concatenate([origin, plan], 1), pose[:, None, :])  # (N, T+1, 2) world
        self.times = np.arange(plan.shape[1] + 1) * c.dt
        p1 = plan[:, 0]
        s1 = np.where(p1[:, 0] > 0, np.hypot(p1[:, 0], p1[:, 1]), 0.0)
        v = sim.v[:, 0]
        self.acc = np.clip(2 * (s1 - v * c.dt) / c.dt ** 2, -c.idm.b_max, ACC_MAX)
        self.sub_dt = c.sub_dt

    def target(self, tau: float) -> np.ndarray:
        """World (x, y) of the plan at time tau after it was made (N, 2); held past its end."""
        t = np.clip(tau, 0.0, self.times[-1])
        i = min(int(t // (self.times[1] - self.times[0])), len(self.times) - 2)
        w = (t - self.times[i]) / (self.times[i + 1] - self.times[i])
        return (1 - w) * self.path[:, i] + w * self.path[:, i + 1]

    def __call__(self, sim, k: int):
        tgt = to_frame(self.target((k + 1) * self.sub_dt + LOOKAHEAD), sim.ego_pose())
        d2 = np.maximum(tgt[:, 0] ** 2 + tgt[:, 1] ** 2, 1.0)
        curvature = 2 * tgt[:, 1] / d2
        steer = np.clip(np.arctan(WHEELBASE_FRACTION * sim.length[:, 0] * curvature), -MAX_STEER, MAX_STEER)
        return self.acc, steer
