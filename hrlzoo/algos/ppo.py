"""PPO with GAE (Schulman et al., 2017) in one readable file, with a seeds dimension.

    cfg = PPOConfig(num_envs=4, num_steps=1024, minibatch_size=64, ...)
    env = TorchPendulum(num_envs=len(seeds) * cfg.num_envs)   # any hrlzoo.envs.batched env
    result = train(cfg, env, seeds=[0, 1, 2, 3, 4])         # 5 agents, one batched network

Semantics follow CleanRL's `ppo_continuous_action.py` / `ppo.py` (rollout, GAE, clipped
surrogate, optional value clipping, per-minibatch advantage normalisation, entropy bonus,
global gradient-norm clipping, linear learning-rate annealing, Adam eps 1e-5), with four
details taken from Stable-Baselines3's PPO instead, so that rl-baselines3-zoo's tuned
hyperparameters mean here what they mean there (benchmarks/rl_quality.py):
- bootstrapping on truncation: where a world is truncated (time limit), the advantage uses
  V(final_obs) as the next value (SB3 `OnPolicyAlgorithm.collect_rollouts` adds
  gamma * V(terminal_observation) to the reward, the same quantity); CleanRL cuts the return
  there as if the episode had terminated;
- `minibatch_size` and `update_epochs` as SB3's `batch_size` and `n_epochs` (CleanRL counts
  minibatches), value loss = MSE (SB3; CleanRL's 0.5 * MSE is vf_coef / 2 here);
- value clipping as SB3's `clip_range_vf` (None: off), CleanRL's `clip_vloss` uses clip_coef;
- observation and reward normalisation as SB3's `VecNormalize` (running mean/var, clip 10,
  reward scaled by the std of the discounted return), the zoo's `normalize: true`.
Actions are sampled from N(mu(s), exp(log_std)^2) (state-independent log_std, CleanRL and SB3)
and clipped to the action box only when sent to the env (the log-prob is of the unclipped
sample, as both do); a discrete action space gets a categorical head (CleanRL `ppo.py`).

The seeds dimension: S agents (networks [S, ...], hrlzoo/nets/ensemble.py) act in S * num_envs
worlds (world s * num_envs + k belongs to seed s), every loss is a sum over seeds of per-seed
means, minibatches are drawn per seed, advantages normalised per seed, the gradient norm
clipped per seed (`clip_grad_norm_members_`) and Adam is elementwise, so each seed trains
exactly as it would alone, only in the same matmuls.

Options for methods that bring their own network and PPO settings (HAMNet, iMSquared/HAMNet
`ham/models/rl/v6/ppo.py`; all off by default, so the above is unchanged):
- `make_net` (in `train`): any module mapping obs [S, B, d] to (policy output [S, B, out],
  value [S, B]) replaces the two MLPs; its parameters carry the seeds dimension first;
- `pg_coef` (HAMNet k_pi) and `bound_coef` (HAMNet k_bound: mean squared excess of the Gaussian
  mean beyond 1.1 x the action box, `ppo_util.BoundLoss`);
- `kl_target`: HAMNet's KL-adaptive learning rate (`adaptive_lr.update_lr_scale`: the scale is
  multiplied by `kl_factor` when the minibatch's approx-KL is below half the target, divided when
  above twice, lr kept inside `lr_bounds`) and early stopping (a seed whose approx-KL exceeds
  kl_factor * kl_target skips that step and the rest of the update), both skipped at the first
  step of an update, as `_train_epoch` does. Per seed: Adam steps with the base rate and each
  seed's parameter change is scaled by its own lr scale (Adam's step is linear in lr); a stopped
  seed's parameters and Adam moments are restored after the step (only the shared step counter of
  Adam's bias correction still advances);
- `normalize_obs_upto`: only the first dims are normalised (HAMNet's normaliser leaves its
  point clouds raw, `constlist` of rss_train.yaml).

Reusable pieces, apart from the wiring (TorchRL's split): `gae`, `clipped_surrogate`,
`value_loss`, `RunningMeanStd`; the wiring is `PPO` (networks + update) and `train` (loop).
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

from hrlzoo.nets.ensemble import EnsembleMLP, clip_grad_norm_members_, randn_members


@dataclass
class PPOConfig:
    """Hyper-parameters; defaults are SB3's PPO defaults (= CleanRL's MuJoCo settings)."""

    num_envs: int = 1
    """Worlds per seed (SB3 n_envs)."""
    num_steps: int = 2048
    """Rollout length per world (SB3 n_steps); a rollout is num_envs * num_steps transitions per seed."""
    total_timesteps: int = 1_000_000
    """Env steps per seed over the whole run (rounded up to whole rollouts)."""
    learning_rate: float = 3e-4
    """Adam learning rate (eps `adam_eps`)."""
    anneal_lr: bool = False
    """Linear decay of the learning rate to 0 over the run (CleanRL `anneal_lr`; SB3 `lin_*` schedules)."""
    adam_eps: float = 1e-5
    """Adam epsilon (CleanRL and SB3's ActorCriticPolicy: 1e-5)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    minibatch_size: int = 64
    """Transitions per gradient step, per seed (SB3 batch_size)."""
    update_epochs: int = 10
    """Passes over each rollout (SB3 n_epochs)."""
    norm_adv: bool = True
    """Normalise advantages per minibatch (mean 0, std 1; both references)."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon (SB3 clip_range)."""
    clip_range_vf: float | None = None
    """Clip the value update around the old values (SB3 clip_range_vf); None: no clipping."""
    pessimistic_vf: bool = False
    """With clip_range_vf: the max of the clipped and unclipped squared errors (rsl_rl's
    use_clipped_value_loss, CleanRL's clip_vloss) instead of SB3's clipped error alone."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient (the value loss is MSE, as SB3's)."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip, per seed."""
    hidden: Sequence[int] = (64, 64)
    """Hidden layers of the policy and of the (separate) value network (SB3 net_arch pi = vf)."""
    activation: str = "tanh"
    """tanh | relu | elu (SB3 activation_fn; elu: rsl_rl's actor-critic)."""
    ortho_init: bool = True
    """Orthogonal init, gains sqrt(2) / 0.01 (policy head) / 1 (value head); else torch's default."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian policy."""
    categorical_sampler: str = "multinomial"
    """How a discrete head samples: `multinomial` (torch.multinomial, one call per seed) or
    `inverse_cdf` (one uniform per sample from the seed's generator, searched in the cumulative
    probabilities: the same distribution, another random stream; one batched search instead of a
    multinomial call per seed)."""
    normalize_obs: bool = False
    """VecNormalize observations (running mean/var per seed, clip `clip_obs`)."""
    normalize_reward: bool = False
    """VecNormalize rewards (divided by the running std of the discounted return, clip `clip_reward`)."""
    clip_obs: float = 10.0
    """Clip of normalised observations (VecNormalize default)."""
    clip_reward: float = 10.0
    """Clip of normalised rewards (VecNormalize default)."""
    normalize_obs_upto: int | None = None
    """With normalize_obs: normalise only dims [0, normalize_obs_upto); the rest stay raw (None: all)."""
    pg_coef: float = 1.0
    """Policy-loss coefficient (HAMNet k_pi 0.5)."""
    bound_coef: float = 0.0
    """Action-bound loss coefficient (HAMNet k_bound 0.02); 0: off."""
    kl_target: float | None = None
    """HAMNet's KL-adaptive lr and early stopping (alr.kl_target); None: off (fixed or annealed lr)."""
    kl_factor: float = 1.5
    """Factor of the adaptive lr and of the early-stopping threshold (alr.factor)."""
    lr_bounds: tuple = (1e-6, 1e-2)
    """Bounds of the adaptive learning rate (alr.bounds)."""

    @property
    def batch_size(self) -> int:
        """Transitions per rollout per seed."""
        return self.num_envs * self.num_steps


# ---------------------------------------------------------------------------- reusable pieces


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor,
        dones: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a rollout, time first ([T, ...] each).

    values[t] = V(s_t); next_values[t] = V(s'_t), the value of the state step t reached (for a
    truncated step, V(final_obs); for a terminated step it is ignored); terminated[t]: s'_t is
    terminal (no bootstrap); dones[t] = terminated | truncated: the episode ends at t, so the
    recursion does not run into the next episode.

        delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t)
        A_t     = delta_t + gamma lam (1 - done_t) A_{t+1}

    This is CleanRL's / SB3's recursion; with next_values[t] = values[t+1] inside an episode
    it is the same numbers, and SB3's truncation trick (reward += gamma V(final_obs), episode
    cut) gives this delta at a truncated step. Returns (advantages, returns = A + V)."""
    T = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    last = torch.zeros_like(rewards[0])
    nonterminal = 1.0 - terminated.to(rewards.dtype)
    notdone = 1.0 - dones.to(rewards.dtype)
    for t in reversed(range(T)):
        delta = rewards[t] + gamma * nonterminal[t] * next_values[t] - values[t]
        last = delta + gamma * lam * notdone[t] * last
        adv[t] = last
    return adv, adv + values


def clipped_surrogate(ratio: torch.Tensor, adv: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """The PPO-clip policy loss per sample, max(-A r, -A clip(r, 1 - eps, 1 + eps)) (CleanRL pg_loss,
    SB3 policy_loss); the caller averages."""
    return torch.max(-adv * ratio, -adv * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef))


def value_loss(new_values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               clip_range_vf: float | None, pessimistic: bool = False) -> torch.Tensor:
    """Squared error per sample; with `clip_range_vf`, the clipped value prediction
    V_clip = V_old + clip(V - V_old, -c, c). SB3 takes the error of V_clip alone (default);
    `pessimistic` takes max((V - R)^2, (V_clip - R)^2), as CleanRL's clip_vloss and TRL's
    PPOTrainer do."""
    if clip_range_vf is None:
        return (returns - new_values) ** 2
    clipped = old_values + (new_values - old_values).clamp(-clip_range_vf, clip_range_vf)
    if pessimistic:
        return torch.maximum((returns - new_values) ** 2, (returns - clipped) ** 2)
    return (returns - clipped) ** 2


class RunningMeanStd:
    """SB3's RunningMeanStd (parallel mean/var update, count starts at epsilon 1e-4), per seed:
    mean and var [S, *shape]."""

    def __init__(self, seeds: int, shape: tuple = (), device="cpu", epsilon: float = 1e-4):
        self.mean = torch.zeros(seeds, *shape, dtype=torch.float64, device=device)
        self.var = torch.ones(seeds, *shape, dtype=torch.float64, device=device)
        self.count = epsilon

    def update(self, x: torch.Tensor) -> None:
        """x: [S, n, *shape], n samples per seed."""
        x = x.to(torch.float64)
        batch_mean, batch_var, n = x.mean(1), x.var(1, unbiased=False), x.shape[1]
        delta = batch_mean - self.mean
        tot = self.count + n
        self.mean = self.mean + delta * n / tot
        m2 = self.var * self.count + batch_var * n + delta ** 2 * self.count * n / tot
        self.var = m2 / tot
        self.count = tot


class Normalizer:
    """SB3 VecNormalize for S seeds x N worlds: obs -> clip((obs - mean) / sqrt(var + 1e-8)),
    reward -> clip(r / sqrt(var(discounted return) + 1e-8)). `training=False` freezes the stats."""

    def __init__(self, seeds: int, num_envs: int, obs_shape: tuple, cfg: PPOConfig, device="cpu"):
        self.S, self.N, self.cfg = seeds, num_envs, cfg
        self.obs_rms = RunningMeanStd(seeds, obs_shape, device) if cfg.normalize_obs else None
        self.ret_rms = RunningMeanStd(seeds, (), device) if cfg.normalize_reward else None
        self.returns = torch.zeros(seeds, num_envs, dtype=torch.float64, device=device)
        self.training = True

    def obs(self, obs: torch.Tensor, update: bool = False) -> torch.Tensor:
        """obs [S * N, d] -> normalised [S, N, d] (float32)."""
        o = obs.reshape(self.S, self.N, *obs.shape[1:])
        if self.obs_rms is None:
            return o.float()
        if update and self.training:
            self.obs_rms.update(o)
        m, v = self.obs_rms.mean.unsqueeze(1), self.obs_rms.var.unsqueeze(1)
        c = self.cfg.clip_obs
        k = self.cfg.normalize_obs_upto
        if k is not None:  # the dims from k on pass raw (their statistics are kept, unused)
            head = ((o[..., :k] - m[..., :k]) / torch.sqrt(v[..., :k] + 1e-8)).clamp(-c, c)
            return torch.cat([head, o[..., k:].to(head.dtype)], -1).float()
        return ((o - m) / torch.sqrt(v + 1e-8)).clamp(-c, c).float()

    def reward(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """reward, done [S * N] -> normalised reward [S, N] (and the discounted-return bookkeeping)."""
        r = reward.reshape(self.S, self.N).to(torch.float64)
        if self.ret_rms is not None:
            if self.training:
                self.returns = self.returns * self.cfg.gamma + r
                self.ret_rms.update(self.returns)
            c = self.cfg.clip_reward
            r = (r / torch.sqrt(self.ret_rms.var.unsqueeze(1) + 1e-8)).clamp(-c, c)
            self.returns = self.returns * (1.0 - done.reshape(self.S, self.N).to(torch.float64))
        return r.float()

    def state_dict(self) -> dict:
        out = {}
        for name in ("obs_rms", "ret_rms"):
            rms = getattr(self, name)
            if rms is not None:
                out[name] = {"mean": rms.mean.clone(), "var": rms.var.clone(), "count": rms.count}
        return out


# ---------------------------------------------------------------------------- the agent

LOG_2PI = math.log(2 * math.pi)


def _normal_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(log_std)^2) summed over the last dimension (torch.distributions.Normal's formula)."""
    return (-((x - mean) ** 2) / (2 * torch.exp(2 * log_std)) - log_std - 0.5 * LOG_2PI).sum(-1)



class PPO(nn.Module):
    """S actor-critics with separate policy and value MLPs (SB3 MlpPolicy, CleanRL Agent)."""

    def __init__(self, obs_dim: int, action_space, cfg: PPOConfig, seeds: Sequence[int], device="cpu",
                 make_net: Callable | None = None):
        super().__init__()
        from gymnasium import spaces

        self.cfg, self.seeds, self.S = cfg, list(seeds), len(seeds)
        self.discrete = isinstance(action_space, spaces.Discrete)
        out = int(action_space.n) if self.discrete else int(np.prod(action_space.shape))
        if cfg.categorical_sampler not in ("multinomial", "inverse_cdf"):
            raise ValueError(f"categorical_sampler = {cfg.categorical_sampler!r}: expected multinomial or inverse_cdf")
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds]
        # seed s's weights, action noise and minibatch order all come from its own generator
        self.generators = gens
        init = "orthogonal" if cfg.ortho_init else "torch"
        mk = lambda d_out, gain: EnsembleMLP(self.S, obs_dim, [*cfg.hidden, d_out], activation=cfg.activation,
                                             init=init, final_scale=gain if cfg.ortho_init else 1.0,
                                             generators=gens)
        if make_net is not None:     # a method's own actor-critic: obs -> (policy output, value)
            self.net = make_net(obs_dim, out, gens)
        else:
            self.net = None
            self.actor = mk(out, 0.01)   # CleanRL actor_mean std=0.01; SB3 action_net gain 0.01
            self.critic = mk(1, 1.0)     # CleanRL critic std=1.0; SB3 value_net gain 1
        self.register_buffer("lr_scale", torch.ones(self.S))  # the KL-adaptive lr scale per seed
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.S, 1, out), float(cfg.log_std_init)))
            self.register_buffer("low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(action_space.high, dtype=torch.float32))
        self.to(device)
        self.device = torch.device(device)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [S, B, d] -> V [S, B]."""
        if self.net is not None:
            return self.net(obs)[1]
        return self.critic(obs).squeeze(-1)

    def outputs(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy output [S, B, out], V [S, B]) in one pass (one call of a method's own net)."""
        if self.net is not None:
            return self.net(obs)
        return self.actor(obs), self.critic(obs).squeeze(-1)

    def _dist_of(self, out: torch.Tensor):
        if self.discrete:
            return torch.distributions.Categorical(logits=out, validate_args=False)
        return out, self.log_std.expand_as(out)

    def dist(self, obs: torch.Tensor):
        """The categorical policy (discrete), or the Gaussian's (mean, log_std) (continuous)."""
        return self._dist_of(self.outputs(obs)[0] if self.net is not None else self.actor(obs))

    def _log_prob_entropy_of(self, out: torch.Tensor, action: torch.Tensor):
        if self.discrete:
            d = self._dist_of(out)
            return d.log_prob(action.long()), d.entropy()
        mean, log_std = self._dist_of(out)
        return _normal_log_prob(action, mean, log_std), (0.5 + 0.5 * LOG_2PI + log_std).sum(-1)

    def log_prob_entropy(self, obs: torch.Tensor, action: torch.Tensor):
        """log pi(a|s) and the entropy, [S, B] each (a diagonal Gaussian's summed over dims)."""
        return self._log_prob_entropy_of(self.outputs(obs)[0] if self.net is not None else self.actor(obs), action)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False):
        """obs [S, B, d] -> (action, log_prob, value); seed s samples from its own generator."""
        out, value = self.outputs(obs)
        if self.discrete:
            d = self._dist_of(out)
            if deterministic:
                a = d.logits.argmax(-1)
            elif self.cfg.categorical_sampler == "inverse_cdf":
                # the first action whose cumulative probability exceeds u * total, u ~ U[0, 1), kept
                # below the total: never an action of probability 0 (whatever the rounding)
                cdf = d.probs.cumsum(-1)
                total = cdf[..., -1:]
                u = torch.stack([torch.rand(cdf.shape[1:-1], generator=g) for g in self.generators]).to(cdf.device)
                v = torch.minimum(u.unsqueeze(-1) * total, torch.nextafter(total, torch.zeros_like(total)))
                a = torch.searchsorted(cdf, v, right=True).squeeze(-1)
            else:
                a = torch.stack([torch.multinomial(p, 1, generator=g).squeeze(-1)
                                 for p, g in zip(d.probs, self.generators)])
            return a, d.log_prob(a), value
        mean, log_std = self._dist_of(out)
        a = mean if deterministic else mean + log_std.exp() * randn_members(self.generators, mean.shape[1:], mean.device)
        return a, _normal_log_prob(a, mean, log_std), value

    def env_action(self, action: torch.Tensor) -> torch.Tensor:
        """What the env receives: clipped to the box (SB3 clips; CleanRL's ClipAction wrapper)."""
        if self.discrete:
            return action
        return torch.max(torch.min(action, self.high), self.low)

    def update(self, opt, ro: dict) -> dict[str, float]:
        """`update_epochs` passes of per-seed minibatches over one rollout `ro` (tensors
        [S, n, ...], n = num_envs * num_steps): the clipped surrogate, value and entropy losses,
        summed over seeds. Returns means over seeds and steps of the last epoch's statistics."""
        cfg, S = self.cfg, self.S
        n = ro["adv"].shape[1]
        mb = min(cfg.minibatch_size, n)
        stats: dict[str, list] = {"pg_loss": [], "v_loss": [], "entropy": [], "approx_kl": [], "clipfrac": []}
        params = [p for p in self.parameters() if p.requires_grad]
        take = lambda x, idx: torch.gather(x, 1, idx.view(S, -1, *([1] * (x.dim() - 2))).expand(S, -1, *x.shape[2:]))
        adaptive = cfg.kl_target is not None
        active = torch.ones(S, dtype=torch.bool, device=self.device)
        first = True
        for epoch in range(cfg.update_epochs):
            perm = torch.stack([torch.randperm(n, generator=g).to(self.device) for g in self.generators])
            last_epoch = epoch == cfg.update_epochs - 1
            for start in range(0, n, mb):
                idx = perm[:, start:start + mb]
                obs, act = take(ro["obs"], idx), take(ro["actions"], idx)
                out, new_v = self.outputs(obs)
                new_logp, ent = self._log_prob_entropy_of(out, act)
                logratio = new_logp - take(ro["logp"], idx)
                ratio = logratio.exp()
                adv = take(ro["adv"], idx)
                if cfg.norm_adv and adv.shape[1] > 1:  # SB3 skips a minibatch of one
                    adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
                pg = clipped_surrogate(ratio, adv, cfg.clip_coef).mean(1)                     # [S]
                vl = value_loss(new_v, take(ro["values"], idx), take(ro["returns"], idx), cfg.clip_range_vf,
                                cfg.pessimistic_vf).mean(1)
                en = ent.mean(1)
                per_seed = cfg.pg_coef * pg + cfg.vf_coef * vl - cfg.ent_coef * en
                if cfg.bound_coef > 0 and not self.discrete:
                    per_seed = per_seed + cfg.bound_coef * self.bound_loss(out)
                if adaptive:
                    with torch.no_grad():
                        kl = ((ratio - 1) - logratio).mean(1)
                    if not first:  # early stopping: a seed past factor * target stops for this update
                        stop = active & (kl > cfg.kl_factor * cfg.kl_target)
                        self._update_lr_scale(kl, stop)
                        active = active & ~stop
                        if not bool(active.any()):
                            break
                    per_seed = per_seed * active
                loss = per_seed.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                clip_grad_norm_members_(params, cfg.max_grad_norm, S)
                if adaptive:
                    self._scaled_step(opt, params, active)
                    if not first:
                        self._update_lr_scale(kl, active)
                else:
                    opt.step()
                first = False
                if last_epoch or adaptive:
                    with torch.no_grad():
                        if adaptive:  # the statistics of the last step taken
                            stats = {k: [] for k in stats}
                        stats["pg_loss"].append(pg.mean().item())
                        stats["v_loss"].append(vl.mean().item())
                        stats["entropy"].append(en.mean().item())
                        stats["approx_kl"].append(((ratio - 1) - logratio).mean().item())  # CleanRL's k3
                        stats["clipfrac"].append(((ratio - 1.0).abs() > cfg.clip_coef).float().mean().item())
            if adaptive and not bool(active.any()):
                break
        if adaptive:
            stats["lr_scale"] = [float(self.lr_scale.mean())]
        return {k: float(np.mean(v)) for k, v in stats.items()}


    def bound_loss(self, mean: torch.Tensor) -> torch.Tensor:
        """HAMNet's BoundLoss per seed [S]: mean over samples and dims of the squared excess of the
        Gaussian mean beyond 1.1 x the action box (`ppo_util.get_bound_loss`, scale 1.1)."""
        lo, hi = 1.1 * self.low, 1.1 * self.high
        return ((mean - hi).clamp(min=0) ** 2 + (lo - mean).clamp(min=0) ** 2).mean((1, 2))

    @torch.no_grad()
    def _update_lr_scale(self, kl: torch.Tensor, which: torch.Tensor) -> None:
        """`adaptive_lr.update_lr_scale` for the seeds in `which`."""
        cfg = self.cfg
        lo, hi = cfg.lr_bounds[0] / cfg.learning_rate, cfg.lr_bounds[1] / cfg.learning_rate
        up = (self.lr_scale * cfg.kl_factor).clamp(max=hi)
        down = (self.lr_scale / cfg.kl_factor).clamp(min=lo)
        new = torch.where(kl < 0.5 * cfg.kl_target, up, self.lr_scale)
        new = torch.where(kl > 2.0 * cfg.kl_target, down, new)
        self.lr_scale.copy_(torch.where(which, new, self.lr_scale))

    def _scaled_step(self, opt, params, active: torch.Tensor) -> None:
        """One Adam step whose parameter change is scaled per seed by lr_scale (0 for stopped
        seeds, whose Adam moments are restored too)."""
        S = self.S
        with torch.no_grad():
            before = [p.detach().clone() for p in params]
            frozen = ~active
            saved = None
            if bool(frozen.any()):
                saved = [{k: v.clone() for k, v in opt.state[p].items() if torch.is_tensor(v) and v.dim() > 0}
                         for p in params]
        opt.step()
        with torch.no_grad():
            scale = self.lr_scale * active
            for i, (p, b) in enumerate(zip(params, before)):
                sc = scale.view(S, *([1] * (p.dim() - 1)))
                p.copy_(b + sc * (p - b))
                if saved is not None:
                    m = frozen.view(S, *([1] * (p.dim() - 1)))
                    for k, v in saved[i].items():
                        opt.state[p][k].copy_(torch.where(m, v, opt.state[p][k]))


@dataclass
class TrainResult:
    agent: PPO
    normalizer: Normalizer
    episodes: list[dict] = field(default_factory=list)
    """One row per finished training episode: seed, step (env steps of that seed so far), return, length."""
    updates: list[dict] = field(default_factory=list)
    """One row per rollout: step, losses, seconds."""
    info: dict = field(default_factory=dict)


def train(cfg: PPOConfig, env, seeds: Sequence[int], device="cpu", on_update: Callable | None = None,
          progress: bool = False, make_net: Callable | None = None) -> TrainResult:
    """Train len(seeds) PPO agents on `env` (num_envs must be len(seeds) * cfg.num_envs; world
    s * num_envs + k belongs to seed s). World k of seed s is reset with seed seeds[s] + k, the
    env seeds SB3 gives a run with seed seeds[s] (`set_random_seed`: env k gets seed + k); seed
    s's weights, action noise and minibatch order come from torch.Generator(seeds[s]), so a
    seed trains as it would alone (tests/test_ppo.py).
    `on_update(iteration, result)` is called after every update (for guards and curves).
    `make_net(obs_dim, out_dim, generators)`: a method's own actor-critic (see the module doc)."""
    S, N = len(seeds), cfg.num_envs
    if env.num_envs != S * N:
        raise ValueError(f"env.num_envs = {env.num_envs}, expected {S} seeds x {N} = {S * N}")
    device = torch.device(device)
    obs_shape = env.single_observation_space.shape
    agent = PPO(int(np.prod(obs_shape)), env.single_action_space, cfg, seeds, device, make_net=make_net)
    # torch's fused Adam (one kernel for all parameters; the same elementwise rule as
    # hrlzoo.nets.optim.Adam, which costs ~60 small ops a step here and halves PPO's speed)
    opt = torch.optim.Adam(agent.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps, fused=True)
    norm = Normalizer(S, N, obs_shape, cfg, device)
    res = TrainResult(agent, norm)

    T = cfg.num_steps
    iterations = math.ceil(cfg.total_timesteps / cfg.batch_size)
    raw_obs, _ = env.reset(seed=[int(s) + k for s in seeds for k in range(N)])
    obs = norm.obs(raw_obs.to(device), update=True)
    ep_ret = torch.zeros(S, N, dtype=torch.float64, device=device)
    ep_len = torch.zeros(S, N, dtype=torch.long, device=device)
    act_dims = () if agent.discrete else (int(np.prod(env.single_action_space.shape)),)
    buf = {"obs": torch.zeros(T, S, N, *obs_shape, device=device),
           "actions": torch.zeros(T, S, N, *act_dims, device=device),
           "logp": torch.zeros(T, S, N, device=device), "values": torch.zeros(T, S, N, device=device),
           "next_values": torch.zeros(T, S, N, device=device), "rewards": torch.zeros(T, S, N, device=device),
           "terminated": torch.zeros(T, S, N, device=device), "dones": torch.zeros(T, S, N, device=device)}
    from tqdm import tqdm

    bar = tqdm(total=iterations * T * N, desc=f"ppo {S} seed(s)", unit="step", file=sys.stderr,
               disable=not progress, mininterval=1.0, dynamic_ncols=True)
    t0 = time.perf_counter()
    step = 0
    for it in range(1, iterations + 1):
        if cfg.anneal_lr:  # CleanRL: frac = 1 - (iteration - 1) / num_iterations
            opt.param_groups[0]["lr"] = (1.0 - (it - 1.0) / iterations) * cfg.learning_rate
        # ---- rollout (CleanRL's loop; SAME_STEP auto-reset gives final_obs for truncation)
        for t in range(T):
            action, logp, value = agent.act(obs)
            raw_next, reward, term, trunc, info = env.step(agent.env_action(action).reshape(S * N, *act_dims))
            step += N
            done = (term | trunc).to(device)
            ep_ret += reward.reshape(S, N).to(device, torch.float64)
            ep_len += 1
            buf["obs"][t], buf["actions"][t], buf["logp"][t], buf["values"][t] = obs, action, logp, value
            buf["rewards"][t] = norm.reward(reward.to(device), done)
            buf["terminated"][t] = term.reshape(S, N).to(device, torch.float32)
            buf["dones"][t] = done.reshape(S, N).float()
            obs = norm.obs(raw_next.to(device), update=True)
            if bool(done.any()):
                # next value of a finished world: V(final_obs) (used where truncated)
                with torch.no_grad():
                    final = norm.obs(info["final_obs"].to(device))
                    buf["next_values"][t] = agent.value(final)
                d = done.reshape(S, N)
                for s, k in d.nonzero().tolist():
                    res.episodes.append({"seed": int(seeds[s]), "step": step, "return": float(ep_ret[s, k]),
                                         "length": int(ep_len[s, k])})
                ep_ret[d], ep_len[d] = 0.0, 0
        # next values inside episodes: V(s_{t+1}) = values[t + 1]; after the last step V(obs)
        with torch.no_grad():
            last_v = agent.value(obs)
        following = torch.cat([buf["values"][1:], last_v.unsqueeze(0)])
        next_values = torch.where(buf["dones"].bool(), buf["next_values"], following)
        adv, returns = gae(buf["rewards"], buf["values"], next_values, buf["terminated"], buf["dones"],
                           cfg.gamma, cfg.gae_lambda)
        flat = lambda x: x.transpose(0, 1).reshape(S, T * N, *x.shape[3:])
        ro = {"obs": flat(buf["obs"]), "actions": flat(buf["actions"]), "logp": flat(buf["logp"]),
              "values": flat(buf["values"]), "adv": flat(adv), "returns": flat(returns)}
        stats = agent.update(opt, ro)
        res.updates.append({"iteration": it, "step": step, "lr": opt.param_groups[0]["lr"], **stats,
                            "seconds": time.perf_counter() - t0})
        bar.update(T * N)
        if on_update is not None:
            on_update(it, res)
    bar.close()
    wall = time.perf_counter() - t0
    res.info = {"steps_per_seed": step, "env_steps": step * S, "wall_s": wall, "env_steps_per_s": step * S / wall}
    return res


@torch.no_grad()
def evaluate(agent: PPO, normalizer: Normalizer, env, episodes_per_world: int = 1, seed: int = 10_000,
             deterministic: bool = True) -> torch.Tensor:
    """Mean return per seed of the deterministic policy (the Gaussian mean; SB3's
    `predict(deterministic=True)`), on `env` with len(seeds) * n worlds, frozen normaliser
    statistics; every seed plays the episodes that start from seeds seed..seed + n - 1
    (`hrlzoo.envs.batched.mean_returns`). Returns [S]."""
    from hrlzoo.envs.batched import mean_returns

    S = agent.S
    norm = Normalizer(S, env.num_envs // S, env.single_observation_space.shape, agent.cfg, agent.device)
    norm.obs_rms, norm.training = normalizer.obs_rms, False

    def act(obs):
        a, _, _ = agent.act(norm.obs(obs.to(agent.device)), deterministic=deterministic)
        return agent.env_action(a).reshape(env.num_envs, *a.shape[2:])

    return mean_returns(env, act, S, episodes_per_world, seed)
