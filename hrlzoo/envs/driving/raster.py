"""Ego-centric bird's-eye rasters, rendered for a whole batch with numpy.

Image axes: row 0 is the farthest ahead; the ego's centre is pixel (ego_row, size // 2);
x forward (ego frame) points up, y left points left. Pixel (r, c) covers the square centred
on x = (ego_row - r) * res, y = (size // 2 - c) * res. Channels (uint8, 0 or 1):
"""

from __future__ import annotations

import numpy as np

from hrlzoo.envs.driving.config import RasterConfig
from hrlzoo.envs.driving.geometry import to_frame

CHANNELS = ("road", "lane_lines", "closure", "route", "ego", "vehicles_t0", "vehicles_t-1", "vehicles_t-2")
__doc__ += "".join(f"\n    {i} {name}" for i, name in enumerate(CHANNELS))
DASH = 6.0  # lane-line dashes: 6 m painted, 6 m gap (world x), so the raster shows motion


def pixel_grid(rc: RasterConfig) -> np.ndarray:
    """(size*size, 2) ego-frame x, y of every pixel centre, row-major."""
    r, c = np.meshgrid(np.arange(rc.size), np.arange(rc.size), indexing="ij")
    return np.stack([(rc.ego_row - r) * rc.resolution, (rc.size // 2 - c) * rc.resolution], -1).reshape(-1, 2)


def to_pixels(xy, rc: RasterConfig) -> np.ndarray:
    """Ego-frame points (..., 2) -> fractional (row, col) (..., 2)."""
    xy = np.asarray(xy, dtype=np.float64)
    return np.stack([rc.ego_row - xy[..., 0] / rc.resolution, rc.size // 2 - xy[..., 1] / rc.resolution], -1)


def _inside(px, py, boxes):
    """Pixels (..., P) inside ego-frame boxes (..., 5) broadcast to (..., P)."""
    dx, dy = px - boxes[..., 0:1], py - boxes[..., 1:2]
    c, s = np.cos(boxes[..., 2:3]), np.sin(boxes[..., 2:3])
    return (np.abs(dx * c + dy * s) <= boxes[..., 3:4] / 2) & (np.abs(dy * c - dx * s) <= boxes[..., 4:5] / 2)


def _draw_boxes(img, boxes, valid, rc: RasterConfig):
    """Set to 1 the pixels of `img` (N, H*W) whose centres lie in any valid ego-frame box (N, B, 5).

    Each box is tested only on a k x k window of pixels around its centre (k from the largest
    box), so the cost is N * B * k^2, not N * B * H * W.
    """
    n, b = valid.shape
    if b == 0 or not valid.any():
        return
    k = int(np.ceil(np.hypot(boxes[..., 3], boxes[..., 4])[valid].max() / rc.resolution)) + 2
    centre = np.rint(to_pixels(boxes[..., :2], rc)).astype(np.int64)  # (N, B, 2)
    off = np.arange(k) - k // 2
    rows = centre[..., 0, None, None] + off[:, None]  # (N, B, k, 1)
    cols = centre[..., 1, None, None] + off[None, :]  # (N, B, 1, k)
    rows, cols = np.broadcast_arrays(rows, cols)
    rows, cols = rows.reshape(n, b, -1), cols.reshape(n, b, -1)
    px = (rc.ego_row - rows) * rc.resolution
    py = (rc.size // 2 - cols) * rc.resolution
    hit = _inside(px, py, boxes) & valid[..., None]
    hit &= (rows >= 0) & (rows < rc.size) & (cols >= 0) & (cols < rc.size)
    nn = np.broadcast_to(np.arange(n)[:, None, None], hit.shape)
    img[nn[hit], (rows * rc.size + cols)[hit]] = 1


def render(rc: RasterConfig, ego_pose, ego_size, history, closure, route_y, lanes: int, lane_width: float):
    """Rasters (N, C, size, size) uint8.

    ego_pose (N, 3) world x, y, heading; ego_size (N, 2) length, width; history: a list, newest
    first, of (boxes (N, V, 5), active (N, V)) world-frame vehicle boxes with slot 0 the ego
    (len(history) >= 3 for t, t-1, t-2); closure (N, 5) world box (length 0: none);
    route_y (N,) world y of the lane the route asks for (NaN: no route).
    """
    n = len(ego_pose)
    grid = pixel_grid(rc)
    P = len(grid)
    out = np.zeros((n, len(CHANNELS), P), dtype=np.uint8)
    c, s = np.cos(ego_pose[:, 2:3]).astype(np.float32), np.sin(ego_pose[:, 2:3]).astype(np.float32)
    gx, gy = grid[None, :, 0].astype(np.float32), grid[None, :, 1].astype(np.float32)
    wx = ego_pose[:, 0:1].astype(np.float32) + c * gx - s * gy  # world x, y of every pixel (N, P)
    wy = ego_pose[:, 1:2].astype(np.float32) + s * gx + c * gy
    half = rc.resolution / 2
    out[:, 0] = (wy >= 0) & (wy <= lanes * lane_width)
    k = np.rint(wy / lane_width)  # nearest lane line, 0 (right edge) .. lanes (left edge)
    edge = (k == 0) | (k == lanes)
    dashed = np.floor(wx / DASH) % 2 == 0
    out[:, 1] = (np.abs(wy - k * lane_width) <= half) & (k >= 0) & (k <= lanes) & (edge | dashed)
    rows = np.flatnonzero(closure[:, 3] > 0)
    if len(rows):
        cl = to_frame(closure[rows], ego_pose[rows])
        out[rows, 2] = _inside(grid[None, :, 0], grid[None, :, 1], cl)
    has_route = np.isfinite(route_y)
    out[:, 3] = (np.abs(wy - np.nan_to_num(route_y)[:, None]) <= half) & has_route[:, None] & (gx >= 0)
    ego = np.concatenate([np.zeros((n, 3)), ego_size], -1)[:, None]
    _draw_boxes(out[:, 4], ego, np.ones((n, 1), dtype=bool), rc)
    for t in range(3):
        boxes, active = history[t]
        _draw_boxes(out[:, 5 + t], to_frame(boxes[:, 1:], ego_pose[:, None, :]), active[:, 1:], rc)
    return out.reshape(n, len(CHANNELS), rc.size, rc.size)


def to_rgb(raster: np.ndarray) -> np.ndarray:
    """A raster (C, H, W) as a picture (H, W, 3) uint8: grey road, white lines, orange
    closures, green route, blue ego, red vehicles (fainter at t-1, t-2)."""
    r = raster.astype(np.float32)
    img = 0.25 * r[0][..., None] * np.ones(3) + 0.5 * r[1][..., None]
    img += r[2][..., None] * np.array([1.0, 0.5, 0.0]) + 0.6 * r[3][..., None] * np.array([0.0, 1.0, 0.0])
    img += r[4][..., None] * np.array([0.0, 0.3, 1.0])
    for k, w in ((5, 1.0), (6, 0.5), (7, 0.25)):
        img += w * r[k][..., None] * np.array([1.0, 0.0, 0.0])
    return (255 * np.clip(img, 0, 1)).astype(np.uint8)


def draw(ax, raster: np.ndarray, rc: RasterConfig, plans=(), styles=None, title: str | None = None) -> None:
    """Show a raster on a matplotlib Axes with ego-frame trajectories (T, 2+) drawn over it
    (e.g. the expert's future, a planner's plan, GRPO samples); `styles` are plot kwargs per plan."""
    ax.imshow(to_rgb(raster))
    for i, plan in enumerate(plans):
        px = to_pixels(np.concatenate([np.zeros((1, 2)), np.asarray(plan, dtype=np.float64)[:, :2]]), rc)
        style = {"marker": ".", "linewidth": 1, **((styles or [{}] * len(plans))[i])}
        ax.plot(px[:, 1], px[:, 0], **style)
    ax.set_xlim(-0.5, rc.size - 0.5)
    ax.set_ylim(rc.size - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
