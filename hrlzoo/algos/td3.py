"""TD3 (Fujimoto et al., 2018) in one readable file, CleanRL style; DDPG as a special case.

    agent = TD3(obs_dim, act_dim, action_low, action_high, lr=5e-4, seeds=[0, 1, 2])
    a = agent.act(obs, noise_std=0.1, rng=rng)        # obs [S, B, obs_dim] (or [B, d], [d] for S = 1)
    losses = agent.update(replay.sample(256, gen))    # one critic step (+ actor every d), all seeds

A seeds dimension (hrlzoo/nets/ensemble.py): S agents live in one set of [S, ...] weights and
train in one step; each seed's networks are drawn from its own generator (`seeds`), exactly as
`torch.nn.Linear` draws them after `torch.manual_seed(seed)`, and every loss is a sum over
seeds of per-seed means, so seed s learns from its own minibatch only (Adam is elementwise).
The shared replay buffer (hrlzoo/algos/replay.py) stores [S, capacity, ...] and samples
[S, B, ...]. With S = 1 this is the single agent HERON trains per seed.

The three TD3 ingredients, each a switch:
- clipped double-Q: `twin_q=True` learns Q1, Q2 and bootstraps from min(Q1', Q2');
- target-policy smoothing: `target_noise` (std, in units of the action half-range) clipped
  at `noise_clip`;
- delayed policy updates: the actor and all target networks move every `policy_delay`
  critic updates.
`twin_q=False, target_noise=0, policy_delay=2` is the DDPG of CleanRL's
`ddpg_continuous_action.py`, which HERON's official ClassicControl scripts build on
(single critic, actor + Polyak targets every 2nd step).

Termination vs truncation: the TD target is r + gamma * (1 - terminated) * Q'(s', a');
a time-limit truncation is stored with terminated = 0, so it bootstraps.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from hrlzoo.algos.replay import Batch
from hrlzoo.nets.ensemble import EnsembleMLP, ema_update


def seed_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per seed, in the state `torch.manual_seed(seed)` leaves the global one."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def as_members(x: torch.Tensor, members: int) -> tuple[torch.Tensor, tuple]:
    """[S, B, d] as it is; for S = 1 also [B, d] or [d]. Returns the [S, B, d] view and the
    leading shape to restore."""
    if x.dim() == 3:
        return x, x.shape[:2]
    if members != 1:
        raise ValueError(f"expected [{members}, B, d] inputs for {members} seeds, got {tuple(x.shape)}")
    return x.reshape(1, -1, x.shape[-1]), x.shape[:-1]


class Actor(nn.Module):
    """S deterministic policies mu(s) = tanh(f(s)) * scale + bias, scaled to the action box;
    f is CleanRL's 256x2 ReLU MLP (any width), initialised as torch.nn.Linear."""

    def __init__(self, obs_dim: int, act_dim: int, action_low, action_high, hidden: int = 256,
                 seeds: int = 1, generators: Sequence[torch.Generator] | None = None):
        super().__init__()
        self.net = EnsembleMLP(seeds, obs_dim, [hidden, hidden, act_dim], activation="relu", init="torch",
                               generators=generators)
        low = torch.as_tensor(np.asarray(action_low, dtype=np.float32))
        high = torch.as_tensor(np.asarray(action_high, dtype=np.float32))
        self.register_buffer("action_scale", (high - low) / 2.0)
        self.register_buffer("action_bias", (high + low) / 2.0)
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)
        self.seeds = seeds

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x, lead = as_members(obs, self.seeds)
        a = torch.tanh(self.net(x)) * self.action_scale + self.action_bias
        return a.reshape(*lead, a.shape[-1])


class Critics(nn.Module):
    """n_q Q-functions per seed, Q(s, a) an MLP on [s, a]: members = seeds x n_q (seed-major,
    so seed s's twins draw from seed s's generator, Q1 before Q2, as two nn.Linear critics)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int | Sequence[int] = 256, seeds: int = 1,
                 n_q: int = 2, generators: Sequence[torch.Generator] | None = None):
        super().__init__()
        hidden = [hidden, hidden] if isinstance(hidden, int) else list(hidden)  # an int: two layers of it
        self.net = EnsembleMLP(seeds * n_q, obs_dim + act_dim, [*hidden, 1], activation="relu",
                               init="torch", generators=generators)
        self.seeds, self.n_q = seeds, n_q

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """obs [S, B, obs_dim], action [S, B, act_dim] -> Q [S, n_q, B]."""
        x = torch.cat([obs, action], dim=-1)
        x = x.repeat_interleave(self.n_q, dim=0)  # [S * n_q, B, d]
        q = self.net(x).squeeze(-1)
        return q.reshape(self.seeds, self.n_q, -1)


def td_target(reward: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor,
              gamma: float) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * Q'(s', a'): no bootstrap past a true terminal state;
    a truncated (time-limit) transition has terminated = 0 and bootstraps."""
    return reward + gamma * (1.0 - terminated) * next_q


def polyak(online: nn.Module, target: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, in place."""
    ema_update(target, online, tau)


class TD3:
    def __init__(self, obs_dim: int, act_dim: int, action_low, action_high, *, hidden: int = 256,
                 lr: float = 3e-4, gamma: float = 0.99, tau: float = 0.005, policy_delay: int = 2,
                 target_noise: float = 0.2, noise_clip: float = 0.5, twin_q: bool = True,
                 device: torch.device | str = "cpu", seed: int | Sequence[int] = 0):
        """`seed`: one int (S = 1) or a list (S = len). Seed s's networks come from
        `torch.Generator().manual_seed(s)`, drawn in the order actor, actor target, critics,
        critic targets (the targets are then overwritten by copies), as the single-seed TD3
        drew them from the global RNG after `torch.manual_seed(s)`. The target-smoothing
        noise comes from one private generator per seed, seeded with that seed (so seed s's
        noise, like its weights and minibatches, does not depend on the seeds beside it; for
        S = 1 the draws are those of the former single generator)."""
        seeds = [int(seed)] if np.isscalar(seed) else [int(s) for s in seed]
        self.seeds, self.S = seeds, len(seeds)
        self.device = torch.device(device)
        self.gamma, self.tau, self.policy_delay = gamma, tau, policy_delay
        self.target_noise, self.noise_clip, self.twin_q = target_noise, noise_clip, twin_q
        n_q = 2 if twin_q else 1
        gens = seed_generators(seeds)
        self.generators = gens  # after __init__: each where its seed's weight draws left it

        mk_actor = lambda: Actor(obs_dim, act_dim, action_low, action_high, hidden, self.S, gens)
        mk_critics = lambda: Critics(obs_dim, act_dim, hidden, self.S, n_q, gens)
        self.actor, self.actor_target = mk_actor().to(self.device), mk_actor().to(self.device)
        self.critics, self.critics_target = mk_critics().to(self.device), mk_critics().to(self.device)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critics_target.load_state_dict(self.critics.state_dict())
        for m in (self.actor_target, self.critics_target):
            m.requires_grad_(False)

        # fused Adam: the same update rule in one kernel (about 20% faster for these small nets)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=lr, fused=True)
        self.noise_gens = [torch.Generator(device=self.device).manual_seed(s) for s in seeds]
        self.num_updates = 0

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs, noise_std: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
        """mu(obs) + N(0, (noise_std * action_scale)^2), clipped to the action box; numpy in
        and out. `obs`: [S, B, obs_dim], or for S = 1 one observation [obs_dim] (returns
        [act_dim]) or a batch [B, obs_dim]."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        a = self.actor(x).cpu().numpy()
        if noise_std > 0:
            if rng is None:
                raise ValueError("exploration noise needs an np.random.Generator")
            scale = self.actor.action_scale.cpu().numpy()
            a = a + rng.normal(0.0, 1.0, size=a.shape).astype(np.float32) * (noise_std * scale)
        return np.clip(a, self.actor.action_low.cpu().numpy(), self.actor.action_high.cpu().numpy())

    # ------------------------------------------------------------------ learning
    def update(self, batch: Batch) -> dict[str, float]:
        """One critic step on `batch` ([S, B, ...] fields, as the replay buffer samples them);
        every `policy_delay`-th call also one actor step and the Polyak update of all targets.
        Returns the losses as floats, means over seeds (`actor_loss` only on the steps that
        updated the actor)."""
        if not isinstance(batch.obs, torch.Tensor):
            batch = batch.to_torch(self.device)
        obs, action, reward, next_obs, terminated = batch
        self.num_updates += 1

        # --- critic: TD target from the target actor (+ clipped smoothing noise) and min target Q
        with torch.no_grad():
            next_action = self.actor_target(next_obs)
            if self.target_noise > 0:
                eps = torch.stack([torch.randn(next_action.shape[1:], generator=g, device=self.device)
                                   for g in self.noise_gens]).reshape(next_action.shape)
                eps = (eps * self.target_noise).clamp(-self.noise_clip, self.noise_clip)
                next_action = next_action + eps * self.actor_target.action_scale
                next_action = torch.max(torch.min(next_action, self.actor_target.action_high),
                                        self.actor_target.action_low)
            next_q = self.critics_target(next_obs, next_action).min(1).values      # [S, B]
            target = td_target(reward, terminated, next_q, self.gamma)

        qs = self.critics(obs, action)                                             # [S, n_q, B]
        # sum over seeds and critics of each critic's MSE (the single-seed loss is Q1 + Q2 MSE)
        critic_loss = (qs - target.unsqueeze(1)).pow(2).mean(-1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        out = {"critic_loss": critic_loss.item() / self.S, "q1": qs[:, 0].mean().item()}

        # --- delayed actor step (maximise Q1) and target networks
        if self.num_updates % self.policy_delay == 0:
            actor_loss = -self.critics(obs, self.actor(obs))[:, 0].mean(-1).sum()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            polyak(self.actor, self.actor_target, self.tau)
            polyak(self.critics, self.critics_target, self.tau)
            out["actor_loss"] = actor_loss.item() / self.S
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "actor_target": self.actor_target.state_dict(),
                "critics": self.critics.state_dict(), "critics_target": self.critics_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critics.load_state_dict(state["critics"])
        self.critics_target.load_state_dict(state["critics_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.num_updates = int(state["num_updates"])

    def actor_state(self, seed_index: int | None = None) -> dict:
        """The policy alone, on the CPU (what evaluation and export need): all seeds, or the
        one-seed policy of seeds[seed_index]."""
        state = {k: v.detach().cpu().clone() for k, v in self.actor.state_dict().items()}
        if seed_index is not None:
            for k in state:
                if k.startswith("net."):
                    state[k] = state[k][seed_index:seed_index + 1].clone()
        return state


def _from_linear_layout(state: dict) -> dict:
    """An actor state of the single-seed TD3 before the seeds dimension (nn.Linear layers
    net.{0,2,4}.weight [out, in]) in this layout ([1, in, out] weights, [1, 1, out] biases)."""
    out = {}
    for k, v in state.items():
        if k.startswith("net.") and k.endswith(".weight"):
            out["net." + k] = v.t().unsqueeze(0).contiguous()
        elif k.startswith("net.") and k.endswith(".bias"):
            out["net." + k] = v.view(1, 1, -1).clone()
        else:
            out[k] = v
    return out


def actor_from_state(state: dict, hidden: int | None = None) -> Actor:
    """Rebuild an `Actor` (on the CPU) from `TD3.actor_state()` (also from a checkpoint of the
    single-seed TD3 that preceded the seeds dimension)."""
    if "net.0.weight" in state:
        state = _from_linear_layout(state)
    w_in, w_out = state["net.net.0.weight"], state["net.net.4.weight"]
    seeds, obs_dim, hid = w_in.shape
    act_dim = w_out.shape[-1]
    actor = Actor(obs_dim, act_dim, state["action_low"].cpu().numpy(), state["action_high"].cpu().numpy(),
                  hidden or hid, seeds)
    actor.load_state_dict(state)
    return actor
