"""Traffic behaviour as array ops: car following (IDM), who is ahead/behind in a lane,
lane-change choice (MOBIL), lane tracking, and the kinematic bicycle.

Every function takes arrays shaped (N, V) (N scenes, V vehicles) or broadcastable ones; the
road is straight along +x, so "ahead" is larger x and a lane is a band of y.
"""

from __future__ import annotations

import numpy as np

from hrlzoo.envs.driving.config import IDMConfig

WHEELBASE_FRACTION = 0.6  # wheelbase of a vehicle as a fraction of its length
MAX_STEER = 0.5  # rad


def idm_accel(v, v0, gap, v_lead, p: IDMConfig):
    """IDM acceleration for speed `v`, desired speed `v0`, bumper gap `gap` to a leader driving
    at `v_lead` (gap = inf: free road), clipped to [-b_max, a_max]."""
    v0 = np.maximum(v0, 0.1)
    s_star = p.s0 + np.maximum(0.0, v * p.time_headway + v * (v - v_lead) / (2 * np.sqrt(p.a_max * p.b_comf)))
    free = 1.0 - (np.maximum(v, 0.0) / v0) ** p.delta
    finite = np.isfinite(gap)
    inter = np.where(finite, (s_star / np.maximum(np.where(finite, gap, 1.0), 0.1)) ** 2, 0.0)
    return np.minimum(np.maximum(p.a_max * (free - inter), -p.b_max), p.a_max)  # np.clip is slower on small arrays


def lateral_extent(length, width, heading):
    """Full extent across the road (y) of a box with the given heading (m)."""
    return length * np.abs(np.sin(heading)) + width * np.abs(np.cos(heading))


def neighbours(qx, qy, qlen, qwid, ox, oy, olen, owid, ovalid, margin, exclude=None):
    """Nearest object ahead and behind each query inside its lateral corridor.

    Queries (N, Q): centre, length, lateral extent. Objects (N, M) likewise, with a validity
    mask. Object j is in the corridor of query i when their sides are within `margin` metres
    laterally: |y_j - y_i| < (w_i + w_j)/2 + margin. `exclude` (Q, M) marks pairs to ignore (a
    vehicle and itself). Returns (lead_gap, lead_idx, follow_gap, follow_idx), each (N, Q); a
    gap is bumper to bumper and +inf (index 0) where there is no such object.
    """
    dx = ox[:, None, :] - qx[:, :, None]
    near = np.abs(oy[:, None, :] - qy[:, :, None]) < (qwid[:, :, None] + owid[:, None, :]) / 2 + margin
    near &= ovalid[:, None, :]
    if exclude is not None:
        near &= ~exclude
    half = (qlen[:, :, None] + olen[:, None, :]) / 2
    ahead = np.where(near & (dx > 0), dx - half, np.inf)
    behind = np.where(near & (dx <= 0), -dx - half, np.inf)
    li, fi = ahead.argmin(-1), behind.argmin(-1)
    return ahead.min(-1), li, behind.min(-1), fi


def gather(values, idx):
    """values (N, M), idx (N, Q) -> (N, Q)."""
    return values[np.arange(len(idx))[:, None], idx]


def lane_of(y, lane_width, lanes):
    """Index of the lane whose band holds lateral position y (clipped to the road)."""
    return np.clip(np.floor(np.asarray(y) / lane_width).astype(np.int64), 0, lanes - 1)


def lane_center(lane, lane_width):
    return (np.asarray(lane) + 0.5) * lane_width


def lane_keep_steer(y, h, v, length, y_target, lat_speed, lat_gain):
    """Steering that moves a vehicle towards lateral position `y_target` on a road along +x.

    The lateral speed asked for is lat_gain * error, capped at `lat_speed`; the heading that
    gives it is tracked with a yaw rate of 2 / s per radian of heading error, and turned into a
    bicycle steering angle.
    """
    v_eff = np.maximum(v, 1.0)
    v_lat = np.clip(lat_gain * (y_target - y), -lat_speed, lat_speed)
    h_ref = np.arcsin(np.clip(v_lat / v_eff, -0.4, 0.4))
    yaw_rate = 2.0 * (h_ref - h)
    return np.clip(np.arctan(WHEELBASE_FRACTION * length * yaw_rate / v_eff), -MAX_STEER, MAX_STEER)


def bicycle_step(x, y, h, v, acc, steer, length, dt, v_max):
    """One Euler step of the kinematic bicycle model referred to the vehicle's centre
    (slip angle beta = atan(tan(steer)/2), rear and front axles equally far from the centre)."""
    beta = np.arctan(0.5 * np.tan(steer))
    x = x + v * np.cos(h + beta) * dt
    y = y + v * np.sin(h + beta) * dt
    h = h + v * np.sin(beta) / (0.5 * WHEELBASE_FRACTION * length) * dt
    v = np.clip(v + acc * dt, 0.0, v_max)
    return x, y, h, v
