"""Scoring WorldRFT's planners: open loop on the logged test frames (nuScenes-style), closed
loop in the simulator on the test scenes (PDMS-like), and the data of the report's figures.

Open loop, per test frame (hrlzoo.envs.driving.evaluate.evaluate_plans):
    l2_1s, l2_2s, l2_3s     distance to the expert's waypoint at 1, 2, 3 s (UniAD's convention)
    col_1s, col_2s, col_3s  the plan's ego box overlaps an agent's logged box at some step up to
                            1, 2, 3 s (ST-P3's cumulative convention; our reading of "collision rate")
    offroad_3s              a corner of the ego box leaves the road at some step up to 3 s
Closed loop (hrlzoo.envs.driving.evaluate.closed_loop: collision, offroad, progress, ttc,
comfort, ep, pdms per episode), two protocols:
    handover   NAVSIM-style: the expert drives a scene for `start` frames, then the planner
               drives for 4 s, replanning every 0.5 s (traffic reacts); EP is relative to the
               expert's own 4 s from the same state. Episodes whose expert had already crashed
               at the handover are left out. The main closed-loop numbers.
    long       the planner drives the logged test scenes from their start for 17 s: errors
               compound, as NAVSIM's 4 s protocol avoids (supplementary).
"""

from __future__ import annotations

import numpy as np
import torch

from hrlzoo.envs.driving.evaluate import closed_loop, evaluate_plans
from stages.worldrft import method
from stages.worldrft.data import Frames

SECONDS = (1, 2, 3)


@torch.no_grad()
def plan_frames(planner, frames: Frames, batch: int, idx=None) -> np.ndarray:
    """The planner's plans (F, T, 2) for frames idx (default: all), batch by batch."""
    idx = np.arange(len(frames)) if idx is None else np.asarray(idx)
    out = []
    for a in range(0, len(idx), batch):
        b = frames.batch(idx[a:a + batch])
        out.append(planner(b["raster"], b["ego_state"], b["command"])["plan"].numpy())
    return np.concatenate(out) if out else np.zeros((0, 0, 2))


def open_loop(plans: np.ndarray, frames: Frames, cfg) -> dict:
    """Per-frame open-loop metrics (see the module doc) of plans (F, T, 2) on `frames`."""
    m = evaluate_plans(plans, frames["expert_future"], frames["agents_future"], frames["agents_valid"],
                       frames["ego_size"], frames["ego_pose"], cfg)
    out = {}
    for s in SECONDS:
        t = round(s / cfg.dt)
        if t <= plans.shape[1]:
            out[f"l2_{s}s"] = m["l2"][:, t - 1]
            out[f"col_{s}s"] = m["collision"][:, :t].any(1)
    out["offroad_3s"] = m["offroad"].any(1)
    out["progress"] = m["progress"]
    return out


def open_loop_summary(per_frame: dict) -> dict:
    """Means over frames: L2 in metres, rates in %; l2_avg and col_avg average the horizons."""
    s = {k: float(np.mean(v)) * (100.0 if k.startswith(("col", "offroad")) else 1.0) for k, v in per_frame.items()}
    s["l2_avg"] = float(np.mean([s[f"l2_{t}s"] for t in SECONDS]))
    s["col_avg"] = float(np.mean([s[f"col_{t}s"] for t in SECONDS]))
    return s


def as_planner(planner):
    """A closed-loop planner callable (obs dict -> plans (N, T, 2) numpy) from a torch planner."""

    @torch.no_grad()
    def plan(obs: dict) -> np.ndarray:
        out = planner(torch.from_numpy(obs["raster"]).float(), torch.from_numpy(obs["ego_state"]).float(),
                      torch.from_numpy(np.asarray(obs["command"]).astype(np.int64)))
        return out["plan"].double().numpy()

    return plan


def results_frame(name: str, res: dict, **extra):
    """A closed-loop result (per-episode arrays) as a polars table with a method column."""
    import polars as pl

    return pl.DataFrame({"method": name, **extra, **res}).with_columns(
        pl.col("collision", "offroad").cast(pl.Boolean), pl.col("scenario", "seed").cast(pl.Int64))


def handover_episodes(planners: dict, cfg, seeds, starts, frames: int):
    """NAVSIM-style closed-loop episodes (module doc) for every planner callable of `planners`
    (name -> obs -> plans; None: the expert): one table, a row per (method, start, scene)."""
    import polars as pl

    from hrlzoo.envs.driving.sim import DrivingSim

    sim = DrivingSim(cfg, seeds)
    rows = []
    for t in range(max(starts) + 1):
        if t in starts:
            live = ~sim.done()
            ref = closed_loop(cfg, None, None, frames, start=sim)
            for name, plan in planners.items():
                res = ref if plan is None else closed_loop(cfg, None, plan, frames, ref["progress"], start=sim)
                rows.append(results_frame(name, res, start=t).filter(pl.Series(live)))
        sim.step()
    return pl.concat(rows)


@torch.no_grad()
def figure_samples(planner, frames: Frames, idx, sigma: torch.Tensor, group: int, seed: int, cfg,
                   rho: float = 0.0) -> dict:
    """For frames idx: the planner's plan and `group` trajectories of its Gaussian, with the
    samples' collision flags (what the report draws over the rasters)."""
    b = frames.batch(idx)
    mu = planner(b["raster"], b["ego_state"], b["command"])["plan"]
    tau = method.sample_trajectories(mu, sigma, group, torch.Generator().manual_seed(seed), rho)
    out = method.trajectory_outcomes(tau.numpy(), frames.numpy(idx), cfg)
    mean = method.trajectory_outcomes(mu[:, None].numpy(), frames.numpy(idx), cfg)
    return {"plan": mu.numpy(), "samples": tau.numpy(), "sample_collision": out["collision"],
            "plan_collision": mean["collision"][:, 0]}
