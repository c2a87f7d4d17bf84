"""The hierarchical novelty-seeking recommender, its ablations and the flat baselines (OUR READING
of spec B §5.3; the paper's method is known from its abstract only).

Two levels, each an actor-critic trained with hrlzoo/algos/ppo.py (`PPO`: S seeds in one
batched network; `gae`; the clipped update), wired here:

- high level, once per session: input = long-term context (the History's long-term features and
  the pretrained z_long) and session-start context (the previous session's novel share, novel
  click rate and click rate, and z_sess at the session's start); output = a novelty goal g from
  `agent.goals` (target share of novel items in the session). Its reward is the sum of the
  session's rewards r_t; discount `gamma_high` across sessions, one episode = a user's lifetime.
- low level, every step: input = long-term and session features, z_long, z_sess and g; output
  = an item (softmax over the catalogue: the policy's last layer is a table of item vectors,
  logits = state . item vector + bias, spec B §5.3's dot-product policy); reward
  r_t - goal |novel share so far - g| (spec's optional goal-following term); discount
  `gamma_low` within a session, one episode = a session.
- r_t = click + novelty 1[topic new for the user] + diversity (1 - max cos with the session's
  earlier items) (spec B §5.3).

Variants (`VARIANTS`): `hrl` (both context parts), `no_static` (the high level sees the session
context only), `no_dynamic` (long-term context only), `oracle` (both levels also see the true
nu_u and p_us), `flat` (no high level: g = 0 and no goal term, same r_t), `flat_engagement`
(flat, r_t = click only). With `epochs` = 1 and one minibatch a PPO update is REINFORCE with a
learned baseline; the params use PPO's several epochs for every learned method alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hrlzoo.algos.ppo import PPO, PPOConfig, gae
from hrlzoo.nets.optim import Adam
from stages.novelty_rec import sim
from stages.novelty_rec.params import NoveltyRecParams, sizes


@dataclass(frozen=True)
class Variant:
    high: tuple[str, ...] = ()      # parts of the high level's input; () = no high level (flat)
    novelty_reward: bool = True     # novelty and diversity terms in r_t
    truth: bool = False             # both levels see the true nu_u and p_us


VARIANTS = {
    "hrl": Variant(high=("long", "session")),
    "no_static": Variant(high=("session",)),
    "no_dynamic": Variant(high=("long",)),
    "oracle": Variant(high=("long", "session"), truth=True),
    "flat": Variant(),
    "flat_engagement": Variant(novelty_reward=False),
}


def high_obs(env: sim.UserSim, enc, v: Variant) -> torch.Tensor:
    """[B, d_high] at the start of a session."""
    h = env.h
    z_l, z_s = enc.embed(h.long_features(), h.session_features())
    parts = []
    if "long" in v.high:
        parts += [h.long_features(), z_l]
    if "session" in v.high:
        parts += [h.prev, z_s]
    if v.truth:
        parts += [env.nu[:, None], env.p[:, None]]
    return torch.cat(parts, 1)


def low_obs(env: sim.UserSim, enc, v: Variant, goal: torch.Tensor) -> torch.Tensor:
    """[B, d_low] before a recommendation."""
    h = env.h
    long, sess = h.long_features(), h.session_features()
    z_l, z_s = enc.embed(long, sess)
    parts = [long, sess, z_l, z_s, goal[:, None]]
    if v.truth:
        parts += [env.nu[:, None], env.p[:, None]]
    return torch.cat(parts, 1)


def dims(p: NoveltyRecParams, v: Variant) -> tuple[int, int]:
    K = sizes(p).topics
    d_long, d_sess = sim.History.dims(K)
    a = p.agent
    truth = 2 if v.truth else 0
    d_high = (d_long + a.embed_long if "long" in v.high else 0) + (3 + a.embed_session if "session" in v.high else 0)
    return d_high + truth, d_long + d_sess + a.embed_long + a.embed_session + 1 + truth


def ppo_config(p: NoveltyRecParams, users: int, steps: int, gamma: float) -> PPOConfig:
    a = p.agent
    return PPOConfig(num_envs=users, num_steps=steps, learning_rate=a.lr, gamma=gamma, gae_lambda=a.gae_lambda,
                     minibatch_size=a.minibatch, update_epochs=a.epochs, clip_coef=a.clip, ent_coef=a.entropy,
                     hidden=tuple(a.hidden), activation="tanh", ortho_init=True,
                     categorical_sampler="inverse_cdf")


class Agent:
    """The two levels of one variant for S seeds (the high level is None for flat variants)."""

    def __init__(self, p: NoveltyRecParams, method: str, seeds, users_per_seed: int):
        from gymnasium import spaces

        s = sizes(p)
        self.p, self.v, self.S = p, VARIANTS[method], len(seeds)
        self.goals = torch.tensor(p.agent.goals, dtype=torch.float32)
        d_high, d_low = dims(p, self.v)
        self.low = PPO(d_low, spaces.Discrete(s.items), ppo_config(p, users_per_seed, s.sessions * s.session_len,
                                                                  p.agent.gamma_low), seeds)
        self.low_opt = Adam(self.low.parameters(), lr=p.agent.lr, eps=1e-5)  # torch.optim's rule, no dynamo import
        self.high = None
        if self.v.high:
            # the high level's weights and draws from their own generators (seed + 100003)
            self.high = PPO(d_high, spaces.Discrete(len(p.agent.goals)),
                            ppo_config(p, users_per_seed, s.sessions, p.agent.gamma_high),
                            [int(x) + 100003 for x in seeds])
            self.high_opt = Adam(self.high.parameters(), lr=p.agent.lr, eps=1e-5)


def lifetime(agent: Agent, env: sim.UserSim, enc, record: bool = False) -> dict:
    """One lifetime of env's B = S x N users (user s * N + k belongs to seed s) under `agent`.
    Returns the two levels' rollouts (tensors time first, [T, S, N, ...]) and, with `record`,
    per-session numpy arrays [sessions, B] (goal, p, clicks, novel, diversity, reward)."""
    p, v, S = agent.p, agent.v, agent.S
    s = sizes(p)
    B = env.B
    N = B // S
    r = p.reward
    lam_nov, lam_div = (r.novelty, r.diversity) if v.novelty_reward else (0.0, 0.0)
    K = s.sessions
    low = {k: [] for k in ("obs", "actions", "logp", "values", "rewards")}
    high = {k: [] for k in ("obs", "actions", "logp", "values", "rewards")}
    rec = {k: np.zeros((K, B), dtype=np.float32) for k in ("goal", "p", "clicks", "novel", "diversity", "reward")}
    view = lambda x: x.reshape(S, N, *x.shape[1:])
    for k in range(K):
        env.start_session()
        if agent.high is not None:
            oh = view(high_obs(env, enc, v))
            g_idx, logp_h, v_h = agent.high.act(oh)
            goal = agent.goals[g_idx.reshape(B)]
            for name, x in zip(("obs", "actions", "logp", "values"), (oh, g_idx, logp_h, v_h)):
                high[name].append(x)
        else:
            goal = torch.zeros(B)
        sess_reward = torch.zeros(B)
        for t in range(s.session_len):
            ol = view(low_obs(env, enc, v, goal))
            a, logp, val = agent.low.act(ol)
            out = env.step(a.reshape(B))
            click, novel, div = out["click"].float(), out["novel"].float(), out["diversity"]
            r_ext = click + lam_nov * novel + lam_div * div
            r_low = r_ext
            if agent.high is not None:
                share = env.h.s_nov_shown / env.h.t
                r_low = r_ext - r.goal * (share - goal).abs()
            sess_reward += r_ext
            for name, x in zip(("obs", "actions", "logp", "values", "rewards"), (ol, a, logp, val, view(r_low))):
                low[name].append(x)
            if record:
                rec["clicks"][k] += click.numpy()
                rec["novel"][k] += novel.numpy()
                rec["diversity"][k] += div.numpy()
                rec["reward"][k] += (click + r.novelty * novel + r.diversity * div).numpy()
        if agent.high is not None:
            high["rewards"].append(view(sess_reward))
        if record:
            rec["goal"][k] = goal.numpy() if agent.high is not None else np.nan
            rec["p"][k] = env.p.numpy()
        env.end_session()
    out = {"low": {k: torch.stack(x) for k, x in low.items()}}
    if agent.high is not None:
        out["high"] = {k: torch.stack(x) for k, x in high.items()}
    if record:
        out["record"] = rec
    return out


def _update(ppo: PPO, opt, ro: dict, episode_len: int, gamma: float, lam: float) -> dict:
    """GAE over `ro` (time first) with an episode end every `episode_len` steps, then PPO's update."""
    Tn = ro["rewards"].shape[0]
    ends = torch.zeros(Tn, *ro["rewards"].shape[1:])
    ends[episode_len - 1::episode_len] = 1.0
    following = torch.cat([ro["values"][1:], torch.zeros_like(ro["values"][:1])])
    adv, ret = gae(ro["rewards"], ro["values"], following, ends, ends, gamma, lam)
    S = ro["rewards"].shape[1]
    flat = lambda x: x.transpose(0, 1).reshape(S, -1, *x.shape[3:])
    batch = {"obs": flat(ro["obs"]), "actions": flat(ro["actions"]), "logp": flat(ro["logp"]),
             "values": flat(ro["values"]), "adv": flat(adv), "returns": flat(ret)}
    return ppo.update(opt, batch)


def update(agent: Agent, ro: dict) -> dict:
    """One update of each level from one lifetime rollout."""
    a, s = agent.p.agent, sizes(agent.p)
    st = {f"low_{k}": v for k, v in _update(agent.low, agent.low_opt, ro["low"], s.session_len, a.gamma_low,
                                            a.gae_lambda).items()}
    if agent.high is not None:
        st.update({f"high_{k}": v for k, v in _update(agent.high, agent.high_opt, ro["high"], s.sessions,
                                                      a.gamma_high, a.gae_lambda).items()})
    return st
