"""The user simulator as a batched environment of hrlzoo's convention (hrlzoo/envs/batched.py),
and so as a `gymnasium.Env` / `gymnasium.vector.VectorEnv` (DESIGN: simulators offer both faces).

    env = RecEnv(p, num_envs=64)         # 64 users; one episode = one user's whole lifetime
    obs, _ = env.reset(seed=0)           # [N, 3K + 10]: the History's long-term and session features
    obs, r, terminated, truncated, info = env.step(items)   # items [N] ints; r = click + novelty + diversity terms

This is the flat recommendation problem (what `flat` learns in stages/novelty_rec/agent.py);
the stages drive `sim.UserSim` directly because the hierarchy needs the session boundaries.
World i's user and clicks are drawn from its own generator (`np_random[i]`), so a world does not
depend on the others. Every episode has the same length, so the worlds live in lockstep and
are always reset together."""

from __future__ import annotations

import numpy as np

from hrlzoo.envs.batched import BatchedEnv
from stages.novelty_rec import common, sim
from stages.novelty_rec.params import NoveltyRecParams, sizes


class RecEnv(BatchedEnv):
    def __init__(self, p: NoveltyRecParams, num_envs: int = 1, device="cpu", autoreset: bool = True):
        from gymnasium import spaces

        s = sizes(p)
        self.p, self.s = p, s
        self.sim = common.make_sim(p, device)
        d_long, d_sess = sim.History.dims(s.topics)
        self.single_observation_space = spaces.Box(0.0, 1.0, (d_long + d_sess,), np.float32)
        self.single_action_space = spaces.Discrete(s.items)
        super().__init__(num_envs, None, device, autoreset)

    def _reset_worlds(self, idx) -> None:
        import torch

        if sorted(idx) != list(range(self.num_envs)):
            raise RuntimeError("RecEnv: every lifetime has the same length, the worlds are reset together")
        users = sim.Users.cat([sim.draw_users(self.p.sim, self.s.topics, 1, self.np_random[i]) for i in idx])
        groups = [(torch.Generator().manual_seed(int(self.np_random[i].integers(2**62))), 1) for i in idx]
        self.sim.reset(users, groups)
        self.sim.start_session()

    def _observe(self):
        import torch

        h = self.sim.h
        return torch.cat([h.long_features(), h.session_features()], 1).float().clamp(0.0, 1.0)

    def _step_worlds(self, action):
        import torch

        r = self.p.reward
        out = self.sim.step(torch.as_tensor(action).reshape(self.num_envs).long())
        reward = out["click"].float() + r.novelty * out["novel"].float() + r.diversity * out["diversity"]
        done = False
        if self.sim.h.t == self.s.session_len:
            self.sim.end_session()
            done = self.sim.h.session == self.s.sessions
            if not done:
                self.sim.start_session()
        return reward, torch.full((self.num_envs,), done, dtype=torch.bool, device=self.device)

