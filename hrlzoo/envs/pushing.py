"""Planar non-prehensile pushing in procedurally generated layouts, with real 2-D rigid-body
physics (pymunk, i.e. Chipmunk2D), many worlds per process, in the batched convention of
`hrlzoo.envs.batched` (and its gymnasium faces).

The scaled-down substrate of HAMNet (Cho, Han, Han, Kim, RSS 2025; spec A §7.5): a disk pusher
("hand", planar velocity control through a pivot joint, the pymunk tank example's drive) moves a
polygon object, lying on a floor with Coulomb friction, to a goal pose (x, y, theta) through a
layout built from one *geometry* and one *floor*:

    geometry: open | wall | pocket | corridor | obstacles     (static walls and boxes)
    floor:    uniform | patches                                 (a patch of very low or high friction)

so there are ten environment combinations; some are held out of training (`PushConfig.heldout_envs`)
and evaluated as "held-out combinations" (every element of them is seen in training, never the pair).
Object shapes come from seven families (triangle, square, pentagon, hexagon, rect, L, T; the last two
concave, compound bodies); some families are held out (`heldout_shapes`). Domain randomisation as
HAMNet's `rss_train.yaml` (mass 0.1-0.5, floor friction 0.2-0.6, hand friction 1.0-1.5) in our units.

Reward: HAMNet's push task (`ham/env/task/push_task.py`, `rewards.py` PotLogRew): potential-based
terms with the log potential P(d) = -log(1 + k d), object-goal keypoint distance (coefficient
`pot_coef` 0.16) and hand-object distance (`hand_obj_pot_coef` 0.03), gamma 1, plus `succ_coef` 1.0
on success; success = centre within `pos_tol` and yaw within `ang_tol`, which terminates the episode.

Observation (float32, `obs_layout` names the slices): object pose and velocity, goal, goal relative
to the object, hand position and velocity, previous action, physics parameters (mass, floor
friction under the object, hand friction), then the object point cloud and the environment point
cloud (the `n_env_points` static-geometry points nearest the object), both in the object-centred,
world-aligned frame in units of `cloud_scale` metres: the inputs of the contact encoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hrlzoo.envs.batched import BatchedEnv

GEOMETRIES = ("open", "wall", "pocket", "corridor", "obstacles")
FLOORS = ("uniform", "patches")
SHAPES = ("triangle", "square", "pentagon", "hexagon", "rect", "L", "T")
SPLITS = ("train", "heldout_env", "heldout_shape")
GRAVITY = 9.81


@dataclass
class PushConfig:
    """Every knob of the simulator (units: metres, kilograms, seconds)."""

    arena: float = 0.5            # half-width of the square arena (walled)
    dt: float = 0.01              # physics step
    substeps: int = 5             # physics steps per control step (HAMNet: action period 8)
    max_steps: int = 100          # control steps per episode (time limit)
    pusher_radius: float = 0.02
    v_max: float = 0.25           # hand speed at |action| = 1 (m/s)
    hand_force: float = 40.0      # drive force limit of the hand's pivot joint (N)
    size_min: float = 0.04        # object circumradius range
    size_max: float = 0.06
    mass_min: float = 0.1         # HAMNet DR: mass 0.1-0.5 kg
    mass_max: float = 0.5
    mu_min: float = 0.2           # HAMNet DR: table friction 0.2-0.6
    mu_max: float = 0.6
    hand_mu_min: float = 1.0      # HAMNet DR: hand friction 1.0-1.5
    hand_mu_max: float = 1.5
    object_mu: float = 0.5        # object surface friction (HAMNet object_friction)
    patch_mu: tuple = (0.05, 1.0)  # friction of a floor patch: one of these
    goal_dist_min: float = 0.1
    goal_dist_max: float = 0.25
    goal_rot: float = 0.5         # goal yaw = start yaw + U(-goal_rot, goal_rot)
    pos_tol: float = 0.03         # success: centre distance
    ang_tol: float = 0.3          # success: yaw error (rad)
    pot_coef: float = 0.16        # HAMNet pot_coef
    hand_obj_pot_coef: float = 0.03  # HAMNet hand_obj_pot_coef
    succ_coef: float = 1.0        # HAMNet succ_coef
    pot_k: float = 20.0           # k of P(d) = -log(1 + k d), per metre (ours)
    n_obj_points: int = 32
    n_env_points: int = 32
    cloud_scale: float = 0.1      # cloud coordinates are metres / cloud_scale
    env_point_spacing: float = 0.01
    geometries: tuple = GEOMETRIES
    floors: tuple = FLOORS
    shapes: tuple = SHAPES
    heldout_envs: tuple = (("pocket", "patches"), ("obstacles", "patches"))
    heldout_shapes: tuple = ("hexagon", "T")

    def combos(self, split: str) -> list[tuple[str, str]]:
        every = [(g, f) for g in self.geometries for f in self.floors]
        held = [tuple(c) for c in self.heldout_envs]
        return [c for c in every if c in held] if split == "heldout_env" else [c for c in every if c not in held]

    def shape_families(self, split: str) -> list[str]:
        held = list(self.heldout_shapes)
        return held if split == "heldout_shape" else [s for s in self.shapes if s not in held]


def obs_layout(cfg: PushConfig) -> dict[str, slice]:
    """Names of the observation's slices (the policy and the encoder read them by name)."""
    sizes = [("object_state", 7), ("goal", 4), ("goal_rel", 4), ("hand_state", 4), ("previous_action", 2),
             ("phys_params", 3), ("object_cloud", 2 * cfg.n_obj_points), ("env_cloud", 2 * cfg.n_env_points)]
    out, i = {}, 0
    for name, n in sizes:
        out[name] = slice(i, i + n)
        i += n
    return out


def obs_dim(cfg: PushConfig) -> int:
    return obs_layout(cfg)["env_cloud"].stop


# ---------------------------------------------------------------------------- geometry helpers

def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def shape_parts(family: str, rng: np.random.Generator, cfg: PushConfig) -> list[np.ndarray]:
    """Convex parts (vertex arrays [k, 2], object frame, centred near 0) of one object."""
    R = rng.uniform(cfg.size_min, cfg.size_max)
    regular = {"triangle": 3, "square": 4, "pentagon": 5, "hexagon": 6}
    if family in regular:
        k = regular[family]
        ang = np.arange(k) * 2 * math.pi / k + rng.uniform(-0.15, 0.15, k) * 2 * math.pi / k
        rad = R * rng.uniform(0.85, 1.0, k)
        return [np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)]
    if family == "rect":
        a = rng.uniform(1.5, 2.5)
        w = 2 * R / math.sqrt(1 + a * a)
        h, L = w, a * w
        return [np.array([[-L / 2, -h / 2], [L / 2, -h / 2], [L / 2, h / 2], [-L / 2, h / 2]])]
    t = R * rng.uniform(0.45, 0.6)   # bar thickness
    L = 2 * R * 0.8
    box = lambda x0, y0, x1, y1: np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    if family == "L":
        parts = [box(-L / 2, -L / 2, L / 2, -L / 2 + t), box(-L / 2, -L / 2 + t, -L / 2 + t, L / 2)]
    elif family == "T":
        parts = [box(-L / 2, L / 2 - t, L / 2, L / 2), box(-t / 2, -L / 2, t / 2, L / 2 - t)]
    else:
        raise ValueError(f"shape family {family!r}: expected one of {SHAPES}")
    centre = np.mean(np.concatenate(parts), 0)
    return [p - centre for p in parts]


def _poly_contains(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points strictly inside a convex counter-clockwise-or-not polygon (sign-consistent edges)."""
    e0, e1 = poly, np.roll(poly, -1, 0)
    cross = ((e1 - e0)[None, :, 0] * (pts[:, None, 1] - e0[None, :, 1])
             - (e1 - e0)[None, :, 1] * (pts[:, None, 0] - e0[None, :, 0]))
    return np.all(cross > 1e-9, 1) | np.all(cross < -1e-9, 1)


def outline_points(parts: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """n points on the outer boundary of the union of convex parts (object frame), sorted by angle."""
    cand = []
    for p in parts:
        e0, e1 = p, np.roll(p, -1, 0)
        lens = np.linalg.norm(e1 - e0, axis=1)
        m = max(8 * n, 64)
        which = rng.choice(len(p), size=m, p=lens / lens.sum())
        t = rng.uniform(0, 1, m)[:, None]
        cand.append(e0[which] + t * (e1[which] - e0[which]))
    cand = np.concatenate(cand)
    keep = np.ones(len(cand), bool)
    for p in parts:
        keep &= ~_poly_contains(p, cand)
    cand = cand[keep]
    pts = cand[rng.choice(len(cand), size=n, replace=len(cand) < n)]
    return pts[np.argsort(np.arctan2(pts[:, 1], pts[:, 0]))]


def segment_points(segs: np.ndarray, spacing: float) -> np.ndarray:
    """Points every `spacing` along segments [k, 2, 2]."""
    out = []
    for a, b in segs:
        n = max(2, int(np.linalg.norm(b - a) / spacing) + 1)
        t = np.linspace(0, 1, n)[:, None]
        out.append(a + t * (b - a))
    return np.concatenate(out) if out else np.zeros((0, 2))


def box_segments(centre, half, theta) -> np.ndarray:
    R = _rot(theta)
    c = np.array([[-half[0], -half[1]], [half[0], -half[1]], [half[0], half[1]], [-half[0], half[1]]]) @ R.T + centre
    return np.stack([c, np.roll(c, -1, 0)], 1)


@dataclass
class Layout:
    """One episode's scene: what the generator drew (also what the renderer draws)."""

    geometry: str
    floor: str
    shape: str
    parts: list                 # convex parts of the object (object frame)
    cloud: np.ndarray           # [n_obj_points, 2] outline points (object frame)
    start: np.ndarray           # x, y, theta
    goal: np.ndarray            # x, y, theta
    hand: np.ndarray            # x, y
    walls: np.ndarray           # [k, 2, 2] static segments (arena included)
    patch: np.ndarray | None    # [4, 2] floor patch polygon, or None
    patch_mu: float
    mu: float
    mass: float
    hand_mu: float
    env_points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def generate_layout(cfg: PushConfig, split: str, rng: np.random.Generator) -> Layout:
    """Draw one scene of `split` from `rng` alone (procedural generation)."""
    combos, fams = cfg.combos(split), cfg.shape_families(split)
    geometry, floor = combos[int(rng.integers(len(combos)))]
    shape = fams[int(rng.integers(len(fams)))]
    parts = shape_parts(shape, rng, cfg)
    r_obj = max(float(np.linalg.norm(p, axis=1).max()) for p in parts)
    cloud = outline_points(parts, cfg.n_obj_points, rng)
    A = cfg.arena
    lim = A - 0.12
    for _ in range(100):
        s = rng.uniform(-lim, lim, 2)
        d = rng.uniform(cfg.goal_dist_min, cfg.goal_dist_max)
        phi = rng.uniform(-math.pi, math.pi)
        g = s + d * np.array([math.cos(phi), math.sin(phi)])
        if np.all(np.abs(g) <= lim):
            break
    u = (g - s) / np.linalg.norm(g - s)
    n = np.array([-u[1], u[0]])
    th0 = rng.uniform(-math.pi, math.pi)
    goal_th = th0 + rng.uniform(-cfg.goal_rot, cfg.goal_rot)
    segs = [box_segments(np.zeros(2), (A, A), 0.0)]
    gap = lambda: r_obj + rng.uniform(0.005, 0.03)
    dist = float(np.linalg.norm(g - s))
    if geometry == "wall":
        side = rng.choice([-1.0, 1.0]) * gap()
        a, b = s - 0.1 * u + side * n, g + 0.1 * u + side * n
        segs.append(np.array([[a, b]]))
    elif geometry == "pocket":
        w, depth = gap(), r_obj + rng.uniform(0.03, 0.06)
        back = g + (r_obj + rng.uniform(0.005, 0.02)) * u
        l0, r0 = back + w * n, back - w * n
        segs.append(np.array([[l0, r0], [l0, l0 - depth * u], [r0, r0 - depth * u]]))
    elif geometry == "corridor":
        w = gap()
        a, b = s + 0.3 * dist * u, g - 0.1 * dist * u
        segs.append(np.array([[a + w * n, b + w * n], [a - w * n, b - w * n]]))
    elif geometry == "obstacles":
        k = int(rng.integers(1, 3))
        for j in range(k):
            half = rng.uniform(0.015, 0.03, 2)
            along = s + (0.35 + 0.4 * j / max(k - 1, 1)) * dist * u
            lateral = rng.choice([-1.0, 1.0]) * (r_obj * rng.uniform(0.6, 1.0) + half.max())
            segs.append(box_segments(along + lateral * n, half, rng.uniform(0, math.pi)))
    walls = np.concatenate(segs)
    patch, patch_mu = None, 0.0
    if floor == "patches":
        half = np.array([0.5 * dist + 0.02, rng.uniform(0.05, 0.1)])
        c = s + rng.uniform(0.4, 0.6) * dist * u
        patch = box_segments(c, half, math.atan2(u[1], u[0]))[:, 0]
        patch_mu = float(rng.choice(np.asarray(cfg.patch_mu)))
    # the hand starts 0.08-0.2 m from the object, away from walls (drawn until it fits)
    env_pts = segment_points(walls, cfg.env_point_spacing)
    for _ in range(100):
        ang = rng.uniform(-math.pi, math.pi)
        h = s + rng.uniform(r_obj + 0.03, r_obj + 0.15) * np.array([math.cos(ang), math.sin(ang)])
        if np.all(np.abs(h) < A - 2 * cfg.pusher_radius) and \
                np.min(np.linalg.norm(env_pts - h, axis=1)) > 1.5 * cfg.pusher_radius:
            break
    return Layout(geometry, floor, shape, parts, cloud, np.array([*s, th0]), np.array([*g, goal_th]), h, walls,
                  patch, patch_mu, float(rng.uniform(cfg.mu_min, cfg.mu_max)),
                  float(rng.uniform(cfg.mass_min, cfg.mass_max)),
                  float(rng.uniform(cfg.hand_mu_min, cfg.hand_mu_max)), env_pts)


def wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def nearest_env_points(env_points: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """The n static-geometry points nearest x, relative to x, in angular order [n, 2] (metres)."""
    ep = env_points - x
    near = np.argpartition(np.einsum("kd,kd->k", ep, ep), n - 1)[:n]
    e = ep[near]
    return e[np.argsort(np.arctan2(e[:, 1], e[:, 0]))]


def distance_to_parts(parts: list[np.ndarray], pose: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance of world points [n, 2] to the object (union of convex parts) at pose (x, y, theta); 0 inside."""
    local = (pts - pose[:2]) @ _rot(pose[2])   # world -> object frame (R^T applied on the right)
    best = np.full(len(pts), np.inf)
    for p in parts:
        e0, e1 = p, np.roll(p, -1, 0)
        d = e1 - e0
        t = np.clip(np.einsum("nkd,kd->nk", local[:, None] - e0[None], d) / np.einsum("kd,kd->k", d, d), 0, 1)
        proj = e0[None] + t[..., None] * d[None]
        dist = np.linalg.norm(local[:, None] - proj, axis=2).min(1)
        best = np.minimum(best, np.where(_poly_contains(p, local), 0.0, dist))
    return best


# ---------------------------------------------------------------------------- one pymunk world

class World:
    """One pymunk space: static walls, the object (floor friction through a pivot and a gear
    joint to the static body, the pymunk top-down-friction recipe), the hand (a dynamic disk
    driven by a kinematic control body through a pivot joint, the pymunk tank example)."""

    def __init__(self, cfg: PushConfig, lay: Layout):
        import pymunk

        self.cfg, self.lay = cfg, lay
        sp = pymunk.Space()
        sp.gravity = (0.0, 0.0)
        sp.iterations = 20
        static = sp.static_body
        for a, b in lay.walls:
            seg = pymunk.Segment(static, tuple(a), tuple(b), 0.002)
            seg.friction = 0.5
            sp.add(seg)
        m = lay.mass
        areas = [abs(0.5 * np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])) for p in lay.parts]
        tot = sum(areas)
        moment = sum(pymunk.moment_for_poly(m * a / tot, [tuple(v) for v in p]) for a, p in zip(areas, lay.parts))
        obj = pymunk.Body(m, moment)
        obj.position = tuple(lay.start[:2])
        obj.angle = float(lay.start[2])
        shapes = []
        for a, p in zip(areas, lay.parts):
            sh = pymunk.Poly(obj, [tuple(v) for v in p], radius=0.0005)
            sh.mass = m * a / tot
            sh.friction = cfg.object_mu
            shapes.append(sh)
        sp.add(obj, *shapes)
        self.obj_shapes = shapes
        self.r_eff = float(np.mean([np.linalg.norm(p, axis=1).mean() for p in lay.parts])) * 2 / 3
        self.fric_lin = pymunk.PivotJoint(static, obj, (0, 0), (0, 0))
        self.fric_rot = pymunk.GearJoint(static, obj, 0.0, 1.0)
        for j in (self.fric_lin, self.fric_rot):
            j.max_bias = 0.0
        sp.add(self.fric_lin, self.fric_rot)
        hand = pymunk.Body(1.0, pymunk.moment_for_circle(1.0, 0, cfg.pusher_radius))
        hand.position = tuple(lay.hand)
        hs = pymunk.Circle(hand, cfg.pusher_radius)
        hs.friction = lay.hand_mu
        self.control = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        self.control.position = hand.position
        drive = pymunk.PivotJoint(self.control, hand, (0, 0), (0, 0))
        drive.max_bias = 0.0
        drive.max_force = cfg.hand_force
        sp.add(hand, hs, self.control, drive)
        self.space, self.obj, self.hand = sp, obj, hand
        self.patch = None
        if lay.patch is not None:  # a rectangle: centre, unit axes, half extents (plain floats: per substep)
            c = lay.patch.mean(0)
            e0, e1 = lay.patch[1] - lay.patch[0], lay.patch[2] - lay.patch[1]
            l0, l1 = float(np.linalg.norm(e0)), float(np.linalg.norm(e1))
            self.patch = (float(c[0]), float(c[1]), *(e0 / l0), *(e1 / l1), l0 / 2, l1 / 2)

    def mu_at(self, x: float, y: float) -> float:
        if self.patch is not None:
            cx, cy, ax, ay, bx, by, ha, hb = self.patch
            dx, dy = x - cx, y - cy
            if abs(dx * ax + dy * ay) < ha and abs(dx * bx + dy * by) < hb:
                return self.lay.patch_mu
        return self.lay.mu

    def step(self, v: np.ndarray, substeps: int, dt: float) -> None:
        self.control.velocity = (float(v[0]), float(v[1]))
        w = self.lay.mass * GRAVITY
        for _ in range(substeps):
            f = self.mu_at(*self.obj.position) * w
            self.fric_lin.max_force = f
            self.fric_rot.max_force = f * self.r_eff
            self.space.step(dt)

    def state(self) -> list[float]:
        """x, y, theta, vx, vy, omega, hand x, hand y, hand vx, hand vy."""
        o, h = self.obj, self.hand
        (x, y), (vx, vy), (hx, hy), (hvx, hvy) = o.position, o.velocity, h.position, h.velocity
        return [x, y, o.angle, vx, vy, o.angular_velocity, hx, hy, hvx, hvy]


# ---------------------------------------------------------------------------- the batched env

class PushEnv(BatchedEnv):
    """N pushing worlds (one pymunk space each) stepped in one call. `split` picks the scenes:
    train | heldout_env | heldout_shape. Action [N, 2] in [-1, 1]: the hand's velocity / v_max."""

    def __init__(self, num_envs: int, cfg: PushConfig | None = None, split: str = "train", device="cpu",
                 autoreset: bool = True):
        from gymnasium import spaces

        if split not in SPLITS:
            raise ValueError(f"split {split!r}: expected one of {SPLITS}")
        self.cfg = cfg or PushConfig()
        self.split = split
        self.layout_slices = obs_layout(self.cfg)
        d = obs_dim(self.cfg)
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (d,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        super().__init__(num_envs, self.cfg.max_steps, device, autoreset)
        self.worlds: list[World | None] = [None] * num_envs
        self.prev_action = np.zeros((num_envs, 2))
        self.prev_pot = np.zeros((num_envs, 2))
        self.success = np.zeros(num_envs, bool)
        self.keypoints = np.zeros((num_envs, 4, 2))

    def _potentials(self, idx, st: np.ndarray) -> np.ndarray:
        """[n, 2]: P(object-goal keypoint distance), P(hand-object distance) of worlds idx, state st [n, 10].
        Keypoints: +-r along the object's axes (HAMNet's keypoint distance, in the plane)."""
        goal = np.stack([self.worlds[i].lay.goal for i in idx])
        kp = self.keypoints[idx]

        def place(pose):
            c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
            rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
            return np.einsum("nij,nkj->nki", rot, kp) + pose[:, None, :2]

        d_obj = np.linalg.norm(place(st[:, :3]) - place(goal), axis=2).mean(1)
        d_hand = np.maximum(np.hypot(st[:, 6] - st[:, 0], st[:, 7] - st[:, 1]) - self.cfg.pusher_radius, 0.0)
        k = self.cfg.pot_k
        return np.stack([-np.log1p(k * d_obj), -np.log1p(k * d_hand)], 1)

    def _reset_worlds(self, idx):
        for i in idx:
            lay = generate_layout(self.cfg, self.split, self.np_random[i])
            self.worlds[i] = World(self.cfg, lay)
            r = max(float(np.linalg.norm(p, axis=1).max()) for p in lay.parts)
            self.keypoints[i] = np.array([[r, 0], [-r, 0], [0, r], [0, -r]])
            self.prev_action[i] = 0.0
            self.success[i] = False
        idx = list(idx)
        if idx:
            self.prev_pot[idx] = self._potentials(idx, np.array([self.worlds[i].state() for i in idx]))

    def _step_worlds(self, action):
        import torch

        a = np.clip(np.asarray(action.detach().cpu().numpy() if hasattr(action, "detach") else action,
                               dtype=np.float64), -1.0, 1.0)
        cfg = self.cfg
        for w, ai in zip(self.worlds, a * cfg.v_max):
            w.step(ai, cfg.substeps, cfg.dt)
        st = np.array([w.state() for w in self.worlds])
        goal = np.stack([w.lay.goal for w in self.worlds])
        pot = self._potentials(list(range(self.num_envs)), st)
        succ = (np.hypot(st[:, 0] - goal[:, 0], st[:, 1] - goal[:, 1]) < cfg.pos_tol) & \
            (np.abs(wrap(st[:, 2] - goal[:, 2])) < cfg.ang_tol)
        d = pot - self.prev_pot
        rew = cfg.pot_coef * d[:, 0] + cfg.hand_obj_pot_coef * d[:, 1] + cfg.succ_coef * succ
        self.prev_pot = pot
        self.success = succ
        term = succ.copy()
        self.prev_action = a
        self.last_success = self.success.copy()
        return (torch.as_tensor(rew, dtype=torch.float32, device=self.device),
                torch.as_tensor(term, device=self.device))

    def _observe(self):
        """Every world's observation at once (numpy over worlds; the nearest environment points
        are picked per world, their counts differ)."""
        import torch

        cfg, A, cs = self.cfg, self.cfg.arena, self.cfg.cloud_scale
        st = np.array([w.state() for w in self.worlds])                      # [N, 10]
        goal = np.stack([w.lay.goal for w in self.worlds])                   # [N, 3]
        x, th = st[:, :2], st[:, 2]
        c, s = np.cos(th), np.sin(th)
        rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)     # [N, 2, 2]
        clouds = np.stack([w.lay.cloud for w in self.worlds])               # [N, K, 2] object frame
        obj_cloud = np.einsum("nij,nkj->nki", rot, clouds) / cs
        env_cloud = np.empty((self.num_envs, cfg.n_env_points, 2))
        for i, w in enumerate(self.worlds):
            env_cloud[i] = nearest_env_points(w.lay.env_points, x[i], cfg.n_env_points) / cs
        rel = goal[:, :2] - x
        dth = wrap(goal[:, 2] - th)
        phys = np.array([[w.lay.mass / cfg.mass_max, w.mu_at(st[i, 0], st[i, 1]), w.lay.hand_mu]
                         for i, w in enumerate(self.worlds)])
        obs = np.concatenate([
            x / A, c[:, None], s[:, None], st[:, 3:5] / cfg.v_max, st[:, 5:6],
            goal[:, :2] / A, np.cos(goal[:, 2:3]), np.sin(goal[:, 2:3]),
            rel / cs, np.cos(dth)[:, None], np.sin(dth)[:, None],
            (st[:, 6:8] - x) / cs, st[:, 8:10] / cfg.v_max,
            self.prev_action, phys,
            obj_cloud.reshape(self.num_envs, -1), env_cloud.reshape(self.num_envs, -1)], 1).astype(np.float32)
        return torch.as_tensor(obs, device=self.device)

    # ------------------------------------------------------------------ what evaluation reads
    def categories(self) -> list[tuple[str, str, str]]:
        """(geometry, floor, shape) of every world's current episode."""
        return [(w.lay.geometry, w.lay.floor, w.lay.shape) for w in self.worlds]

    def snapshot(self, i: int) -> dict:
        """What a renderer needs to draw world i now (object outline in the world frame, hand,
        goal outline, walls, floor patch)."""
        w = self.worlds[i]
        st = np.asarray(w.state())
        place = lambda pose: [p @ _rot(pose[2]).T + pose[:2] for p in w.lay.parts]
        return {"parts": place(st[:3]), "goal_parts": place(w.lay.goal), "hand": st[6:8],
                "hand_radius": self.cfg.pusher_radius, "walls": w.lay.walls, "patch": w.lay.patch,
                "patch_mu": w.lay.patch_mu, "arena": self.cfg.arena,
                "title": f"{w.lay.geometry}+{w.lay.floor}, {w.lay.shape}"}
