"""HIQL (Park et al., 2023) as OGBench implements it (`impls/agents/hiql.py`), in PyTorch, with
a seeds dimension. Three named losses, trained here in two phases (value first, then the
actors against the frozen value; OGBench trains all three jointly, see the report):

    value_loss      action-free IQL ("IVL") with twin heads and an EMA target
    low_actor_loss  AWR towards the subgoal w = s_{t+k}, conditioned on phi([s; w]) (no grad into phi)
    high_actor_loss AWR of a Gaussian over the 10-d subgoal space, target phi([s_t; s_j])

OTA (ota.py) reuses `value_loss` on option batches and `high_actor_loss` with its own value.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hrlzoo.gcrl.nets import GCActor, GCValue, awr_weights, expectile_loss, length_normalize


@dataclass
class HIQLConfig:
    """Hyper-parameters (OGBench `get_config` defaults in brackets)."""

    obs_dim: int
    action_dim: int
    hidden: list[int]            # value and actor MLPs [512, 512, 512]
    rep_dim: int = 10            # subgoal representation size [10]
    discount: float = 0.99       # [0.99; 0.995 on giant mazes]
    expectile: float = 0.7       # [0.7]
    tau: float = 0.005           # EMA rate of the target value [0.005]
    low_alpha: float = 3.0       # [3.0]
    high_alpha: float = 3.0      # [3.0]
    layer_norm: bool = True      # value MLPs [True]


def make_value(cfg: HIQLConfig, seeds: int) -> GCValue:
    return GCValue(seeds, cfg.obs_dim, cfg.hidden, cfg.layer_norm, rep_dim=cfg.rep_dim)


def make_low_actor(cfg: HIQLConfig, seeds: int) -> GCActor:
    return GCActor(seeds, cfg.obs_dim + cfg.rep_dim, cfg.hidden, cfg.action_dim)


def make_high_actor(cfg: HIQLConfig, seeds: int) -> GCActor:
    return GCActor(seeds, 2 * cfg.obs_dim, cfg.hidden, cfg.rep_dim)


def value_loss(value: GCValue, target: GCValue, b: dict, cfg: HIQLConfig) -> tuple[torch.Tensor, dict]:
    """IVL: q_i = r + gamma m V'_i(s', g); adv = r + gamma m min_i V'_i(s', g) - mean_i V'_i(s, g);
    L = sum_i E[|kappa - 1(adv < 0)| (q_i - V_i(s, g))^2]. The weight uses the target network,
    the residual the online one (OGBench's double-DQN-like trick). `option_ends` is s_{t+1}
    for HIQL and the option's end state s_o for OTA's high value."""
    r, m = b["rewards"].unsqueeze(1), b["masks"].unsqueeze(1)  # [S, 1, B]
    with torch.no_grad():
        next_v_t = target(b["option_ends"], b["goals"])                       # [S, 2, B]
        v_t = target(b["observations"], b["goals"]).mean(1, keepdim=True)
        adv = r + cfg.discount * m * next_v_t.min(1, keepdim=True).values - v_t
        q = r + cfg.discount * m * next_v_t
    v = value(b["observations"], b["goals"])
    per_seed = expectile_loss(adv, q - v, cfg.expectile).mean(-1).sum(1)  # [S]
    return per_seed.sum(), {"value_loss": per_seed.detach(), "v_mean": v.detach().mean((1, 2))}


def mean_value(value: GCValue, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return value(s, g).mean(1)  # [S, B]


def low_actor_loss(actor: GCActor, value: GCValue, b: dict, cfg: HIQLConfig) -> tuple[torch.Tensor, dict]:
    """A^l = V(s_{t+1}, w) - V(s_t, w); L = -E[min(exp(alpha_l A^l), 100) log pi(a | s, phi([s; w]))]."""
    with torch.no_grad():
        adv = mean_value(value, b["next_observations"], b["subgoals"]) - mean_value(value, b["observations"], b["subgoals"])
        rep = value.goal_rep(b["observations"], b["subgoals"])  # stop-gradient into phi (states)
    mean = actor(torch.cat([b["observations"], rep], -1))
    logp = GCActor.log_prob(mean, b["actions"])
    per_seed = -(awr_weights(adv, cfg.low_alpha) * logp).mean(-1)
    return per_seed.sum(), {"low_actor_loss": per_seed.detach(), "low_adv": adv.mean(-1)}


def high_actor_loss(actor: GCActor, value: GCValue, rep_value: GCValue, b: dict, alpha: float) -> tuple[torch.Tensor, dict]:
    """A^h = V(s_j, g) - V(s_t, g); L = -E[min(exp(alpha_h A^h), 100) log pi^h(phi([s_t; s_j]) | s_t, g)].
    `value` scores the advantage (HIQL: V^l; OTA: V^h); `rep_value` owns phi, the subgoal space
    the low actor reads (always V^l's)."""
    with torch.no_grad():
        adv = mean_value(value, b["targets"], b["goals"]) - mean_value(value, b["observations"], b["goals"])
        z = rep_value.goal_rep(b["observations"], b["targets"])
    mean = actor(torch.cat([b["observations"], b["goals"]], -1))
    logp = GCActor.log_prob(mean, z)
    per_seed = -(awr_weights(adv, alpha) * logp).mean(-1)
    return per_seed.sum(), {"high_actor_loss": per_seed.detach(), "high_adv": adv.mean(-1),
                            "high_mse": ((mean.detach() - z) ** 2).mean((-1, -2))}


@torch.no_grad()
def act(high: GCActor, low: GCActor, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Evaluation at temperature 0: z = mean of pi^h renormalised to norm sqrt(rep_dim), then
    a = mean of pi^l(s, z), clipped to [-1, 1]. The high level is queried every step."""
    z = length_normalize(high(torch.cat([s, g], -1)))
    return low(torch.cat([s, z], -1)).clamp(-1.0, 1.0)


@torch.no_grad()
def act_with_subgoal(low: GCActor, value: GCValue, s: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The low level alone, steered to an explicit subgoal state w (the oracle-subgoal mode)."""
    z = value.goal_rep(s, w)
    return low(torch.cat([s, z], -1)).clamp(-1.0, 1.0)
