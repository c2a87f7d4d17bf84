"""A preallocated, uniform-sampling replay buffer for off-policy RL (numpy, no torch).

Transitions are stored as flat arrays of fixed capacity; when full, the oldest entries are
overwritten (ring buffer). `terminated` is the true end of an MDP episode (no bootstrap);
a time-limit truncation is NOT stored as terminal, so the learner bootstraps through it.

    rb = ReplayBuffer(capacity=10_000, obs_dim=3, act_dim=1)
    rb.add(obs, action, reward, next_obs, terminated)
    batch = rb.sample(256, rng)          # rng: np.random.Generator owned by the caller
    tb = batch.to_torch(device)          # the same fields as float32 torch tensors
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """A minibatch of transitions; fields are numpy arrays (or tensors after `to_torch`)."""

    obs: np.ndarray          # [B, obs_dim]
    action: np.ndarray       # [B, act_dim]
    reward: np.ndarray       # [B]
    next_obs: np.ndarray     # [B, obs_dim]  the real next observation (never a reset obs)
    terminated: np.ndarray   # [B]  1.0 where the episode truly ended (no bootstrap)

    def to_torch(self, device=None) -> "Batch":
        import torch

        return Batch(*(torch.as_tensor(x, dtype=torch.float32, device=device) for x in self))


class ReplayBuffer:
    def __init__(self, capacity: int, obs_dim: int, act_dim: int, dtype=np.float32):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), dtype=dtype)
        self.action = np.zeros((capacity, act_dim), dtype=dtype)
        self.reward = np.zeros((capacity,), dtype=dtype)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=dtype)
        self.terminated = np.zeros((capacity,), dtype=dtype)
        self.pos = 0      # where the next transition goes
        self.size = 0     # how many slots hold data

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        i = self.pos
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """`batch` transitions drawn uniformly with replacement from the stored ones."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch)
        return Batch(self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx],
                     self.terminated[idx])
