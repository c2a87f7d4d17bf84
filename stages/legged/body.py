"""The batched body model in its tunnels, behind hrlzoo/envs/batched.py's interface (spec B §7.4).

A Go1 in Isaac Gym (12 joint targets through an actuator network, 1,024 envs) is out of reach on
2 CPUs; what survives is the body: an oriented box 0.38 m long, 0.10 m wide and h high
(h in [0.12, 0.30]: the legs fold), whose bottom rests on the floor under it (the legs adapt to
the floor; it climbs a step of at most `step_max` per control step) and whose top must stay under
the ceiling. Each 0.1 s step the policy sets desired body-frame rates

    a in [-1, 1]^6 -> (v_x, v_y, yaw rate, dh/dt, roll rate, pitch rate) * their limits,

reached through a first-order lag (`lag`) and an acceleration cap (`accel`, the stand-in for the
gait's leg phase); the forward and lateral speed limits shrink as the body lowers
(`crouch_speed` of full speed at h_min: crawling is slow). A step whose new pose intersects a
floor block, a wall or the ceiling (any of the box's sample points, bottom or top) is undone and
the body stops: the collision event (official: contact forces on thigh/calf/base).

Observation (official layout, `measure_front_half`): projected gravity (3), the command (2: the
current waypoint, or the far goal for end-to-end, relative to the body in x, y of its yaw frame;
3 for parameterised skills: v_x, yaw-rate and height commands), the previous action (6), the
body state standing in for the 24 joint positions and velocities (h and the 6 rates: 7), and the
floor and ceiling height maps over the front 1 m x 1 m (10 x 11 points each at x = 0.1..1.0 m,
y = -0.5..0.5 m, yaw frame), relative to the body's bottom and clipped to [-0.2, 0.5] m.
Rewards (official structure, each term times dt as legged_gym's `_prepare_reward_function` does)
are in `rewards`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hrlzoo.envs.batched import BatchedEnv

MODES = ("waypoint", "e2e", "pms")
EPS = 1e-6


@dataclass(frozen=True)
class BodyConfig:
    length: float = 0.38
    width: float = 0.10
    h_min: float = 0.12
    h_max: float = 0.30
    h_stand: float = 0.28        # official base_height_target (Go1 standing)
    v_max: float = 0.6           # forward speed limit standing (m/s)
    vy_max: float = 0.3          # lateral speed limit standing (m/s)
    yaw_rate_max: float = 2.0    # rad/s
    h_rate_max: float = 0.3      # m/s
    tilt_rate_max: float = 1.5   # roll and pitch rates (rad/s)
    roll_max: float = 0.6        # rad
    pitch_max: float = 0.4       # rad
    crouch_speed: float = 0.3    # speed limits at h_min, as a share of the standing ones
    lag: float = 0.5             # first-order lag: v += lag * (v* - v) per step
    accel: float = 2.0           # max change of v_x, v_y per second (m/s^2), of the other rates x 5
    step_max: float = 0.10       # highest floor step climbed in one control step (m)
    dt: float = 0.1              # control period (s, 10 Hz)

    def speed_scale(self, h):
        """Share of the standing speed limits at height h (1 standing, crouch_speed at h_min)."""
        t = (h - self.h_min) / (self.h_max - self.h_min)
        return self.crouch_speed + (1.0 - self.crouch_speed) * t


def sample_uv(body: BodyConfig, margin: float = 0.0, nu: int = 5, nv: int = 3):
    """Sample points of the box's footprint (body frame u forward, v left), inflated by `margin`."""
    u = np.linspace(-(body.length / 2 + margin), body.length / 2 + margin, nu)
    v = np.linspace(-(body.width / 2 + margin), body.width / 2 + margin, nv)
    U, V = np.meshgrid(u, v, indexing="ij")
    return U.ravel(), V.ravel()


def rotate(u, v, w, yaw, pitch, roll):
    """Body-frame offsets (u, v, w) [..., P] to world offsets under R = Rz(yaw) Ry(pitch) Rx(roll)
    (angles [...] broadcast against the points' last dim)."""
    import torch

    cr, sr = torch.cos(roll)[..., None], torch.sin(roll)[..., None]
    cp, sp = torch.cos(pitch)[..., None], torch.sin(pitch)[..., None]
    cy, sy = torch.cos(yaw)[..., None], torch.sin(yaw)[..., None]
    v1, w1 = v * cr - w * sr, v * sr + w * cr
    u2, w2 = u * cp + w1 * sp, -u * sp + w1 * cp
    return u2 * cy - v1 * sy, u2 * sy + v1 * cy, w2


class Maps:
    """A bank of tunnels as flat tensors, looked up by (tunnel, x, y)."""

    def __init__(self, floor, ceil, res: float, pad: float, width: float, device="cpu"):
        import torch

        self.floor = torch.as_tensor(np.asarray(floor), dtype=torch.float32, device=device)
        self.ceil = torch.as_tensor(np.asarray(ceil), dtype=torch.float32, device=device)
        self.M, self.NX, self.NY = self.floor.shape
        self.res, self.x0, self.y0 = res, -pad, -pad - width / 2
        self.ff, self.cf = self.floor.reshape(-1), self.ceil.reshape(-1)

    def index(self, tunnel, x, y):
        import torch

        ix = torch.clamp(((x - self.x0) / self.res).floor().long(), 0, self.NX - 1)
        iy = torch.clamp(((y - self.y0) / self.res).floor().long(), 0, self.NY - 1)
        return (tunnel * self.NX + ix) * self.NY + iy

    def lookup(self, tunnel, x, y):
        i = self.index(tunnel, x, y)
        return self.ff[i], self.cf[i]


def place(maps: Maps, tunnel, x, y, yaw, h, roll, pitch, U, V, margin_h: float = 0.0):
    """Rest the box on the floor: (z0 [...], collide [...] bool). `tunnel` and the pose [...];
    U, V [P] footprint points. The bottom sits as low as every bottom point allows (z0: the height
    of the bottom centre); collision: a point in a solid cell, or the top (h + margin_h) above the
    ceiling at the top point's x, y."""
    import torch

    U = torch.as_tensor(U, dtype=torch.float32, device=x.device)
    V = torch.as_tensor(V, dtype=torch.float32, device=x.device)
    zero = torch.zeros_like(U)
    bx, by, bz = rotate(U, V, zero, yaw, pitch, roll)
    tx, ty, tz = rotate(U, V, zero + (h[..., None] + margin_h), yaw, pitch, roll)
    t = tunnel[..., None]
    fb, cb = maps.lookup(t, x[..., None] + bx, y[..., None] + by)
    ft, ct = maps.lookup(t, x[..., None] + tx, y[..., None] + ty)
    z0 = (fb - bz).amax(-1)
    solid = (cb < fb) | (ct < ft)
    hit = (z0[..., None] + tz) > ct
    return z0, (solid | hit).any(-1)


@dataclass(frozen=True)
class RewardConfig:
    """Reward scales (official values; see stages/legged/params.py for their sources)."""

    # hierarchical (scripts_archived_0/train_hierarchy.py)
    reaching_local_goal: float = 100.0
    reach_goal: float = 100.0
    exploration: float = 1.0
    stalling: float = 1.0
    collision_hier: float = 1.0
    action_rate_hier: float = 0.01
    small_vel: float = 0.05
    large_dist: float = 0.5
    # end-to-end (scripts/train.py, strategy e2e)
    task: float = 1.0
    exploration_lin: float = 1.0
    exploration_yaw: float = 0.4
    collision_e2e: float = 5.0
    base_height: float = 20.0
    ang_vel_xy: float = 0.001
    action_rate_e2e: float = 0.001
    target_lin_vel: float = 0.25
    lin_reaching: float = 0.3
    sigma_lin: float = 0.05
    target_ang_vel: float = math.pi / 2
    ang_reaching: float = math.pi / 20
    sigma_ang: float = 0.25
    # parameterised skills (command tracking)
    track_lin: float = 1.0
    track_yaw: float = 0.4
    track_pose: float = 1.0
    sigma_h: float = 0.002
    sigma_tilt: float = 0.05


class CrawlerEnv(BatchedEnv):
    """N bodies in tunnels of a bank. `bank`: dict of arrays (stages/legged/tunnels.make_bank plus
    the planner's waypoints [M, K, 4] (x, y, h, roll) and n_wp [M]). `mode`: waypoint (the
    hierarchical low level) | e2e (the far goal) | pms (track the planner's v_x, yaw-rate and
    height commands). `tunnels`: None (each reset draws a tunnel from `pool`, the world's own
    generator) or one tunnel index per world (evaluation: world i always plays tunnels[i]).
    Episodes last `steps_per_m` x the tunnel's goal distance."""

    def __init__(self, bank: dict, geo, mode: str, num_envs: int, body: BodyConfig = BodyConfig(),
                 rew: RewardConfig = RewardConfig(), switch_dist: float = 0.25, goal_radius: float = 0.3,
                 steps_per_m: float = 40.0, pool=None, tunnels=None, terminate_at_goal: bool | None = None,
                 device="cpu", autoreset: bool = True):
        import torch
        from gymnasium import spaces

        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        self.mode, self.body, self.rew, self.geo = mode, body, rew, geo
        self.switch_dist, self.goal_radius, self.steps_per_m = switch_dist, goal_radius, steps_per_m
        # official: the hierarchical episode ends at the global goal; e2e keeps going (its task
        # reward pays standing still there); evaluation ends every method at the goal
        self.terminate_at_goal = (mode != "e2e") if terminate_at_goal is None else terminate_at_goal
        dev = torch.device(device)
        self.maps = Maps(bank["floor"], bank["ceil"], geo.res, geo.pad, geo.width, dev)
        t = lambda a, dt=torch.float32: torch.as_tensor(np.asarray(a), dtype=dt, device=dev)
        self.goal_x, self.distance = t(bank["goal_x"]), t(bank["distance"])
        self.wp, self.n_wp = t(bank["waypoints"]), t(bank["n_wp"], torch.long)
        self.pool = np.arange(self.maps.M) if pool is None else np.asarray(pool)
        self.fixed = None if tunnels is None else np.asarray(tunnels)
        U, V = sample_uv(body)
        self.U, self.V = t(U), t(V)
        xs, ys = np.meshgrid(np.linspace(0.1, 1.0, 10), np.linspace(-0.5, 0.5, 11), indexing="ij")
        self.scan_x, self.scan_y = t(xs.ravel()), t(ys.ravel())
        cmd = 3 if mode == "pms" else 2
        self.obs_size = 3 + cmd + 6 + 7 + 2 * self.scan_x.numel()
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (self.obs_size,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (6,), np.float32)
        super().__init__(num_envs, None, dev, autoreset)
        N = num_envs
        z = lambda dt=torch.float32: torch.zeros(N, dtype=dt, device=dev)
        self.tunnel, self.wp_idx, self.limit = z(torch.long), z(torch.long), z(torch.long)
        self.x, self.y, self.yaw, self.h, self.roll, self.pitch, self.z0 = (z() for _ in range(7))
        self.vel = torch.zeros(N, 6, device=dev)
        self.prev_action = torch.zeros(N, 6, device=dev)
        self.explore_scale = 1.0  # e2e: the decaying share of the exploration rewards (set by the trainer)
        self.last_success = torch.zeros(N, dtype=torch.bool, device=dev)  # this step reached the goal
        self.collided = torch.zeros(N, dtype=torch.bool, device=dev)  # this step collided
        self.limits = t([body.v_max, body.vy_max, body.yaw_rate_max, body.h_rate_max, body.tilt_rate_max,
                         body.tilt_rate_max])

    # ------------------------------------------------------------------ hooks
    def _reset_worlds(self, idx):
        import torch

        b = self.body
        idx_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        tun, y0, yaw0 = [], [], []
        for i in idx:
            g = self.np_random[i]
            tun.append(int(self.fixed[i]) if self.fixed is not None else int(self.pool[g.integers(len(self.pool))]))
            y0.append(g.uniform(-0.05, 0.05))
            yaw0.append(g.uniform(-0.1, 0.1))
        f = lambda a: torch.as_tensor(a, dtype=torch.float32, device=self.device)
        self.tunnel[idx_t] = torch.as_tensor(tun, dtype=torch.long, device=self.device)
        self.x[idx_t] = self.geo.start_x
        self.y[idx_t], self.yaw[idx_t] = f(y0), f(yaw0)
        self.h[idx_t], self.roll[idx_t], self.pitch[idx_t] = b.h_stand, 0.0, 0.0
        self.vel[idx_t] = 0.0
        self.prev_action[idx_t] = 0.0
        self.wp_idx[idx_t] = 0
        self.limit[idx_t] = torch.ceil(self.distance[self.tunnel[idx_t]] * self.steps_per_m).long()
        z0, _ = place(self.maps, self.tunnel[idx_t], self.x[idx_t], self.y[idx_t], self.yaw[idx_t], self.h[idx_t],
                      self.roll[idx_t], self.pitch[idx_t], self.U, self.V)
        self.z0[idx_t] = z0

    def targets(self):
        """(current waypoint x, y [N], the far goal x, y [N])."""
        import torch

        n = torch.arange(self.num_envs, device=self.device)
        w = self.wp[self.tunnel, self.wp_idx]
        return w[:, 0], w[:, 1], self.goal_x[self.tunnel], torch.zeros_like(self.x), n

    def to_body(self, dx, dy):
        c, s = self.yaw.cos(), self.yaw.sin()
        return c * dx + s * dy, -s * dx + c * dy

    def pms_command(self):
        """The parameterised skill's command from the planner's current waypoint: (v_x, yaw rate, h) [N, 3]."""
        import torch

        wx, wy, _, _, n = self.targets()
        bx, by = self.to_body(wx - self.x, wy - self.y)
        err = torch.atan2(by, bx)
        # height: the lowest the planner planned within reach of the body (half its length + switch_dist),
        # and at the current waypoint: crouch before a beam, stay low until the body is past it
        w = self.wp[self.tunnel]                                             # [N, K, 4]
        k = torch.arange(w.shape[1], device=self.device)
        near = torch.hypot(w[..., 0] - self.x[:, None], w[..., 1] - self.y[:, None]) < self.body.length / 2 + self.switch_dist
        use = (near & (k < self.n_wp[self.tunnel][:, None])) | (k == self.wp_idx[:, None])
        h_cmd = torch.where(use, w[..., 2], torch.full_like(w[..., 2], float("inf"))).amin(1)
        vx = 0.8 * self.body.v_max * self.body.speed_scale(h_cmd) * torch.cos(err).clamp(min=0.0)
        wz = (2.0 * err).clamp(-0.8 * self.body.yaw_rate_max, 0.8 * self.body.yaw_rate_max)
        return torch.stack([vx, wz, h_cmd], 1)

    def _step_worlds(self, action):
        import torch

        b, r, dt = self.body, self.rew, self.body.dt
        a = action.to(self.device, torch.float32).clamp(-1.0, 1.0)
        scale = torch.ones(self.num_envs, 6, device=self.device)
        s = b.speed_scale(self.h)
        scale[:, 0], scale[:, 1] = s, s
        target = a * self.limits * scale
        dv = (b.lag * (target - self.vel))
        cap = torch.tensor([b.accel, b.accel, 5 * b.accel, 5 * b.accel, 5 * b.accel, 5 * b.accel], device=self.device) * dt
        vel = self.vel + torch.max(torch.min(dv, cap), -cap)
        vel[:, :2] = torch.max(torch.min(vel[:, :2], self.limits[:2] * scale[:, :2]), -self.limits[:2] * scale[:, :2])
        c, sn = self.yaw.cos(), self.yaw.sin()
        nx = self.x + (vel[:, 0] * c - vel[:, 1] * sn) * dt
        ny = self.y + (vel[:, 0] * sn + vel[:, 1] * c) * dt
        nyaw = self.yaw + vel[:, 2] * dt
        nh = (self.h + vel[:, 3] * dt).clamp(b.h_min, b.h_max)
        nroll = (self.roll + vel[:, 4] * dt).clamp(-b.roll_max, b.roll_max)
        npitch = (self.pitch + vel[:, 5] * dt).clamp(-b.pitch_max, b.pitch_max)
        z0, hit = place(self.maps, self.tunnel, nx, ny, nyaw, nh, nroll, npitch, self.U, self.V)
        hit = hit | ((z0 - self.z0) > b.step_max)
        ok = ~hit
        sel = lambda new, old: torch.where(ok, new, old)
        self.x, self.y, self.yaw = sel(nx, self.x), sel(ny, self.y), sel(nyaw, self.yaw)
        self.h, self.roll, self.pitch, self.z0 = sel(nh, self.h), sel(nroll, self.roll), sel(npitch, self.pitch), sel(z0, self.z0)
        self.vel = torch.where(ok[:, None], vel, torch.zeros_like(vel))
        self.collided = hit
        # world-frame velocity in the yaw frame = body v_x, v_y (what the official base_lin_vel gives)
        v = self.vel[:, :2]
        speed = v.norm(dim=1)
        wx, wy, gx, gy, n = self.targets()
        gbx, gby = self.to_body(gx - self.x, gy - self.y)
        dist_goal = torch.sqrt(gbx ** 2 + gby ** 2)
        reached = dist_goal < self.goal_radius
        self.last_success = reached
        act_rate = ((a - self.prev_action) ** 2).sum(1)
        if self.mode in ("waypoint", "pms"):
            lbx, lby = self.to_body(wx - self.x, wy - self.y)
            dl = torch.sqrt(lbx ** 2 + lby ** 2)
            switch = (dl < self.switch_dist) & (self.wp_idx < self.n_wp[self.tunnel] - 1)
        if self.mode == "waypoint":
            cosang = (v[:, 0] * lbx + v[:, 1] * lby) / (dl + EPS) / (speed + EPS)
            explore = cosang * (speed > r.small_vel).float()
            stall = ((speed < r.small_vel) & (dist_goal > r.large_dist)).float()
            rew = (r.reaching_local_goal * switch.float() + r.reach_goal * reached.float() + r.exploration * explore
                   - r.stalling * stall - r.collision_hier * hit.float() - r.action_rate_hier * act_rate)
        elif self.mode == "e2e":
            tv = torch.stack([gbx, gby], 1) / (dist_goal[:, None] + EPS) * r.target_lin_vel
            tv = tv * (dist_goal[:, None] > r.lin_reaching).float()
            e_lin = torch.exp(-((tv - v) ** 2).sum(1) / r.sigma_lin)
            ryaw = torch.atan2(torch.sin(-self.yaw), torch.cos(-self.yaw))  # goal pose yaw 0: along the tunnel
            tw = torch.sign(ryaw) * r.target_ang_vel * (ryaw.abs() > r.ang_reaching).float()
            e_yaw = torch.exp(-(tw - self.vel[:, 2]) ** 2 / r.sigma_ang)
            task = torch.exp(-(v ** 2).sum(1) / r.sigma_lin) * (dist_goal < self.switch_dist).float()
            k = self.explore_scale
            rew = (r.task * task + k * r.exploration_lin * e_lin + k * r.exploration_yaw * e_yaw
                   - r.collision_e2e * hit.float() - r.base_height * (self.h - b.h_stand) ** 2
                   - r.ang_vel_xy * (self.vel[:, 4] ** 2 + self.vel[:, 5] ** 2) - r.action_rate_e2e * act_rate)
        else:
            cmd = self.pms_command()
            lin = torch.exp(-((v[:, 0] - cmd[:, 0]) ** 2 + v[:, 1] ** 2) / r.sigma_lin)
            yaw = torch.exp(-(self.vel[:, 2] - cmd[:, 1]) ** 2 / r.sigma_ang)
            pose = torch.exp(-(self.h - cmd[:, 2]) ** 2 / r.sigma_h - (self.roll ** 2 + self.pitch ** 2) / r.sigma_tilt)
            rew = (r.track_lin * lin + r.track_yaw * yaw + r.track_pose * pose - r.collision_e2e * hit.float()
                   - r.ang_vel_xy * (self.vel[:, 4] ** 2 + self.vel[:, 5] ** 2) - r.action_rate_e2e * act_rate)
        if self.mode in ("waypoint", "pms"):
            self.wp_idx = self.wp_idx + switch.long()
        self.prev_action = a
        terminated = reached if self.terminate_at_goal else torch.zeros_like(reached)
        truncated = (self.elapsed + 1) >= self.limit
        return rew * dt, terminated, truncated

    def _observe(self):
        import torch

        grav = torch.stack([torch.sin(self.pitch), -torch.sin(self.roll) * torch.cos(self.pitch),
                            -torch.cos(self.roll) * torch.cos(self.pitch)], 1)
        wx, wy, gx, gy, _ = self.targets()
        if self.mode == "waypoint":
            cmd = torch.stack(self.to_body(wx - self.x, wy - self.y), 1)
        elif self.mode == "e2e":
            cmd = torch.stack(self.to_body(gx - self.x, gy - self.y), 1)
        else:
            cmd = self.pms_command()
        c, s = self.yaw.cos()[:, None], self.yaw.sin()[:, None]
        px = self.x[:, None] + c * self.scan_x - s * self.scan_y
        py = self.y[:, None] + s * self.scan_x + c * self.scan_y
        f, ce = self.maps.lookup(self.tunnel[:, None], px, py)
        f = (f - self.z0[:, None]).clamp(-0.2, 0.5)
        ce = (ce - self.z0[:, None]).clamp(-0.2, 0.5)
        state = torch.cat([self.h[:, None], self.vel], 1)
        return torch.cat([grav, cmd, self.prev_action, state, f, ce], 1)


def pose_log(env: CrawlerEnv):
    """The bodies' poses now: [N, 6] (x, y, yaw, h, roll, z0), for rendering trajectories."""
    import torch

    return torch.stack([env.x, env.y, env.yaw, env.h, env.roll, env.z0], 1)
