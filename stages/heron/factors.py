"""HERON's reward factors: a gymnasium wrapper that puts the factor vector z_t in `info`.

Each task's factors follow the official code (abukharin3/HERON, ClassicControl):

Pendulum-v1 (patched gym `PendulumEnv.get_reward_info(u)`), computed from the state BEFORE
the step, exactly the terms of the env's own cost:
    z = (angle_normalize(theta)^2, theta_dot^2, clip(u, -2, 2)^2)      all lower-is-better
    env reward = -(z_1 + 0.1 z_2 + 0.001 z_3)

MountainCarContinuous-v0 (rm_mountain.py: `reward_info = [dones, actions[:, 0] ** 2]`):
    z = (goal reached this step (0/1), clip(a, -1, 1)^2)   goal higher-better, energy lower-better
    env reward = 100 z_1 - 0.1 a^2
Deviation: the official code uses the vector env's `done`, which in the old gym also fires when
the 999-step time limit truncates an episode (so a failed episode's last step counts as a
"goal"); we use `terminated` only, i.e. the car really reached the flag. The task knob
`goal_on_timeout: true` restores the official behaviour (goal = terminated or truncated).

`factor_scale` (the scale-invariance experiment) multiplies each factor before anything sees
it: `info["factors"]` is the scaled vector that labels, reward-model inputs and the linear
baselines use; `info["factors_unscaled"]` keeps the raw values for evaluation. The env's
reward (the true reward) is never changed.
"""

from __future__ import annotations

from typing import Sequence

import gymnasium as gym
import numpy as np

# the factor names of each supported environment, in the order the wrapper emits them
FACTOR_NAMES: dict[str, tuple[str, ...]] = {
    "Pendulum-v1": ("angle", "velocity", "torque"),
    "MountainCarContinuous-v0": ("goal", "energy"),
}


def _angle_normalize(x: float) -> float:
    return ((x + np.pi) % (2 * np.pi)) - np.pi


def _pendulum_factors(env: gym.Env, action, goal: bool, state_before) -> np.ndarray:
    th, thdot = state_before
    u = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0],
                      -env.unwrapped.max_torque, env.unwrapped.max_torque))
    return np.array([_angle_normalize(th) ** 2, thdot ** 2, u ** 2], dtype=np.float64)


def _mountaincar_factors(env: gym.Env, action, goal: bool, state_before) -> np.ndarray:
    u = float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0],
                      env.unwrapped.min_action, env.unwrapped.max_action))
    return np.array([float(goal), u ** 2], dtype=np.float64)


_FACTOR_FNS = {"Pendulum-v1": _pendulum_factors, "MountainCarContinuous-v0": _mountaincar_factors}


class FactorWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds `info["factors"]` (scaled, float64 [n]) and `info["factors_unscaled"]` to `step`.

    The observation, action space and reward are the wrapped env's own."""

    def __init__(self, env: gym.Env, scale: Sequence[float] | None = None, goal_on_timeout: bool = False):
        # recorded so that gymnasium can rebuild the wrapped env from its spec (check_env does)
        gym.utils.RecordConstructorArgs.__init__(
            self, scale=None if scale is None else [float(c) for c in scale], goal_on_timeout=goal_on_timeout)
        self.goal_on_timeout = goal_on_timeout
        gym.Wrapper.__init__(self, env)
        env_id = env.spec.id if env.spec is not None else None
        if env_id not in _FACTOR_FNS:
            raise ValueError(f"no reward factors defined for {env_id!r} (known: {list(_FACTOR_FNS)})")
        self.factor_names = FACTOR_NAMES[env_id]
        self._factors = _FACTOR_FNS[env_id]
        n = len(self.factor_names)
        self.scale = np.ones(n) if scale is None else np.asarray(scale, dtype=np.float64)
        if self.scale.shape != (n,):
            raise ValueError(f"scale: expected {n} entries for {env_id}, got {self.scale.shape}")

    def step(self, action):
        state_before = np.array(self.env.unwrapped.state, dtype=np.float64)  # copy: step replaces it
        obs, reward, terminated, truncated, info = self.env.step(action)
        goal = terminated or (self.goal_on_timeout and truncated)
        z = self._factors(self.env, action, goal, state_before)
        info = dict(info)
        info["factors_unscaled"] = z
        info["factors"] = z * self.scale
        return obs, reward, terminated, truncated, info


def make_env(task, seed: int | None = None) -> FactorWrapper:
    """`gym.make(task.env_id)` (with its standard TimeLimit) wrapped by `FactorWrapper`.

    `task` is a `TaskParams` (env_id, factors, factor_scale). With `seed`, the action and
    observation spaces are seeded; the first `env.reset(seed=...)` is the caller's."""
    env = gym.make(task.env_id)
    expected = FACTOR_NAMES.get(task.env_id)
    if expected is not None and tuple(task.factors) != expected:
        raise ValueError(f"factors of {task.env_id}: expected {list(expected)}, got {list(task.factors)}")
    env = FactorWrapper(env, task.factor_scale, goal_on_timeout=task.goal_on_timeout)
    if seed is not None:
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
    return env
