"""What the legged stages share: paths, building the tunnel banks with their plans, the envs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.legged import planner
from stages.legged.body import BodyConfig, CrawlerEnv, Maps, RewardConfig
from stages.legged.tunnels import KINDS, Geometry, make_bank

DATA = Path("data/legged/worlds")      # train.npz, test.npz, plans.parquet
RUN_ROOT = Path("data/legged/runs")    # <method>/: curve.parquet, eval.parquet, traj.npz, policy.pt
REPORT_DIR = Path("reports/legged")
SPLIT_SALT = {"train": 0, "test": 1}
MODE = {"hierarchical": "waypoint", "e2e": "e2e", "pms": "pms"}


def geometry(p) -> Geometry:
    t = p.tunnel
    return Geometry(res=t.res, width=t.width, ceiling=t.ceiling, pad=t.pad, start_x=t.start_x, spacing=t.spacing)


def body_config(p) -> BodyConfig:
    return BodyConfig(**{k: getattr(p.body, k) for k in BodyConfig.__dataclass_fields__})


def reward_config(p) -> RewardConfig:
    return RewardConfig(**{k: getattr(p.reward, k) for k in RewardConfig.__dataclass_fields__})


def build_bank(p, split: str, per_cell: int, progress=None) -> tuple[dict, list[dict]]:
    """Tunnels of every (kind, distance) for `split`, planned: the bank (tunnels.make_bank plus
    waypoints [M, K, 4], n_wp [M], path_ok [M]) and one row per tunnel for plans.parquet."""
    geo, body, pl = geometry(p), body_config(p), p.planner
    bank = make_bank(list(p.kinds), list(p.distances), per_cell, geo, p.world_seed * 10 + SPLIT_SALT[split])
    maps = Maps(bank["floor"], bank["ceil"], geo.res, geo.pad, geo.width)
    wps, rows = [], []
    for m in range(len(bank["kind"])):
        gx = float(bank["goal_x"][m])
        valid, z0, xs, ys = planner.lattice_validity(maps, m, geo, body, pl.xy_step, pl.heights, pl.rolls, pl.margin,
                                                     pl.margin_h, gx + p.goal_radius)
        path = planner.plan(valid, z0, xs, ys, pl.heights, pl.rolls, body, (geo.start_x, 0.0), (gx, 0.0),
                            p.goal_radius, pl.pose_cost, body.step_max)
        if path is None:
            w = np.array([[gx, 0.0, body.h_stand, 0.0]], np.float32)
        else:
            w = planner.waypoints(path, pl.waypoint_spacing, (gx, 0.0))
        wps.append(w)
        rows.append({"split": split, "tunnel": m, "kind": KINDS[int(bank["kind"][m])],
                     "distance": float(bank["distance"][m]), "path_found": path is not None,
                     "waypoints": len(w), "path_length": 0.0 if path is None else
                     float(np.hypot(*np.diff(path[:, :2], axis=0).T).sum()),
                     "min_height": float(w[:, 2].min()), "max_abs_roll": float(np.abs(w[:, 3]).max())})
        if progress is not None:
            progress.update(1)
    K = max(len(w) for w in wps)
    W = np.zeros((len(wps), K, 4), np.float32)
    for i, w in enumerate(wps):
        W[i, :len(w)] = w
        W[i, len(w):] = w[-1]
    bank["waypoints"] = W
    bank["n_wp"] = np.array([len(w) for w in wps], np.int64)
    bank["path_ok"] = np.array([r["path_found"] for r in rows])
    return bank, rows


def load_bank(split: str) -> dict:
    with np.load(DATA / f"{split}.npz") as z:
        return {k: z[k] for k in z.files}


def make_env(p, bank: dict, method: str, num_envs: int, tunnels=None, autoreset: bool = True,
             terminate_at_goal: bool | None = None) -> CrawlerEnv:
    pool = np.flatnonzero(bank["path_ok"])  # every method trains on the tunnels the planner solved
    return CrawlerEnv(bank, geometry(p), MODE[method], num_envs, body_config(p), reward_config(p),
                      switch_dist=p.switch_dist, goal_radius=p.goal_radius, steps_per_m=p.steps_per_m,
                      pool=pool, tunnels=tunnels, terminate_at_goal=terminate_at_goal, autoreset=autoreset)
