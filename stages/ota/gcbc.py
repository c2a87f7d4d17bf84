"""GCBC: goal-conditioned behaviour cloning (OGBench `impls/agents/gcbc.py`).

    actor_loss = -E[log pi(a_t | s_t, g)],  g a future state of the same trajectory (uniform)
"""

from __future__ import annotations

import torch

from hrlzoo.gcrl.nets import GCActor


def make_actor(obs_dim: int, action_dim: int, hidden: list[int], seeds: int) -> GCActor:
    return GCActor(seeds, 2 * obs_dim, hidden, action_dim)


def actor_loss(actor: GCActor, b: dict) -> tuple[torch.Tensor, dict]:
    mean = actor(torch.cat([b["observations"], b["goals"]], -1))
    per_seed = -GCActor.log_prob(mean, b["actions"]).mean(-1)
    return per_seed.sum(), {"actor_loss": per_seed.detach()}


@torch.no_grad()
def act(actor: GCActor, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return actor(torch.cat([s, g], -1)).clamp(-1.0, 1.0)
