"""OTA: Option-aware Temporally Abstracted value (Ahn, Choi, Han, Moon; NeurIPS 2025), on HIQL.

What changes from HIQL (spec A §2.3, ota-v/ota-v `agents/ota.py`):

- A second, option-aware value V^h (its own twin heads, phi and EMA target) is trained with
  HIQL's IVL loss on *option* transitions: from s_t the option runs up to n steps
  (n = `abstraction_factor`), ending early at the goal (same trajectory) or at the trajectory's
  last state T (random goals). An option that reaches its goal succeeds: r = 0, mask 0 (no
  bootstrap); any other pays one -1 and bootstraps from its end state s_o with the same gamma
  (not gamma^n). So V^h counts options: V^h = -(1 - gamma^(ceil(d/n) - 1))/(1 - gamma), an
  effective horizon of d/n instead of d, which keeps distant states off the flat saturated
  part of the value and gives the high-level advantage a usable, correctly signed size.
  `agent.option_rule: hiql_reward` keeps our earlier reading (r = 0 only when s_t is the goal;
  random-goal options end at T + 1), a declared deviation.
- The high-level actor uses V^h for its advantage: A^h = V^h(s_{t+k}, g) - V^h(s_t, g).
- The low-level actor and the subgoal space phi stay HIQL's (V^l).

Under `hiql_reward` with n = 1 the option batch is HIQL's value batch (a test checks it).
"""

from __future__ import annotations

import numpy as np

from hrlzoo.gcrl.dataset import GCData, GoalSampling, value_batch
from stages.ota import hiql


def high_value_batch(data: GCData, rng: np.random.Generator, batch_size: int, gs: GoalSampling,
                     discount: float, abstraction_factor: int, rule: str = "official") -> dict[str, np.ndarray]:
    """The option transitions V^h learns from (see `hrlzoo.gcrl.dataset.value_targets`):
    `official` (ota-v's sampler, the default) or `hiql_reward` (our earlier reading)."""
    return value_batch(data, rng, batch_size, gs, discount, option_len=abstraction_factor, rule=rule)


def high_value_loss(value, target, batch: dict, cfg: hiql.HIQLConfig):
    """L_Vh = sum_i E[|kappa - 1(adv^h < 0)| (r^h + gamma m^h V'^h_i(s_o, g) - V^h_i(s_t, g))^2],
    adv^h = r^h + gamma m^h min_i V'^h_i(s_o, g) - mean_i V'^h_i(s_t, g): HIQL's IVL on options."""
    return hiql.value_loss(value, target, batch, cfg)


def high_actor_loss(actor, high_value, low_value, batch: dict, cfg: hiql.HIQLConfig):
    """HIQL's high-level AWR with the advantage from V^h; targets stay in V^l's phi space."""
    return hiql.high_actor_loss(actor, high_value, low_value, batch, cfg.high_alpha)
