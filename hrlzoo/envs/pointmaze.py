"""OGBench's PointMaze (env only), its scripted BFS oracle, its dataset generator, and batched
evaluation rollouts.

The environments are `ogbench`'s own (`pointmaze-{medium,large,giant}-v0`): a kinematic point
(qpos += 0.2 a, then 5 MuJoCo substeps), observation = (x, y), success within 1.0 of the goal,
five fixed evaluation tasks per maze. Nothing is downloaded: the datasets are generated here
by `generate`, which follows seohongpark/ogbench `data_gen_scripts/generate_locomaze.py` for
the point agent (action = unit direction to the oracle subgoal + N(0, noise^2), clipped) and
writes OGBench's file format, so `ogbench.make_env_and_datasets(name, dataset_path=...)` reads it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

MAZES = ("medium", "large", "giant")
DATASET_TYPES = ("navigate", "stitch")
NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1))  # the order OGBench's BFS and oracle use


def env_name(maze: str) -> str:
    return f"pointmaze-{maze}-v0"


def dataset_name(maze: str, kind: str) -> str:
    return f"pointmaze-{maze}-{kind}-v0"


def make_env(maze: str, **kwargs):
    """The ogbench environment for `maze` (registered by importing ogbench; env only)."""
    import gymnasium
    import ogbench  # noqa: F401  (registers the environments)

    return gymnasium.make(env_name(maze), **kwargs)


# ----------------------------------------------------------------------------- maze geometry
class MazeGeometry:
    """Cells, BFS distances and the oracle subgoal of one maze, with BFS maps cached per goal
    cell (OGBench's `get_oracle_subgoal` reruns the BFS at every call; the result is the same)."""

    def __init__(self, unwrapped_env):
        u = unwrapped_env
        self.maze_map = np.asarray(u.maze_map)
        self.unit, self.offset_x, self.offset_y = u._maze_unit, u._offset_x, u._offset_y
        self.task_infos = u.task_infos
        self._bfs: dict[tuple[int, int], np.ndarray] = {}
        free = [(i, j) for i in range(self.maze_map.shape[0]) for j in range(self.maze_map.shape[1])
                if self.maze_map[i, j] == 0]
        self.all_cells = free
        self.vertex_cells = [c for c in free if not self._is_hallway(c)]

    def _is_hallway(self, c) -> bool:
        m, (i, j) = self.maze_map, c
        vertical = m[i - 1, j] == 0 and m[i + 1, j] == 0 and m[i, j - 1] == 1 and m[i, j + 1] == 1
        horizontal = m[i, j - 1] == 0 and m[i, j + 1] == 0 and m[i - 1, j] == 1 and m[i + 1, j] == 1
        return vertical or horizontal

    def xy_to_ij(self, xy) -> tuple[int, int]:
        return (int((xy[1] + self.offset_y + 0.5 * self.unit) / self.unit),
                int((xy[0] + self.offset_x + 0.5 * self.unit) / self.unit))

    def ij_to_xy(self, ij) -> np.ndarray:
        return np.array([ij[1] * self.unit - self.offset_x, ij[0] * self.unit - self.offset_y])

    def bfs(self, goal_ij) -> np.ndarray:
        """Cell distances (in cells) to `goal_ij`; -1 for walls and unreachable cells."""
        goal_ij = tuple(int(v) for v in goal_ij)
        if goal_ij not in self._bfs:
            m = self.maze_map
            d = np.full(m.shape, -1, dtype=np.int64)
            d[goal_ij] = 0
            queue = deque([goal_ij])
            while queue:
                i, j = queue.popleft()
                for di, dj in NEIGHBOURS:
                    ni, nj = i + di, j + dj
                    if 0 <= ni < m.shape[0] and 0 <= nj < m.shape[1] and m[ni, nj] == 0 and d[ni, nj] == -1:
                        d[ni, nj] = d[i, j] + 1
                        queue.append((ni, nj))
            self._bfs[goal_ij] = d
        return self._bfs[goal_ij]

    def oracle_subgoal(self, xy, goal_xy) -> np.ndarray:
        """OGBench's `get_oracle_subgoal`: the centre of the neighbouring cell with the smallest BFS
        distance to the goal's cell (strictly smaller than the current one, first in NEIGHBOURS
        order), or the current cell's centre."""
        d = self.bfs(self.xy_to_ij(goal_xy))
        si, sj = self.xy_to_ij(xy)
        best = (si, sj)
        for di, dj in NEIGHBOURS:
            ni, nj = si + di, sj + dj
            if (0 <= ni < d.shape[0] and 0 <= nj < d.shape[1] and self.maze_map[ni, nj] == 0
                    and d[ni, nj] < d[best]):
                best = (ni, nj)
        return self.ij_to_xy(best)

    def waypoint(self, xy, goal_xy) -> np.ndarray:
        """Where the noiseless oracle heads: the goal itself once in the goal's cell, else the
        oracle subgoal (the next cell towards the goal)."""
        if self.xy_to_ij(xy) == self.xy_to_ij(goal_xy):
            return np.asarray(goal_xy, dtype=np.float64)
        return self.oracle_subgoal(xy, goal_xy)

    def waypoints(self, xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """`waypoint` for every position of arrays of shape [..., 2], in the dtype of `xy`."""
        out = np.empty_like(xy)
        for idx in np.ndindex(xy.shape[:-1]):
            out[idx] = self.waypoint(xy[idx], goal_xy[idx])
        return out

    def cell_distance(self, xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
        """BFS distance in cells between the cells of each row of `xy` and of `goal_xy`."""
        out = np.empty(len(xy), dtype=np.int64)
        for k, (p, g) in enumerate(zip(xy, goal_xy)):
            out[k] = self.bfs(self.xy_to_ij(g))[self.xy_to_ij(p)]
        return out


# ----------------------------------------------------------------------------- dataset generation
@dataclass
class GenSpec:
    maze: str
    kind: str              # navigate | stitch
    episodes: int          # training episodes; validation adds max(1, episodes // 10)
    max_episode_steps: int  # records per episode (OGBench: 1001, giant 2001, stitch 201)
    noise: float = 0.5     # Gaussian action noise (OGBench commands.sh: 0.5 for the point)
    seed: int = 0


def generate(spec: GenSpec, progress: Callable[[int], None] | None = None) -> tuple[dict, dict]:
    """Roll out the noisy BFS oracle like OGBench's generator; return (train, val) arrays with
    OGBench's keys: observations, actions, terminals, qpos, qvel (one record per step; the
    last record of an episode has terminals = 1)."""
    if spec.kind not in DATASET_TYPES:
        raise ValueError(f"dataset type must be one of {DATASET_TYPES}, got {spec.kind!r}")
    env = make_env(spec.maze, terminate_at_goal=False, max_episode_steps=spec.max_episode_steps)
    u = env.unwrapped
    geo = MazeGeometry(u)
    rng = np.random.default_rng(spec.seed)
    np.random.seed(spec.seed)  # ogbench's reset and set_goal draw their position noise from np.random
    env.action_space.seed(spec.seed)
    env.reset(seed=spec.seed)
    n_train, n_val = spec.episodes, max(1, spec.episodes // 10)  # OGBench: episodes // 10
    rec: dict[str, list] = {k: [] for k in ("observations", "actions", "terminals", "qpos", "qvel")}
    train_steps = 0
    for ep in range(n_train + n_val):
        init_ij = geo.all_cells[rng.integers(len(geo.all_cells))]
        if spec.kind == "navigate":
            goal_ij = geo.vertex_cells[rng.integers(len(geo.vertex_cells))]
        else:  # stitch: a goal exactly 4 cells away by BFS (the start itself if there is none)
            d = geo.bfs(init_ij)
            ring = [c for c in geo.all_cells if d[c] == 4]
            goal_ij = ring[rng.integers(len(ring))] if ring else init_ij
        ob, _ = env.reset(options=dict(task_info=dict(init_ij=init_ij, goal_ij=goal_ij)))
        done, steps = False, 0
        while not done:
            xy = u.get_xy()
            direction = geo.oracle_subgoal(xy, u.cur_goal_xy) - xy
            direction = direction / (np.linalg.norm(direction) + 1e-6)
            action = np.clip(direction + rng.normal(0.0, spec.noise, 2), -1, 1)
            next_ob, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            if info["success"] and spec.kind == "navigate":  # a new goal once this one is reached
                u.set_goal(geo.vertex_cells[rng.integers(len(geo.vertex_cells))])
            rec["observations"].append(ob)
            rec["actions"].append(action)
            rec["terminals"].append(done)
            rec["qpos"].append(info["prev_qpos"])
            rec["qvel"].append(info["prev_qvel"])
            ob = next_ob
            steps += 1
        if ep < n_train:
            train_steps += steps
        if progress:
            progress(steps)
    env.close()
    dtypes = {"terminals": bool}
    full = {k: np.asarray(v, dtype=dtypes.get(k, np.float32)) for k, v in rec.items()}
    return ({k: v[:train_steps] for k, v in full.items()}, {k: v[train_steps:] for k, v in full.items()})


def load(path: str | Path, maze: str, kind: str):
    """Read a generated dataset the way OGBench does: `make_env_and_datasets(...,
    dataset_path=...)` (no download); returns (train, val) dicts in the regular format."""
    import ogbench

    _, train, val = ogbench.make_env_and_datasets(dataset_name(maze, kind), dataset_path=str(path))
    return train, val


# ----------------------------------------------------------------------------- evaluation
@dataclass
class Rollouts:
    success: np.ndarray   # [S, E] 1.0 if the goal was reached
    steps: np.ndarray     # [S, E] steps taken


def evaluate_task(envs: list, task_id: int, seeds: int, policy: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  max_steps: int, seed: int) -> Rollouts:
    """Roll out every episode of one task at once: len(envs) = seeds * episodes environments in
    lockstep, one batched policy call per step. `policy(obs [S, E, d], goals [S, E, d]) ->
    actions [S, E, a]`; finished episodes are frozen (their actions ignored)."""
    n = len(envs)
    E = n // seeds
    np.random.seed(seed)  # ogbench's start/goal noise
    obs, goals = [], []
    for k, env in enumerate(envs):
        ob, info = env.reset(seed=seed * 10_000 + k, options=dict(task_id=task_id))
        obs.append(ob)
        goals.append(info["goal"])
    obs, goals = np.array(obs, dtype=np.float32), np.array(goals, dtype=np.float32)
    active = np.ones(n, dtype=bool)
    success = np.zeros(n)
    steps = np.zeros(n)
    for _ in range(max_steps):
        actions = policy(obs.reshape(seeds, E, -1), goals.reshape(seeds, E, -1)).reshape(n, -1)
        for k in np.flatnonzero(active):
            ob, _, terminated, _, info = envs[k].unwrapped.step(actions[k])
            obs[k] = ob
            steps[k] += 1
            if info["success"]:
                success[k] = 1.0
            if terminated:
                active[k] = False
        if not active.any():
            break
    return Rollouts(success.reshape(seeds, E), steps.reshape(seeds, E))


def oracle_path(maze: str, task_id: int, seed: int = 0, max_steps: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The noiseless oracle's path for one evaluation task: states s_0..s_L (s_L within the goal
    radius) and the goal observation. Steps remaining, L - i, is the true distance of s_i."""
    env = make_env(maze)
    u = env.unwrapped
    geo = MazeGeometry(u)
    np.random.seed(seed)
    ob, info = env.reset(seed=seed, options=dict(task_id=task_id))
    states = [ob]
    for _ in range(max_steps):
        xy = u.get_xy()
        direction = geo.waypoint(xy, u.cur_goal_xy) - xy
        ob, _, terminated, _, _ = u.step(np.clip(direction / (np.linalg.norm(direction) + 1e-6), -1, 1))
        states.append(ob)
        if terminated:
            break
    env.close()
    return np.asarray(states, dtype=np.float32), np.asarray(info["goal"], dtype=np.float32)
