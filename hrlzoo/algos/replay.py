"""Replay buffers for off-policy RL (TD3, SAC), on torch tensors, with a members (seeds) dimension.

Every field is stored as one preallocated tensor [members, capacity, ...]: member m is seed
m of a batched run (hrlzoo/nets/ensemble.py), so S seeds share one buffer object and one
`sample` call, yet never see each other's data. When full, the oldest entries are overwritten
(ring buffer). `terminated` is the true end of an MDP episode (no bootstrap); a time-limit
truncation is NOT stored as terminal, so the learner bootstraps through it.

    rb = ReplayBuffer(capacity=10_000, obs_dim=3, act_dim=1, members=5)
    rb.add(obs, action, reward, next_obs, terminated)     # each [5, n, ...] (n envs per seed),
                                                          # or anything that reshapes to it
    rb.extend(obs, action, reward, next_obs, terminated)  # the same, for a pre-filled buffer
    batch = rb.sample(256, gen)                           # Batch of [5, 256, ...] tensors

`gen` is a `torch.Generator` (the index draw is one torch.randint), a list of one per member
(seed s of a batched run then samples as it would alone), or a `numpy.random.Generator`, whose `integers(0, size, (members, batch))` draw is the one the
numpy buffer this replaced made (HERON's results did not move when TD3 changed buffers).

`HerReplayBuffer` adds hindsight goal relabelling (Andrychowicz et al., 2017) with SB3's
`HerReplayBuffer` semantics, strategy `future`: see its docstring.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A minibatch of transitions, each field [members, B, ...] (reward, terminated: [members, B])."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor      # the real next observation (never a reset obs)
    terminated: torch.Tensor    # 1.0 where the episode truly ended (no bootstrap)

    def to_torch(self, device=None) -> "Batch":
        return Batch(*(torch.as_tensor(x, dtype=torch.float32, device=device) for x in self))


class ReplayBuffer:
    """Uniform replay of (obs, action, reward, next_obs, terminated), [members, capacity, ...]."""

    fields = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, members: int = 1, device="cpu",
                 dtype=torch.float32):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity, self.members = int(capacity), int(members)
        self.device, self.dtype = torch.device(device), dtype
        shapes = {"obs": (obs_dim,), "action": (act_dim,), "reward": (), "next_obs": (obs_dim,),
                  "terminated": ()}
        self.shapes = dict(shapes, **self._extra_shapes())
        for name, shape in self.shapes.items():
            setattr(self, name, torch.zeros(members, capacity, *shape, dtype=dtype, device=self.device))
        self.pos = 0      # where the next transition goes
        self.size = 0     # how many slots hold data (per member)
        self.added = 0    # transitions added per member since construction

    def _extra_shapes(self) -> dict:
        return {}

    def __len__(self) -> int:
        return self.size

    def _as(self, x, name: str) -> torch.Tensor:
        """`x` as [members, n, *shape] of the buffer's dtype (n inferred)."""
        t = torch.as_tensor(x, device=self.device)
        if t.dtype == torch.bool:
            t = t.to(self.dtype)
        return t.to(self.dtype).reshape(self.members, -1, *self.shapes[name])

    def _slots(self, n: int) -> torch.Tensor:
        if n > self.capacity:
            raise ValueError(f"cannot add {n} transitions at once to a buffer of capacity {self.capacity}")
        return (torch.arange(n, device=self.device) + self.pos) % self.capacity

    def add(self, obs, action, reward, next_obs, terminated, **extra) -> torch.Tensor:
        """Store n transitions per member (inputs reshape to [members, n, ...]); returns the
        slots written, [n]."""
        values = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
                  "terminated": terminated, **extra}
        tensors = {k: self._as(v, k) for k, v in values.items()}
        n = tensors["reward"].shape[1]
        if n == 1:  # the common one-env case: plain indexing is several times cheaper
            i = self.pos
            for k, v in tensors.items():
                getattr(self, k)[:, i] = v[:, 0]
            slots = torch.tensor([i], device=self.device)
        else:
            slots = self._slots(n)
            for k, v in tensors.items():
                getattr(self, k)[:, slots] = v
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)
        self.added += n
        return slots

    def extend(self, obs, action, reward, next_obs, terminated, **extra) -> None:
        """Pre-fill: add many transitions per member at once (chunks of at most `capacity`)."""
        values = {"obs": obs, "action": action, "reward": reward, "next_obs": next_obs,
                  "terminated": terminated, **extra}
        tensors = {k: self._as(v, k) for k, v in values.items()}
        n = tensors["reward"].shape[1]
        for start in range(0, n, self.capacity):
            chunk = {k: v[:, start:start + self.capacity] for k, v in tensors.items()}
            self.add(**chunk)

    def sample_indices(self, batch: int, gen) -> torch.Tensor:
        """[members, batch] slot indices, uniform with replacement over the stored ones. `gen`:
        a numpy Generator, a torch Generator, or one torch Generator per member (then member
        m's draws do not depend on the other members)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if isinstance(gen, np.random.Generator):
            idx = gen.integers(0, self.size, size=(self.members, batch))
            return torch.as_tensor(idx, device=self.device)
        if isinstance(gen, (list, tuple)):
            return torch.stack([torch.randint(0, self.size, (batch,), generator=g, device=self.device)
                                for g in gen])
        return torch.randint(0, self.size, (self.members, batch), generator=gen, device=self.device)

    def gather(self, name: str, idx: torch.Tensor) -> torch.Tensor:
        """field[m, idx[m]] for every member: [members, batch, ...]."""
        rows = torch.arange(self.members, device=self.device).unsqueeze(1)
        return getattr(self, name)[rows, idx]

    def sample(self, batch: int, gen) -> Batch:
        idx = self.sample_indices(batch, gen)
        return Batch(*(self.gather(k, idx) for k in self.fields))


class HerReplayBuffer(ReplayBuffer):
    """Replay with hindsight goal relabelling, strategy `future`, as SB3's HerReplayBuffer.

    Goal-conditioned transitions store, besides obs/action/reward/next_obs/terminated (obs
    WITHOUT the goal), `goal` (the desired goal the agent acted for) and `achieved` (the goal
    achieved at next_obs). Each `add` call writes one step of `n_envs` envs per member; the
    stream of env k is slots k, k + n_envs, k + 2 n_envs, ... (absolute positions, so the ring
    wrap does not break an episode), and `done = terminated | truncated` closes episodes.

    `sample(B, gen)` (SB3 `HerReplayBuffer.sample` with `n_sampled_goal = k`):
    - a share her_ratio = 1 - 1/(k + 1) of the batch is relabelled (SB3 splits the batch the
      same way: the first B - int(her_ratio B) real, the rest virtual);
    - `future`: the new goal is the `achieved` goal of a transition drawn uniformly from the
      current one to the last stored one of the same episode (SB3: `randint(current index,
      episode end)` on next_achieved_goal), so the transition itself can supply it;
    - the reward is recomputed as `compute_reward(achieved, new_goal)` (a batched torch
      callable, the env's); `terminated` is kept as stored (SB3 keeps `dones`).
    The returned obs/next_obs are [obs, goal] concatenated, the policy's input.

    Unfinished episodes relabel from what is stored so far (SB3 does the same)."""

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, goal_dim: int,
                 compute_reward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], n_envs: int = 1,
                 members: int = 1, k: int = 4, device="cpu", dtype=torch.float32):
        self.goal_dim, self.n_envs, self.k = goal_dim, n_envs, k
        self.compute_reward = compute_reward
        super().__init__(capacity, obs_dim, act_dim, members, device, dtype)
        if capacity % n_envs:
            raise ValueError(f"capacity {capacity} must be a multiple of n_envs {n_envs}")
        self.her_ratio = 1.0 - 1.0 / (k + 1)
        # per slot: absolute position, and the absolute position of its episode's last
        # transition (-1 while the episode runs); per (member, env) stream: episode start
        self.abs_pos = torch.full((capacity,), -1, dtype=torch.long, device=self.device)
        self.ep_last = torch.full((members, capacity), -1, dtype=torch.long, device=self.device)
        self.ep_start = torch.arange(n_envs, device=self.device).repeat(members, 1)  # stream e starts at e

    def _extra_shapes(self) -> dict:
        return {"goal": (self.goal_dim,), "achieved": (self.goal_dim,)}

    def add(self, obs, action, reward, next_obs, terminated, goal=None, achieved=None, done=None):
        """One step of n_envs envs per member; `done` [members, n_envs] (terminated | truncated)
        closes the episodes that ended with this step (default: `terminated`)."""
        if goal is None or achieved is None:
            raise ValueError("HerReplayBuffer.add needs goal= and achieved=")
        start_abs = self.added
        slots = super().add(obs, action, reward, next_obs, terminated, goal=goal, achieved=achieved)
        n = slots.numel()
        if n != self.n_envs:
            raise ValueError(f"expected one step of {self.n_envs} envs per add, got {n} transitions")
        self.abs_pos[slots] = torch.arange(start_abs, start_abs + n, device=self.device)
        done = self._as(terminated if done is None else done, "reward").bool()  # [members, n_envs]
        self.ep_last[:, slots] = -1
        for m, e in done.nonzero().tolist():
            first = max(int(self.ep_start[m, e]), start_abs + e - self.capacity + self.n_envs)
            positions = torch.arange(first, start_abs + e + 1, self.n_envs, device=self.device)
            self.ep_last[m, positions % self.capacity] = start_abs + e
            self.ep_start[m, e] = start_abs + e + self.n_envs
        return slots

    def extend(self, *args, **kwargs):
        raise NotImplementedError("HerReplayBuffer: pre-fill step by step with add(...) (episodes need streams)")

    def sample(self, batch: int, gen) -> Batch:
        idx = self.sample_indices(batch, gen)                         # [members, batch]
        n_virtual = int(self.her_ratio * batch)
        goal = self.gather("goal", idx)
        reward = self.gather("reward", idx)
        if n_virtual:
            vidx = idx[:, batch - n_virtual:]
            cur = self.abs_pos[vidx]                                  # absolute positions
            last = torch.gather(self.ep_last, 1, vidx)
            newest = self.added - self.n_envs + (cur % self.n_envs)  # newest stored step of the stream
            last = torch.where(last < 0, newest, last)
            steps = (last - cur) // self.n_envs                       # future transitions after cur
            if isinstance(gen, np.random.Generator):
                u = torch.as_tensor(gen.random(size=tuple(steps.shape)), device=self.device)
            elif isinstance(gen, (list, tuple)):
                u = torch.stack([torch.rand(steps.shape[1:], generator=g, device=self.device, dtype=torch.float64)
                                 for g in gen])
            else:
                u = torch.rand(steps.shape, generator=gen, device=self.device, dtype=torch.float64)
            offset = (u * (steps + 1)).long().clamp(max=steps)        # uniform in 0..steps
            fidx = (cur + offset * self.n_envs) % self.capacity
            new_goal = self.gather("achieved", fidx)
            achieved = self.gather("achieved", vidx)
            goal = torch.cat([goal[:, :batch - n_virtual], new_goal], 1)
            reward = torch.cat([reward[:, :batch - n_virtual],
                                self.compute_reward(achieved, new_goal).to(self.dtype)], 1)
        obs = torch.cat([self.gather("obs", idx), goal], -1)
        next_obs = torch.cat([self.gather("next_obs", idx), goal], -1)
        return Batch(obs, self.gather("action", idx), reward, next_obs, self.gather("terminated", idx))
