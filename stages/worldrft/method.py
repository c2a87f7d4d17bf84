"""WorldRFT's losses and update rules in one file (Yang et al., arXiv 2512.19133).

The official code is not released and the paper's equations are known to us only from its
description (spec A §5.2), so each piece below names the part of the paper it stands for and
which details are our reading. GRPO's own formulas are DeepSeekMath's (Shao et al. 2024,
Eq. 3 objective, Eq. 4 k3 KL, §4.1.2 outcome-supervised group-normalised advantages) and
reuse `hrlzoo.algos.grpo`.

World model (pretraining; SWE + latent world model):
    L_wm  = || T(z_t, tau*_t) - sg(z_{t+k}) ||^2                 latent prediction, LAW-style
    L_geo = mean BCE(semantic maps: vehicles, closure, drivable, lane lines, route) + |distance field - target|
    L     = L_wm + geometry_weight * L_geo
  z = encoder(raster) are the LayerNorm-ed latent tokens; tau*_t the logged ego trajectory
  (the plan actually driven); sg = stop-gradient. The geometry maps (32x32) stand in for the
  frozen VGGT features the paper fuses in: without them nothing in L_wm prevents a constant
  latent (our reading: the paper's semantic and geometric supervision plays that role).

Imitation (HPD + LIR):
    L_il = sum over the plan's stages s of mean_t |tau^s_t - tau*_t|_1  (+ intent_weight * CE(intention,
           nearest anchor) for HPD); stages = the HPD plan and every LIR round (deep supervision).

RFT with GRPO ("trajectory Gaussianisation"):
    pi_theta(tau | s) = prod_t,d N(tau_t,d; mu_theta(s)_t,d, sigma_t,d^2),   sigma_t,d linear in t (d = x, y)
    tau_1..G ~ pi_old(. | s);   R_i = -w_l2 * mean_t ||tau_i,t - tau*_t|| - w_col * 1[tau_i collides] + w_prog * EP_i
    A_i = (R_i - mean_j R_j) / (std_j R_j + eps)                 (within the G samples of one scene)
    L = mean_i [ -min(rho_i A_i, clip(rho_i, 1 - eps, 1 + eps) A_i) + beta * KL_k3(pi_theta || pi_ref)(tau_i) ]
    rho_i = pi_theta(tau_i | s) / pi_old(tau_i | s)
  A trajectory is one action (one "token"), so GRPO's per-sequence token mean is a plain mean.
  "Collides": the ego box placed on tau (heading along the path) overlaps a logged agent's
  box at the same future step (exact separating axes; closures included), nuScenes-style.
  EP = progress along the road / the expert's, clipped to [0, 1] (1 where the expert moves < 5 m).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from hrlzoo.algos.grpo import clipped_token_loss, group_advantages, k3_kl
from hrlzoo.envs.driving.config import RasterConfig, SimConfig
from hrlzoo.envs.driving.evaluate import evaluate_plans

GEOMETRY_MAPS = ("vehicles", "closure", "drivable", "lane_lines", "route", "distance")
ROAD, LANE_LINES, CLOSURE, ROUTE, VEHICLES_T0 = 0, 1, 2, 3, 5  # raster channels (hrlzoo.envs.driving.raster.CHANNELS)


# ------------------------------------------------------------------ world model
def geometry_targets(raster: np.ndarray, rc: RasterConfig, distance_clip: float) -> np.ndarray:
    """(B, 6, H/2, W/2) float32 targets (GEOMETRY_MAPS) from rasters (B, C, H, W) 0/1, per
    2x2 cell: semantic maps (the paper's L_sem) - a vehicle at t / a closure / a lane line /
    the route lane somewhere in the cell, most of the cell drivable (road, not obstacle) - and
    the distance field (its stand-in for VGGT's geometry): min(distance (m) from the cell's
    pixels to the nearest vehicle, closure or off-road pixel, distance_clip) / distance_clip,
    averaged over the cell."""
    from scipy.ndimage import distance_transform_edt

    r = raster.astype(bool)
    obstacle = r[:, VEHICLES_T0] | r[:, CLOSURE]
    free = r[:, ROAD] & ~obstacle
    dist = np.stack([distance_transform_edt(f) if not f.all() else np.full(f.shape, np.inf) for f in free])
    dist = np.minimum(dist * rc.resolution, distance_clip) / distance_clip
    B, H, W = obstacle.shape

    def pool(x, how):
        x = x.reshape(B, H // 2, 2, W // 2, 2)
        return x.max((2, 4)) if how == "max" else x.mean((2, 4))

    maps = [pool(r[:, VEHICLES_T0], "max"), pool(r[:, CLOSURE], "max"), pool(free, "mean") > 0.5,
            pool(r[:, LANE_LINES], "max"), pool(r[:, ROUTE], "max"), pool(dist, "mean")]
    return np.stack(maps, 1).astype(np.float32)


def geometry_loss(pred: torch.Tensor, target: torch.Tensor) -> dict:
    """Mean BCE over the five semantic maps (logits), L1 on the (sigmoid) distance field."""
    sem = F.binary_cross_entropy_with_logits(pred[:, :5], target[:, :5], reduction="none").mean((0, 2, 3))
    dist = (torch.sigmoid(pred[:, 5]) - target[:, 5]).abs().mean()
    out = {name: sem[i] for i, name in enumerate(GEOMETRY_MAPS[:5])}
    out["distance"] = dist
    out["geometry"] = sem.mean() + dist
    return out


def latent_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predicted and (stop-gradient) encoded future latent tokens."""
    return (pred - target.detach()).pow(2).mean()


def world_model_losses(wm, raster_t, raster_future, plan, geo_target, geometry_weight: float) -> dict:
    """Every term of the world model's loss on one batch of (frame, frame k later) pairs."""
    z, _ = wm.encoder(raster_t)
    with torch.no_grad():
        z_future, _ = wm.encoder(raster_future)
    out = geometry_loss(wm.geometry(z), geo_target)
    out["latent"] = latent_loss(wm.transition(z, plan), z_future)
    out["loss"] = out["latent"] + geometry_weight * out["geometry"]
    return out


# ------------------------------------------------------------------ imitation
def relative_future(expert_xy: np.ndarray, speed: np.ndarray, dt: float) -> np.ndarray:
    """The expert's future (F, T, 2) minus the constant-velocity trajectory of the current speed."""
    T = expert_xy.shape[1]
    cv = np.zeros_like(expert_xy)
    cv[..., 0] = speed[:, None] * dt * np.arange(1, T + 1)
    return expert_xy - cv


def kmeans_anchors(x: np.ndarray, k: int, seed: int, iters: int = 30) -> np.ndarray:
    """K anchor trajectories (k, T, 2): k-means (k-means++ start, Lloyd iterations) of x (F, T, 2)."""
    rng = np.random.default_rng(seed)
    flat = x.reshape(len(x), -1).astype(np.float64)
    centres = [flat[rng.integers(len(flat))]]
    for _ in range(1, k):
        d2 = np.min([((flat - c) ** 2).sum(1) for c in centres], 0)
        centres.append(flat[rng.choice(len(flat), p=d2 / d2.sum())] if d2.sum() > 0 else flat[rng.integers(len(flat))])
    c = np.stack(centres)
    for _ in range(iters):
        assign = nearest_anchor(flat, c)
        for j in range(k):
            members = flat[assign == j]
            if len(members):
                c[j] = members.mean(0)
    return c.reshape(k, *x.shape[1:]).astype(np.float32)


def nearest_anchor(x, anchors):
    """Index of the anchor nearest in L2 to each trajectory: x (F, T, 2) or (F, T*2) -> (F,)."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    a = np.asarray(anchors, dtype=np.float64).reshape(len(anchors), -1)
    d = (flat ** 2).sum(1)[:, None] - 2 * flat @ a.T + (a ** 2).sum(1)[None, :]
    return d.argmin(1)


def imitation_losses(out: dict, expert: torch.Tensor, target_anchor: torch.Tensor | None,
                     intent_weight: float) -> dict:
    """L1 on every stage of the plan (HPD's, then each LIR round), + CE on HPD's intention."""
    l1 = [(s - expert).abs().sum(-1).mean() for s in out["stages"]]
    res = {"l1": l1[-1], "loss": sum(l1)}
    if "intent_logits" in out and target_anchor is not None:
        ce = F.cross_entropy(out["intent_logits"], target_anchor)
        res["intent_ce"] = ce
        res["intent_acc"] = (out["intent_logits"].argmax(-1) == target_anchor).float().mean()
        res["loss"] = res["loss"] + intent_weight * ce
    return res


# ------------------------------------------------------------------ RFT: trajectory Gaussianisation
def sigma_schedule(horizon: int, lon=(0.3, 1.5), lat=(0.1, 0.3)) -> torch.Tensor:
    """(T, 2) std of each waypoint's x (along the ego's heading) and y (across): each linear in
    time from its value at the first waypoint (t = dt) to its value at the last (t = T dt)."""
    w = torch.linspace(0.0, 1.0, horizon) if horizon > 1 else torch.zeros(1)
    return torch.stack([lon[0] + (lon[1] - lon[0]) * w, lat[0] + (lat[1] - lat[0]) * w], -1)


def gaussian_logprob(tau: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, rho: float = 0.0) -> torch.Tensor:
    """log N(tau; mu, Sigma) summed over waypoints and coordinates: (..., T, 2) -> (...).

    Sigma is block-diagonal over the two coordinates d = x, y; within one coordinate
    Sigma_d[i, j] = sigma_i,d sigma_j,d rho^|i - j| (AR(1) correlation between waypoints; rho = 0:
    the diagonal Gaussian). With x_t = (tau_t - mu_t) / sigma_t the whitened noise is
    e_1 = x_1, e_t = (x_t - rho x_(t-1)) / sqrt(1 - rho^2), and
    log p = sum_t,d [-e^2 / 2 - log sigma_t,d - log(2 pi) / 2] - (T - 1) * 2 * log sqrt(1 - rho^2)."""
    z = ((tau - mu) / sigma).expand(torch.broadcast_shapes(tau.shape, mu.shape))
    logdet = torch.log(sigma).expand_as(z).sum((-2, -1))
    if rho:
        c = math.sqrt(1.0 - rho * rho)
        z = torch.cat([z[..., :1, :], (z[..., 1:, :] - rho * z[..., :-1, :]) / c], -2)
        logdet = logdet + (z.shape[-2] - 1) * z.shape[-1] * math.log(c)
    return (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum((-2, -1)) - logdet


def sample_trajectories(mu: torch.Tensor, sigma: torch.Tensor, group: int, generator: torch.Generator,
                        rho: float = 0.0) -> torch.Tensor:
    """G samples of each scene's Gaussian (gaussian_logprob's Sigma): mu (B, T, 2) -> (B, G, T, 2).
    The AR(1) noise x_1 = e_1, x_t = rho x_(t-1) + sqrt(1 - rho^2) e_t has unit variance at
    every waypoint, so sigma keeps its meaning (the std of each waypoint) for any rho."""
    eps = torch.randn((mu.shape[0], group, *mu.shape[1:]), generator=generator, dtype=mu.dtype)
    if rho:
        c = math.sqrt(1.0 - rho * rho)
        xs = [eps[..., 0, :]]
        for t in range(1, eps.shape[-2]):
            xs.append(rho * xs[-1] + c * eps[..., t, :])
        eps = torch.stack(xs, -2)
    return mu[:, None] + sigma * eps.to(mu.device)


def trajectory_outcomes(tau: np.ndarray, frames: dict, cfg: SimConfig) -> dict:
    """Per sample (B, G): mean L2 to the expert, collision (any step), EP, of trajectories
    tau (B, G, T, 2) for B logged frames (expert_future, agents_future, agents_valid,
    ego_size, ego_pose)."""
    B, G = tau.shape[:2]
    rep = lambda k: np.repeat(np.asarray(frames[k]), G, axis=0)  # noqa: E731
    m = evaluate_plans(tau.reshape(B * G, *tau.shape[2:]), rep("expert_future"), rep("agents_future"),
                       rep("agents_valid"), rep("ego_size"), rep("ego_pose"), cfg)
    ref = m["expert_progress"]
    ep = np.where(ref < 5.0, 1.0, np.clip(m["progress"] / np.maximum(ref, 1e-9), 0.0, 1.0))
    return {"l2": m["l2"].mean(-1).reshape(B, G), "collision": m["collision"].any(-1).reshape(B, G),
            "offroad": m["offroad"].any(-1).reshape(B, G), "ep": ep.reshape(B, G)}


def reward(outcomes: dict, l2: float, collision: float, progress: float) -> np.ndarray:
    """R = -l2 * mean L2 - collision * 1[collides] + progress * EP, per sample (B, G)."""
    return -l2 * outcomes["l2"] - collision * outcomes["collision"].astype(np.float64) + progress * outcomes["ep"]


def collision_signal(outcomes: dict, rewards: np.ndarray, collision_weight: float, eps: float = 1e-6) -> dict:
    """How much of GRPO's advantage comes from the collision term, over B groups of G samples.

    The group-normalised advantage is linear in the reward's terms, so with
    R_i = -w_l2 L2_i - w_col c_i + w_prog EP_i it splits exactly into one part per term; the
    collision part of sample i is A_col,i = -w_col (c_i - mean_j c_j) / (std_j R_j + eps)
    (the std of the whole reward, as `advantages` divides by). It is non-zero in a group exactly
    when w_col > 0 and the group holds both colliding and collision-free samples ("mixed").
    Returns sums, so that steps add up: groups, mixed_groups (the collision flag varies),
    signal_groups (non-zero collision advantage), samples, col_adv_abs = sum |A_col,i|,
    adv_abs = sum |A_i|."""
    col = np.asarray(outcomes["collision"], dtype=np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    std = r.std(1, ddof=1, keepdims=True) + eps  # torch.std's unbiased std, as group_advantages
    mixed = col.min(1) != col.max(1)
    a_col = -collision_weight * (col - col.mean(1, keepdims=True)) / std
    a = (r - r.mean(1, keepdims=True)) / std
    return {"groups": int(len(col)), "mixed_groups": int(mixed.sum()),
            "signal_groups": int((mixed & (collision_weight > 0)).sum()), "samples": int(col.size),
            "col_adv_abs": float(np.abs(a_col).sum()), "adv_abs": float(np.abs(a).sum())}


def interactive_frames(frames: dict, cfg: SimConfig, margin: float, chunk: int = 2048) -> np.ndarray:
    """(F,) bool: frames where the ego must interact with another agent within the horizon.

    A frame is interactive when the ego's box, grown by `margin` metres on every side, overlaps
    a logged agent's (or the closure's) box at the same future step, with the ego placed either
    on the expert's logged future or on the constant-velocity path of its current speed (what
    happens if it does not react). A property of the logged data alone, the same for every
    planner; `frames` needs expert_future, agents_future, agents_valid, ego_size, ego_state."""
    from hrlzoo.envs.driving.evaluate import plan_boxes
    from hrlzoo.envs.driving.geometry import boxes_overlap

    n = len(frames["ego_size"])
    out = np.zeros(n, dtype=bool)
    steps = cfg.dt * np.arange(1, cfg.horizon + 1)
    for a in range(0, n, chunk):
        sl = slice(a, a + chunk)
        size = np.asarray(frames["ego_size"][sl], dtype=np.float64) + 2.0 * margin
        speed = np.asarray(frames["ego_state"][sl, 0], dtype=np.float64)
        cv = np.stack([speed[:, None] * steps, np.zeros((len(speed), len(steps)))], -1)
        agents, valid = frames["agents_future"][sl], frames["agents_valid"][sl]
        for path in (frames["expert_future"][sl, :, :2], cv):
            boxes = plan_boxes(path, size)
            out[sl] |= (boxes_overlap(boxes[:, :, None, :], agents) & valid).any((1, 2))
    return out


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor, adv: torch.Tensor,
              clip_eps: float, kl_coef: float) -> tuple[torch.Tensor, dict]:
    """GRPO's objective (DeepSeekMath Eq. 3 with the k3 KL of Eq. 4) over (B, G) sampled
    trajectories, one action each: mean of the clipped policy-gradient loss + beta * KL."""
    pg, clipped = clipped_token_loss(logp, old_logp, adv, eps_low=clip_eps, eps_high=clip_eps)
    kl = k3_kl(logp, ref_logp)
    loss = (pg + kl_coef * kl).mean()
    return loss, {"pg": pg.mean().item(), "kl": kl.mean().item(), "clipfrac": clipped.float().mean().item()}


def advantages(rewards: torch.Tensor) -> torch.Tensor:
    """GRPO's group-normalised advantages of rewards (B scenes, G samples)."""
    return group_advantages(rewards, std_normalize=True, eps=1e-6)
