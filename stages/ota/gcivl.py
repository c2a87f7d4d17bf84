"""GCIVL: goal-conditioned implicit V-learning, the flat (one-level) value + AWR agent
(OGBench `impls/agents/gcivl.py`).

    value_loss  HIQL's IVL loss on V(s, g) = MLP([s, g]) (no subgoal representation)
    actor_loss  -E[min(exp(alpha (V(s_{t+1}, g) - V(s_t, g))), 100) log pi(a_t | s_t, g)]
"""

from __future__ import annotations

import torch

from hrlzoo.gcrl.nets import GCActor, GCValue, awr_weights
from stages.ota.hiql import mean_value, value_loss  # the same IVL loss

__all__ = ["make_value", "value_loss", "actor_loss"]


def make_value(obs_dim: int, hidden: list[int], seeds: int, layer_norm: bool = True) -> GCValue:
    return GCValue(seeds, obs_dim, hidden, layer_norm, rep_dim=None)


def actor_loss(actor: GCActor, value: GCValue, b: dict, alpha: float) -> tuple[torch.Tensor, dict]:
    with torch.no_grad():
        adv = mean_value(value, b["next_observations"], b["goals"]) - mean_value(value, b["observations"], b["goals"])
    mean = actor(torch.cat([b["observations"], b["goals"]], -1))
    per_seed = -(awr_weights(adv, alpha) * GCActor.log_prob(mean, b["actions"])).mean(-1)
    return per_seed.sum(), {"actor_loss": per_seed.detach(), "adv": adv.mean(-1)}
