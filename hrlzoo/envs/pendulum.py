"""`TorchPendulum`: gymnasium's Pendulum-v1 for N worlds at once, in torch.

The dynamics, reward, bounds, initial-state distribution and 200-step time limit are those
of `gymnasium/envs/classic_control/pendulum.py` (gymnasium 1.4) with its registered
`max_episode_steps=200`, line for line:

    u       = clip(action, -2, 2)
    cost    = angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2,   reward = -cost
    thdot' = clip(thdot + (3 g / (2 l) sin th + 3 / (m l^2) u) dt, -8, 8)
    th'     = th + thdot' dt                       (g = 10, m = l = 1, dt = 0.05)
    obs     = [cos th, sin th, thdot] (float32);   initial (th, thdot) ~ U([-pi, -1], [pi, 1])

World i's initial states are drawn from its own PCG64 (`np_random[i]`, seeded as gymnasium
seeds an env), with the same `uniform(low, high)` call, so world i seeded with s starts every
episode exactly where `gymnasium.make("Pendulum-v1").reset(seed=s)` and its later resets
start. The state is kept in `dtype`: float64 (the default, as gymnasium's numpy state, with
the action terms in float32 where numpy keeps them there) reproduces gymnasium's trajectories
step by step to ~1e-12 (tests/test_batched_envs.py checks 1e-5 over three episodes); float32
drifts by ~1e-4 over an episode. The env's cost is small beside any policy's either way
(millions of world-steps/s on one core).
"""

from __future__ import annotations

import math

import numpy as np

from hrlzoo.envs.batched import BatchedEnv


class TorchPendulum(BatchedEnv):
    max_speed = 8.0
    max_torque = 2.0
    dt = 0.05
    g = 10.0
    m = 1.0
    l = 1.0

    def __init__(self, num_envs: int = 1, device="cpu", dtype=None, autoreset: bool = True,
                 max_episode_steps: int = 200):
        import torch
        from gymnasium import spaces

        super().__init__(num_envs, max_episode_steps, device, autoreset)
        self.dtype = dtype or torch.float64
        high = np.array([1.0, 1.0, self.max_speed], dtype=np.float32)
        self.single_observation_space = spaces.Box(low=-high, high=high, dtype=np.float32)
        self.single_action_space = spaces.Box(low=-self.max_torque, high=self.max_torque, shape=(1,),
                                              dtype=np.float32)
        self.th = torch.zeros(num_envs, dtype=self.dtype, device=self.device)
        self.thdot = torch.zeros(num_envs, dtype=self.dtype, device=self.device)

    def _reset_worlds(self, idx):
        import torch

        high = np.array([math.pi, 1.0])  # gymnasium's DEFAULT_X, DEFAULT_Y
        states = np.stack([self.np_random[i].uniform(low=-high, high=high) for i in idx])
        states = torch.as_tensor(states, dtype=self.dtype, device=self.device)
        index = torch.as_tensor(idx, device=self.device)
        self.th[index] = states[:, 0]
        self.thdot[index] = states[:, 1]

    def _step_worlds(self, action):
        import torch

        # gymnasium clips the float32 action; numpy keeps the products of u with a Python float
        # in float32 (NEP 50) and promotes them to float64 when they meet the float64 state
        u = action.reshape(self.num_envs, -1)[:, 0].to(torch.float32).clamp(-self.max_torque, self.max_torque)
        th, thdot = self.th, self.thdot
        th_norm = torch.remainder(th + math.pi, 2 * math.pi) - math.pi  # angle_normalize
        costs = th_norm ** 2 + 0.1 * thdot ** 2 + (0.001 * (u ** 2)).to(self.dtype)
        torque = (3.0 / (self.m * self.l ** 2) * u).to(self.dtype)
        newthdot = thdot + (3 * self.g / (2 * self.l) * torch.sin(th) + torque) * self.dt
        newthdot = newthdot.clamp(-self.max_speed, self.max_speed)
        self.th = th + newthdot * self.dt
        self.thdot = newthdot
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return -costs, terminated

    def _observe(self):
        import torch

        return torch.stack([torch.cos(self.th), torch.sin(self.th), self.thdot], dim=-1).to(torch.float32)
