"""SAC (Haarnoja et al., 2018) in one readable file, with a seeds dimension.

    cfg = SACConfig(total_timesteps=20_000, learning_rate=1e-3)
    result = train(cfg, TorchPendulum(num_envs=5), seeds=[0, 1, 2, 3, 4])   # 5 agents at once
    agent.update(replay.sample(256, gen))     # or drive it yourself, e.g. with HerReplayBuffer

Twin critics with target networks (Polyak `tau`), a tanh-squashed Gaussian policy, automatic
entropy tuning towards target entropy -dim(A). The update is Stable-Baselines3's
`SAC.train`, step for step (CleanRL's `sac_continuous_action.py` is the same algorithm; where
the two differ we follow SB3, so that rl-baselines3-zoo's hyperparameters mean the same):
  1. a~pi(.|s), log pi(a|s) for the minibatch (kept for the actor step);
  2. alpha loss -(log_alpha * (log pi + target_entropy).detach()).mean(), one Adam step, the
     alpha used in this update being exp(log_alpha) from before that step (SB3; CleanRL
     writes -(exp(log_alpha) * ...) instead);
  3. target y = r + gamma (1 - terminated) (min_j Q'_j(s', a') - alpha log pi(a'|s')), a'~pi(.|s');
     critic loss 0.5 * sum_j MSE(Q_j(s, a), y) (SB3; CleanRL sums the MSEs without 0.5);
  4. actor loss mean(alpha log pi(a|s) - min_j Q_j(s, a)) through the just-updated critics;
  5. Polyak update of the critic targets every `target_update_interval` steps (CleanRL: every
     `target_network_frequency` steps, 1).
Policy: log_std clamped to [-20, 2], log-prob corrected by sum log(1 - tanh(u)^2 + 1e-6) (SB3's
`SquashedDiagGaussianDistribution`, TanhBijector epsilon); actions live in [-1, 1] inside the
agent and the replay buffer (SB3 stores scaled actions) and are mapped to the env's box when
sent. Networks: 256x2 ReLU MLPs initialised as torch.nn.Linear (SB3's default for SAC).
Exploration: uniform random actions for the first `learning_starts` steps, then the
stochastic policy; updates start once more than `learning_starts` steps were taken (SB3).

Seeds dimension: as in hrlzoo/algos/td3.py. Members of the actor are seeds, of the critics
seeds x 2 (seed-major); every loss is a sum over seeds of per-seed means; log_alpha is [S].
The replay buffer is hrlzoo.algos.replay.ReplayBuffer ([S, capacity, ...]), which accepts
pre-filled transitions (`extend`), or its `HerReplayBuffer` for goal-conditioned tasks.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from hrlzoo.algos.replay import Batch, HerReplayBuffer, ReplayBuffer
from hrlzoo.algos.td3 import Critics, seed_generators, td_target
from hrlzoo.nets.ensemble import EnsembleMLP, ema_update, randn_members

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0   # SB3 sac/policies.py
TANH_EPS = 1e-6                         # SB3 TanhBijector.epsilon


@dataclass
class SACConfig:
    """Hyper-parameters; defaults are SB3's SAC defaults."""

    total_timesteps: int = 1_000_000
    """Env steps per seed."""
    num_envs: int = 1
    """Worlds per seed."""
    learning_rate: float = 3e-4
    """Adam learning rate of actor, critics and alpha."""
    buffer_size: int = 1_000_000
    """Replay capacity per seed (transitions)."""
    learning_starts: int = 100
    """Uniform random actions for this many env steps; updates begin after it."""
    batch_size: int = 256
    """Minibatch per seed."""
    tau: float = 0.005
    """Polyak rate of the critic targets."""
    gamma: float = 0.99
    """Discount."""
    gradient_steps: int = 1
    """Gradient steps per env step (SB3 train_freq = 1 step)."""
    target_update_interval: int = 1
    """Gradient steps between target updates."""
    ent_coef_init: float = 1.0
    """Initial alpha (SB3 ent_coef='auto' starts at 1.0)."""
    autotune: bool = True
    """Learn alpha towards `target_entropy`; False keeps alpha = ent_coef_init."""
    target_entropy: float | None = None
    """None: -dim(A) (SB3 'auto', CleanRL)."""
    hidden: Sequence[int] = (256, 256)
    """Hidden layers of the actor and of each critic (SB3 net_arch [256, 256])."""
    her_k: int = 0
    """Hindsight relabelling: goals relabelled per real transition (SB3 HER n_sampled_goal,
    strategy future); 0: none. Needs a goal-conditioned env (see `train`)."""


class SquashedGaussianActor(nn.Module):
    """S policies: a = tanh(u), u ~ N(mu(s), std(s)^2); mu and log_std from one MLP."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int], seeds: int, generators=None):
        super().__init__()
        self.net = EnsembleMLP(seeds, obs_dim, [*hidden, 2 * act_dim], activation="relu", init="torch",
                               generators=generators)
        self.act_dim = act_dim

    def forward(self, obs: torch.Tensor, deterministic: bool = False, generators=None):
        """obs [S, B, d] -> (a in [-1, 1]^A [S, B, A], log pi(a|s) [S, B]); the noise of seed s
        from generators[s]."""
        mu, log_std = self.net(obs).split(self.act_dim, dim=-1)
        log_std = log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)
        std = log_std.exp()
        u = mu if deterministic else mu + std * randn_members(generators, mu.shape[1:], mu.device)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - torch.log(1.0 - a ** 2 + TANH_EPS).sum(-1)
        return a, logp


class SAC:
    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig, seeds: Sequence[int], device="cpu"):
        from hrlzoo.nets.optim import Adam

        self.cfg, self.seeds, self.S = cfg, list(seeds), len(seeds)
        self.device = torch.device(device)
        gens = seed_generators(self.seeds)
        self.actor = SquashedGaussianActor(obs_dim, act_dim, cfg.hidden, self.S, gens).to(self.device)
        mk = lambda: Critics(obs_dim, act_dim, cfg.hidden, self.S, 2, gens).to(self.device)
        self.critics, self.critics_target = mk(), mk()
        self.critics_target.load_state_dict(self.critics.state_dict())
        self.critics_target.requires_grad_(False)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.log_alpha = torch.full((self.S,), math.log(cfg.ent_coef_init), device=self.device,
                                    requires_grad=cfg.autotune)
        self.actor_opt = Adam(self.actor.parameters(), lr=cfg.learning_rate)
        self.critic_opt = Adam(self.critics.parameters(), lr=cfg.learning_rate)
        self.alpha_opt = Adam([self.log_alpha], lr=cfg.learning_rate) if cfg.autotune else None
        # seed s's sampling (policy noise, minibatches) from its own generator, continuing the
        # one its weights were drawn from: a seed learns as it would alone
        self.gens = gens
        self.num_updates = 0

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """obs [S, B, d] -> actions in [-1, 1], [S, B, A]."""
        return self.actor(obs, deterministic, self.gens)[0]

    def update(self, batch: Batch) -> dict[str, float]:
        """One SB3 SAC gradient step for every seed (module docstring); batch fields [S, B, ...]."""
        obs, action, reward, next_obs, terminated = batch
        cfg = self.cfg
        self.num_updates += 1
        # 1-2. policy sample and entropy temperature
        a_pi, logp_pi = self.actor(obs, generators=self.gens)
        alpha = self.log_alpha.detach().exp()                                         # [S]
        out = {}
        if self.alpha_opt is not None:
            alpha_loss = -(self.log_alpha.unsqueeze(1) * (logp_pi + self.target_entropy).detach()).mean(1).sum()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
            out["alpha_loss"] = alpha_loss.item() / self.S
        # 3. critics
        with torch.no_grad():
            a_next, logp_next = self.actor(next_obs, generators=self.gens)
            q_next = self.critics_target(next_obs, a_next).min(1).values - alpha.unsqueeze(1) * logp_next
            y = td_target(reward, terminated, q_next, cfg.gamma)                     # [S, B]
        q = self.critics(obs, action)                                                 # [S, 2, B]
        critic_loss = 0.5 * (q - y.unsqueeze(1)).pow(2).mean(-1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        # 4. actor, through the updated critics
        q_pi = self.critics(obs, a_pi).min(1).values
        actor_loss = (alpha.unsqueeze(1) * logp_pi - q_pi).mean(1).sum()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        # 5. targets
        if self.num_updates % cfg.target_update_interval == 0:
            ema_update(self.critics_target, self.critics, cfg.tau)
        out.update(critic_loss=critic_loss.item() / self.S, actor_loss=actor_loss.item() / self.S,
                   alpha=alpha.mean().item(), entropy=-logp_pi.mean().item())
        return out

    def actor_state(self) -> dict:
        return {k: v.detach().cpu().clone() for k, v in self.actor.state_dict().items()}


@dataclass
class TrainResult:
    agent: SAC
    replay: ReplayBuffer | None = None
    """The replay buffer at the end (pre-filled, HER or plain)."""
    episodes: list[dict] = field(default_factory=list)
    """One row per finished training episode: seed, step (env steps of that seed), return, length."""
    info: dict = field(default_factory=dict)


def train(cfg: SACConfig, env, seeds: Sequence[int], device="cpu", replay: ReplayBuffer | None = None,
          on_step: Callable | None = None, progress: bool = False) -> TrainResult:
    """SB3's off-policy loop for len(seeds) agents on `env` (len(seeds) * num_envs worlds, world
    s * num_envs + k belongs to seed s). A given `replay` (e.g. pre-filled with `extend`) is
    used as it is; otherwise a new one. World k of seed s is reset with seeds[s] + k (SB3's env
    seeds); seed s's warm-up actions come from numpy's default_rng(seeds[s]).

    With `cfg.her_k > 0` the env is goal-conditioned: its observation is [observation, desired
    goal] (the last `env.goal_dim` entries the goal, what the policy sees, as SB3's
    MultiInputPolicy concatenates the dict), `env.achieved_goal(obs)` gives the goal an
    observation achieves and `env.compute_reward(achieved, desired)` the reward (batched
    torch, gymnasium-robotics' GoalEnv signature without info); transitions go to a
    `HerReplayBuffer` (future strategy, k = her_k)."""
    S, N = len(seeds), cfg.num_envs
    if env.num_envs != S * N:
        raise ValueError(f"env.num_envs = {env.num_envs}, expected {S} seeds x {N} = {S * N}")
    device = torch.device(device)
    obs_dim = int(np.prod(env.single_observation_space.shape))
    space = env.single_action_space
    act_dim = int(np.prod(space.shape))
    low = torch.as_tensor(space.low, dtype=torch.float32, device=device)
    high = torch.as_tensor(space.high, dtype=torch.float32, device=device)
    agent = SAC(obs_dim, act_dim, cfg, seeds, device)
    capacity = min(cfg.buffer_size, cfg.total_timesteps * N)
    g = int(getattr(env, "goal_dim", 0)) if cfg.her_k > 0 else 0
    if cfg.her_k > 0 and not g:
        raise ValueError("her_k > 0 needs a goal-conditioned env (env.goal_dim, achieved_goal, compute_reward)")
    if replay is not None:
        rb = replay
    elif g:
        rb = HerReplayBuffer(capacity - capacity % N, obs_dim - g, act_dim, g, env.compute_reward, n_envs=N,
                             members=S, k=cfg.her_k, device=device)
    else:
        rb = ReplayBuffer(capacity, obs_dim, act_dim, S, device)
    rngs = [np.random.default_rng(int(s)) for s in seeds]
    res = TrainResult(agent)
    obs, _ = env.reset(seed=[int(s) + k for s in seeds for k in range(N)])
    ep_ret = torch.zeros(S, N, dtype=torch.float64)
    ep_len = torch.zeros(S, N, dtype=torch.long)
    from tqdm import tqdm

    bar = tqdm(total=cfg.total_timesteps * N, desc=f"sac {S} seed(s)", unit="step", file=sys.stderr,
               disable=not progress, mininterval=1.0, dynamic_ncols=True)
    t0 = time.perf_counter()
    last: dict = {}
    for step in range(cfg.total_timesteps):
        o = obs.to(device).reshape(S, N, obs_dim)
        if step < cfg.learning_starts:
            a = torch.as_tensor(np.stack([r.uniform(-1.0, 1.0, (N, act_dim)) for r in rngs]),
                                dtype=torch.float32, device=device)
        else:
            a = agent.act(o)
        a_env = low + (a + 1.0) * 0.5 * (high - low)      # SB3 unscale_action
        obs, reward, term, trunc, info = env.step(a_env.reshape(S * N, act_dim))
        nxt = info["final_obs"].to(device).reshape(S, N, obs_dim)
        if g:  # goal-conditioned: store the observations without the goal, the goal, what s' achieved
            rb.add(o[..., :-g], a, reward.reshape(S, N), nxt[..., :-g], term.reshape(S, N), goal=o[..., -g:],
                   achieved=env.achieved_goal(nxt.reshape(S * N, obs_dim)).reshape(S, N, g),
                   done=(term | trunc).reshape(S, N))
        else:
            rb.add(o, a, reward.reshape(S, N), nxt, term.reshape(S, N))
        ep_ret += reward.reshape(S, N).double().cpu()
        ep_len += 1
        done = (term | trunc).reshape(S, N).cpu()
        if bool(done.any()):
            for s, k in done.nonzero().tolist():
                res.episodes.append({"seed": int(seeds[s]), "step": step + 1, "return": float(ep_ret[s, k]),
                                     "length": int(ep_len[s, k])})
            ep_ret[done], ep_len[done] = 0.0, 0
        if step + 1 > cfg.learning_starts:
            for _ in range(cfg.gradient_steps):
                last = agent.update(rb.sample(cfg.batch_size, agent.gens))
        bar.update(N)
        if on_step is not None:
            on_step(step, last)
    bar.close()
    wall = time.perf_counter() - t0
    res.info = {"steps_per_seed": cfg.total_timesteps * N, "env_steps": cfg.total_timesteps * N * S,
                "wall_s": wall, "env_steps_per_s": cfg.total_timesteps * N * S / wall, **last}
    res.replay = rb
    return res


@torch.no_grad()
def evaluate(agent: SAC, env, episodes_per_world: int = 1, seed: int = 10_000) -> torch.Tensor:
    """Mean return per seed of the deterministic policy tanh(mu(s)) (SB3 predict(deterministic=True))
    on `env` with len(seeds) * n worlds, every seed from the same starts
    (`hrlzoo.envs.batched.mean_returns`): [S]."""
    from hrlzoo.envs.batched import mean_returns

    S = agent.S
    space = env.single_action_space
    low, high = torch.as_tensor(space.low, dtype=torch.float32), torch.as_tensor(space.high, dtype=torch.float32)

    def act(obs):
        a = agent.act(obs.to(agent.device).reshape(S, env.num_envs // S, -1), deterministic=True).cpu()
        return (low + (a + 1.0) * 0.5 * (high - low)).reshape(env.num_envs, -1)

    return mean_returns(env, act, S, episodes_per_world, seed)
