"""Oriented boxes: exact overlap (separating-axis theorem), corners, frame changes.

A box is the last axis of an array, `[x, y, heading, length, width]` (metres, radians):
its centre, the direction of its long side, and its full side lengths. Every function here
broadcasts over the leading axes, so one call tests N scenes x T steps x A agents at once.

Frames: the world frame has x along the road and y to the left. The ego frame of a pose
`(x0, y0, h0)` has its origin at the ego box's centre, x forward, y to the left.
"""

from __future__ import annotations

import numpy as np

X, Y, H, L, W = range(5)  # box fields


def wrap_angle(a):
    """Angle(s) wrapped to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def boxes_overlap(a, b):
    """True where box `a` and box `b` share at least one point (touching counts).

    Separating-axis test for two rectangles: they are disjoint exactly when the projections on
    one of the four edge normals (two per box) are disjoint. On an axis n the half-extent of a
    box with axes (u, v) is l/2 |u.n| + w/2 |v.n|; for n along a's own axes those dot products
    are |cos| and |sin| of the relative heading, which is all the test needs.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    dx, dy = b[..., X] - a[..., X], b[..., Y] - a[..., Y]
    ca, sa = np.cos(a[..., H]), np.sin(a[..., H])
    cb, sb = np.cos(b[..., H]), np.sin(b[..., H])
    cr = np.abs(ca * cb + sa * sb)  # |cos(hb - ha)|
    sr = np.abs(ca * sb - sa * cb)  # |sin(hb - ha)|
    la, wa, lb, wb = a[..., L] / 2, a[..., W] / 2, b[..., L] / 2, b[..., W] / 2
    return ((np.abs(dx * ca + dy * sa) <= la + lb * cr + wb * sr)
            & (np.abs(dy * ca - dx * sa) <= wa + lb * sr + wb * cr)
            & (np.abs(dx * cb + dy * sb) <= lb + la * cr + wa * sr)
            & (np.abs(dy * cb - dx * sb) <= wb + la * sr + wa * cr))


def box_corners(boxes):
    """Corners (..., 4, 2) in counter-clockwise order: front-left, rear-left, rear-right, front-right."""
    boxes = np.asarray(boxes, dtype=np.float64)
    c, s = np.cos(boxes[..., H]), np.sin(boxes[..., H])
    hl, hw = boxes[..., L] / 2, boxes[..., W] / 2
    sl = np.array([1.0, -1.0, -1.0, 1.0])
    sw = np.array([1.0, 1.0, -1.0, -1.0])
    u = hl[..., None] * sl  # along the heading
    v = hw[..., None] * sw  # to the left
    x = boxes[..., X, None] + u * c[..., None] - v * s[..., None]
    y = boxes[..., Y, None] + u * s[..., None] + v * c[..., None]
    return np.stack([x, y], axis=-1)


def to_frame(xyh, pose):
    """Points or poses `(..., 2|3+)` from the world into the frame of `pose` `(..., 3)`.

    Fields after the first three (a box's length and width) are copied; a heading field is
    made relative and wrapped. `pose` broadcasts against the leading axes of `xyh`.
    """
    xyh = np.asarray(xyh, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    dx, dy = xyh[..., 0] - pose[..., 0], xyh[..., 1] - pose[..., 1]
    out = xyh.copy()
    out[..., 0] = c * dx + s * dy
    out[..., 1] = -s * dx + c * dy
    if xyh.shape[-1] > 2:
        out[..., 2] = wrap_angle(xyh[..., 2] - pose[..., 2])
    return out


def from_frame(xyh, pose):
    """The inverse of `to_frame`: points or poses given in the frame of `pose`, into the world."""
    xyh = np.asarray(xyh, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    out = xyh.copy()
    out[..., 0] = pose[..., 0] + c * xyh[..., 0] - s * xyh[..., 1]
    out[..., 1] = pose[..., 1] + s * xyh[..., 0] + c * xyh[..., 1]
    if xyh.shape[-1] > 2:
        out[..., 2] = wrap_angle(xyh[..., 2] + pose[..., 2])
    return out


def path_headings(xy, start_heading=0.0, min_step=0.05):
    """Headings (..., T) along waypoints (..., T, 2) that start from a pose at the origin.

    Heading t is the direction from waypoint t-1 (the origin for t = 0) to waypoint t; where
    the step is shorter than `min_step` metres (a stop) the previous heading is kept.
    """
    xy = np.asarray(xy, dtype=np.float64)
    prev = np.concatenate([np.zeros_like(xy[..., :1, :]), xy[..., :-1, :]], axis=-2)
    d = xy - prev
    raw = np.arctan2(d[..., 1], d[..., 0])
    moving = np.hypot(d[..., 0], d[..., 1]) >= min_step
    out = np.empty(xy.shape[:-1])
    h = np.broadcast_to(np.asarray(start_heading, dtype=np.float64), xy.shape[:-2]).copy()
    for t in range(xy.shape[-2]):
        h = np.where(moving[..., t], raw[..., t], h)
        out[..., t] = h
    return out
