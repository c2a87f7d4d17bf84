"""Expert driving logs cut into training frames (nuScenes-style: the present, 3 s of future).

`record(cfg, seeds, frames)` drives every scene with the expert and keeps the world state of
every frame; `frames_from_log(log, cfg)` turns it into per-frame arrays (FRAME_KEYS) for every
frame t with two frames of past (t >= 2) and a full future (t + horizon <= frames) at which the
ego has not crashed yet. All geometry is in the ego frame of frame t (x forward, y left,
metres, radians) except `ego_pose`, the ego's world pose, which lets a stage go back to the
world (and to the road edges: world y in [0, lanes * lane_width]).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from hrlzoo.envs.driving.config import SimConfig
from hrlzoo.envs.driving.geometry import to_frame
from hrlzoo.envs.driving.raster import CHANNELS, render
from hrlzoo.envs.driving.sim import DrivingSim

FRAME_KEYS = {  # name: (shape after the frame axis F, dtype, meaning); T = horizon, A = vehicles (V - 1) + 1 closure
    "raster": ("C, H, W", "uint8", "bird's-eye raster at t, channels raster.CHANNELS, 0/1"),
    "ego_state": ("4", "float32", "speed m/s, acceleration m/s^2, yaw rate rad/s, steering rad"),
    "command": ("", "int8", "navigation command: 0 keep lane, 1 change left, 2 change right"),
    "expert_future": ("T, 3", "float32", "expert ego x, y, heading at t + dt .. t + T dt"),
    "agents_now": ("A, 7", "float32", "other agents at t: x, y, heading, length, width, vx, vy"),
    "agents_now_valid": ("A", "bool", "agent slot is present at t"),
    "agents_future": ("T, A, 5", "float32", "other agents' boxes x, y, heading, length, width at t + dt .."),
    "agents_valid": ("T, A", "bool", "agent slot is present at that future step"),
    "ego_pose": ("3", "float64", "ego world x, y, heading at t (world: x along the road, y left)"),
    "ego_size": ("2", "float32", "ego length, width"),
    "scene_seed": ("", "int64", "seed of the scene the frame comes from"),
    "scenario": ("", "int8", "scenario type, index into config.SCENARIOS"),
    "frame_index": ("", "int16", "t, frames since the scene started"),
    "future_collision": ("", "bool", "the expert itself collides within the next T frames"),
}


def record(cfg: SimConfig, seeds, frames: int, on_frame: Callable[[], None] | None = None) -> dict:
    """Drive scenes `seeds` with the expert for `frames` frames; world state at frames 0..frames.

    Returns boxes (N, F+1, V, 5), active, v (N, F+1, V), ego_state (N, F+1, 4),
    command, crashed, offroad (N, F+1), route_y (N, F+1), closure (N, 5), plus per scene
    seeds, scenario, crash_frame.
    """
    sim = DrivingSim(cfg, seeds)
    keys = ("boxes", "active", "v", "ego_state", "command", "crashed", "offroad", "route_y")
    log = {k: [] for k in keys}

    def snap():
        log["boxes"].append(sim.boxes())
        log["active"].append(sim.active.copy())
        log["v"].append(sim.v.copy())
        log["ego_state"].append(sim.ego_state())
        log["command"].append(sim.command())
        log["crashed"].append(sim.crashed.copy())
        log["offroad"].append(sim.offroad.copy())
        log["route_y"].append(sim.route_y())

    snap()
    for _ in range(frames):
        sim.step()
        snap()
        if on_frame:
            on_frame()
    out = {k: np.stack(v, 1) for k, v in log.items()}
    out.update(closure=sim.closure.copy(), seeds=sim.seeds.copy(), scenario=sim.scenario.copy(),
               crash_frame=sim.crash_frame.copy())
    return out


def frame_index(log: dict, cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(scene, t) of every usable frame: 2 <= t <= F - horizon and the ego not crashed at t."""
    n, f1 = log["crashed"].shape
    t = np.arange(2, f1 - cfg.horizon)
    ok = ~log["crashed"][:, t] & ~log["offroad"][:, t]
    s, i = np.nonzero(ok)
    return s, t[i]


def frames_from_log(log: dict, cfg: SimConfig, chunk: int = 512) -> dict:
    """Per-frame arrays (FRAME_KEYS) for every usable frame of a log, rasters rendered in chunks."""
    s, t = frame_index(log, cfg)
    H = cfg.horizon
    fut = t[:, None] + np.arange(1, H + 1)  # (F, T)
    pose = log["boxes"][s, t, 0, :3]  # (F, 3)
    boxes = log["boxes"]
    ego_future = to_frame(boxes[s[:, None], fut, 0, :3], pose[:, None, :])
    closure = log["closure"][s]  # (F, 5)
    has_cl = closure[:, 3] > 0
    others = boxes[:, :, 1:]  # (N, F+1, V-1, 5)
    agents_future = np.concatenate(
        [others[s[:, None], fut], np.broadcast_to(closure[:, None, None, :], (len(s), H, 1, 5))], 2)
    agents_future = to_frame(agents_future, pose[:, None, None, :])
    agents_valid = np.concatenate([log["active"][s[:, None], fut, 1:],
                                   np.broadcast_to(has_cl[:, None, None], (len(s), H, 1))], 2)
    now = np.concatenate([others[s, t], closure[:, None, :]], 1)
    v_now = np.concatenate([log["v"][s, t, 1:], np.zeros((len(s), 1))], 1)
    now_ego = to_frame(now, pose[:, None, :])
    vx, vy = v_now * np.cos(now_ego[..., 2]), v_now * np.sin(now_ego[..., 2])
    agents_now = np.concatenate([now_ego, vx[..., None], vy[..., None]], -1)
    now_valid = np.concatenate([log["active"][s, t, 1:], has_cl[:, None]], 1)
    ego_size = boxes[s, t, 0, 3:5]
    raster = np.empty((len(s), len(CHANNELS), cfg.raster.size, cfg.raster.size), dtype=np.uint8)
    for a in range(0, len(s), chunk):
        sl = slice(a, a + chunk)
        ss, tt = s[sl], t[sl]
        hist = [(boxes[ss, tt - k], log["active"][ss, tt - k]) for k in range(3)]
        raster[sl] = render(cfg.raster, pose[sl], ego_size[sl], hist, closure[sl], log["route_y"][ss, tt],
                            cfg.lanes, cfg.lane_width)
    return {
        "raster": raster,
        "ego_state": log["ego_state"][s, t].astype(np.float32),
        "command": log["command"][s, t].astype(np.int8),
        "expert_future": ego_future.astype(np.float32),
        "agents_now": agents_now.astype(np.float32),
        "agents_now_valid": now_valid,
        "agents_future": agents_future.astype(np.float32),
        "agents_valid": agents_valid,
        "ego_pose": pose.astype(np.float64),
        "ego_size": ego_size.astype(np.float32),
        "scene_seed": log["seeds"][s].astype(np.int64),
        "scenario": log["scenario"][s].astype(np.int8),
        "frame_index": t.astype(np.int16),
        "future_collision": log["crashed"][s, t + H] & ~log["crashed"][s, t],
    }


def later_frame(split: dict, k: int = 1) -> np.ndarray:
    """(F,) index, in the same split, of the frame k frames (k * dt s) after each frame of the
    same scene; -1 where that frame is not logged (near the scene's end, or after a crash).
    What a world model needs to pair the present with its future."""
    key = split["scene_seed"].astype(np.int64) * 100_000 + split["frame_index"].astype(np.int64)
    order = np.argsort(key, kind="stable")
    want = key + k
    pos = np.clip(np.searchsorted(key[order], want), 0, len(key) - 1)
    found = key[order][pos] == want
    return np.where(found, order[pos], -1)


def pack_raster(raster: np.ndarray) -> np.ndarray:
    """0/1 rasters (F, C, H, W) -> bits packed along the width (F, C, H, ceil(W / 8)): 8x smaller."""
    return np.packbits(raster.astype(bool), axis=-1)


def load_split(path, raster: bool = True) -> dict:
    """The arrays of one split file written by the datagen stage (`train.npz`, ...), with the
    packed `raster_bits` unpacked into `raster` (F, C, H, W) uint8 (skip it with raster=False)."""
    with np.load(path) as z:
        out = {k: z[k] for k in z.files if k != "raster_bits"}
        if raster:
            bits = z["raster_bits"]
            out["raster"] = np.unpackbits(bits, axis=-1, count=bits.shape[-2])
    return out
