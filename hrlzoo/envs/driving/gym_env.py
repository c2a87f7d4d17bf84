"""The gymnasium API over the batched simulator: `DrivingEnv` (one scene) and
`DrivingVectorEnv` (a batch, stepped as one array op).

Action: a plan, `horizon` waypoints (x, y) in the ego frame, one every `dt` s, what the
WorldRFT planner outputs; the tracking controller (control.py) executes its first frame.
Observation: {"raster": (C, H, W) uint8, "ego_state": (4,) float32, "command": 0/1/2}.
Reward: metres driven along the road / 10, minus 10 on the frame the ego collides or leaves
the road (which ends the episode); the time limit is `max_frames`.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hrlzoo.envs.driving.config import COMMANDS, SimConfig
from hrlzoo.envs.driving.control import PlanTracker
from hrlzoo.envs.driving.raster import CHANNELS, to_rgb
from hrlzoo.envs.driving.sim import DrivingSim

CRASH_PENALTY = 10.0
PROGRESS_SCALE = 0.1  # reward per metre
EGO_STATE_LOW = np.array([0.0, -20.0, -10.0, -1.0], np.float32)  # speed, acc, yaw rate, steer
EGO_STATE_HIGH = np.array([60.0, 20.0, 10.0, 1.0], np.float32)
PLAN_LOW, PLAN_HIGH = (-10.0, -30.0), (150.0, 30.0)  # bounds of a waypoint (x, y), metres


def spaces_for(cfg: SimConfig) -> tuple[spaces.Dict, spaces.Box]:
    """(observation space, action space) of one scene."""
    rc = cfg.raster
    obs = spaces.Dict({
        "raster": spaces.Box(0, 1, (len(CHANNELS), rc.size, rc.size), np.uint8),
        "ego_state": spaces.Box(EGO_STATE_LOW, EGO_STATE_HIGH, (4,), np.float32),
        "command": spaces.Discrete(len(COMMANDS)),
    })
    low = np.tile(np.array(PLAN_LOW, np.float32), (cfg.horizon, 1))
    high = np.tile(np.array(PLAN_HIGH, np.float32), (cfg.horizon, 1))
    return obs, spaces.Box(low, high, dtype=np.float32)


def _advance(sim: DrivingSim, plans: np.ndarray):
    """Execute one frame of `plans` (N, T, 2); (reward, terminated) per scene."""
    x0, done0 = sim.x[:, 0].copy(), sim.done()
    sim.step(ego_controls=PlanTracker(sim, plans))
    ended = sim.done() & ~done0
    return PROGRESS_SCALE * (sim.x[:, 0] - x0) - CRASH_PENALTY * ended, sim.done()


class DrivingEnv(gym.Env):
    """One driving scene; `reset(options={"scene_seed": s})` picks the scene, else it is drawn
    from the env's generator."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, cfg: SimConfig | None = None, max_frames: int = 40, render_mode: str | None = None):
        self.cfg = cfg or SimConfig()
        self.max_frames = max_frames
        self.render_mode = render_mode
        self.observation_space, self.action_space = spaces_for(self.cfg)
        self.sim: DrivingSim | None = None

    def _obs(self) -> dict:
        o = self.sim.observe()
        return {"raster": o["raster"][0], "ego_state": o["ego_state"][0], "command": int(o["command"][0])}

    def _info(self) -> dict:
        s = self.sim
        return {"scene_seed": int(s.seeds[0]), "collision": bool(s.crashed[0]), "offroad": bool(s.offroad[0]),
                "scenario": int(s.scenario[0])}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        scene = (options or {}).get("scene_seed")
        scene = int(self.np_random.integers(2**31)) if scene is None else int(scene)
        self.sim = DrivingSim(self.cfg, [scene])
        self.frames = 0
        return self._obs(), self._info()

    def step(self, action):
        plan = np.asarray(action, dtype=np.float64).reshape(1, self.cfg.horizon, 2)
        reward, terminated = _advance(self.sim, plan)
        self.frames += 1
        truncated = self.frames >= self.max_frames and not terminated[0]
        return self._obs(), float(reward[0]), bool(terminated[0]), bool(truncated), self._info()

    def render(self):
        if self.render_mode == "rgb_array":
            return to_rgb(self.sim.render()[0])
        return None


class DrivingVectorEnv(VectorEnv):
    """`num_envs` scenes stepped together (one DrivingSim). Autoreset NEXT_STEP: the step after
    a scene ends restarts it (reward 0, not terminated) with a new scene seed."""

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, cfg: SimConfig | None = None, max_frames: int = 40):
        self.cfg = cfg or SimConfig()
        self.num_envs = num_envs
        self.max_frames = max_frames
        self.single_observation_space, self.single_action_space = spaces_for(self.cfg)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rng = np.random.default_rng()
        self.sim: DrivingSim | None = None

    def _obs(self) -> dict:
        return self.sim.observe()

    def _new_seeds(self, n: int) -> np.ndarray:
        return self._rng.integers(2**31, size=n)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        scenes = (options or {}).get("scene_seeds")
        self.sim = DrivingSim(self.cfg, self._new_seeds(self.num_envs) if scenes is None else scenes)
        self.frames = np.zeros(self.num_envs, dtype=np.int64)
        self._restart = np.zeros(self.num_envs, dtype=bool)
        return self._obs(), {"scene_seed": self.sim.seeds.copy()}

    def step(self, actions):
        plans = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, self.cfg.horizon, 2)
        reward, terminated = _advance(self.sim, plans)
        self.frames += 1
        truncated = (self.frames >= self.max_frames) & ~terminated
        restart = self._restart
        if restart.any():
            self.sim.reset_scenes(restart, self._new_seeds(int(restart.sum())))
            self.frames[restart] = 0
            reward, terminated, truncated = np.where(restart, 0.0, reward), terminated & ~restart, truncated & ~restart
        self._restart = terminated | truncated
        info = {"scene_seed": self.sim.seeds.copy(), "collision": self.sim.crashed.copy(),
                "offroad": self.sim.offroad.copy()}
        return self._obs(), reward.astype(np.float64), terminated, truncated, info
