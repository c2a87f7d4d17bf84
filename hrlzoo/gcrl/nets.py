"""Goal-conditioned networks of OGBench's agents (`impls/utils/networks.py`), in PyTorch, with a
leading seeds dimension S: every input is [S, B, ...] and every seed has its own weights.

- `GoalRep`: phi([s; g]) = MLP -> length-normalise to norm sqrt(rep_dim) (HIQL's subgoal space).
- `GCValue`: a twin-head value V_1, V_2 over [s, g] (GCIVL) or over [s, phi([s; g])] (HIQL/OTA).
- `GCActor`: a Gaussian with a learned mean and constant std 1 (OGBench `const_std=True`);
  its MLP has no LayerNorm and its mean layer starts at 1e-2 scale, as in OGBench.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hrlzoo.nets.ensemble import EnsembleMLP

LOG_2PI = math.log(2 * math.pi)


def length_normalize(z: torch.Tensor) -> torch.Tensor:
    """z / ||z|| * sqrt(dim): HIQL's LengthNormalize (also applied to the high actor's output)."""
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True) * math.sqrt(z.shape[-1])


class GoalRep(nn.Module):
    def __init__(self, seeds: int, obs_dim: int, hidden: list[int], rep_dim: int, layer_norm: bool = True):
        super().__init__()
        self.mlp = EnsembleMLP(seeds, 2 * obs_dim, [*hidden, rep_dim], layer_norm=layer_norm)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return length_normalize(self.mlp(torch.cat([s, g], -1)))


class GCValue(nn.Module):
    """Twin value heads. forward(s, g) -> [S, 2, B]. With a GoalRep, the input is [s, phi([s; g])]
    and phi belongs to this module (its EMA target copy comes with the target network)."""

    def __init__(self, seeds: int, obs_dim: int, hidden: list[int], layer_norm: bool = True,
                 rep_dim: int | None = None):
        super().__init__()
        self.seeds = seeds
        self.goal_rep = GoalRep(seeds, obs_dim, hidden, rep_dim, layer_norm) if rep_dim else None
        d_in = obs_dim + (rep_dim if rep_dim else obs_dim)
        self.heads = EnsembleMLP(2 * seeds, d_in, [*hidden, 1], layer_norm=layer_norm)

    def forward(self, s: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = torch.cat([s, self.goal_rep(s, g) if self.goal_rep is not None else g], -1)  # [S, B, d]
        S, B, d = x.shape
        x = x.unsqueeze(1).expand(S, 2, B, d).reshape(S * 2, B, d)
        return self.heads(x).reshape(S, 2, B)


class GCActor(nn.Module):
    """pi(a | s, goal-input): mean from an MLP, std = temperature (log std 0)."""

    def __init__(self, seeds: int, d_in: int, hidden: list[int], d_out: int):
        super().__init__()
        self.trunk = EnsembleMLP(seeds, d_in, hidden, activate_final=True)
        self.mean = EnsembleMLP(seeds, hidden[-1], [d_out], final_scale=1e-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean(self.trunk(x))

    @staticmethod
    def log_prob(mean: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """log N(target; mean, I), summed over the last dimension."""
        return -0.5 * ((target - mean) ** 2).sum(-1) - 0.5 * mean.shape[-1] * LOG_2PI


def expectile_loss(adv: torch.Tensor, diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """|kappa - 1(adv < 0)| * diff^2 (OGBench `expectile_loss`: the weight comes from `adv`)."""
    weight = torch.where(adv >= 0, expectile, 1.0 - expectile)
    return weight * diff ** 2


def awr_weights(adv: torch.Tensor, alpha: float) -> torch.Tensor:
    """min(exp(alpha * A), 100), with no gradient."""
    return torch.clamp(torch.exp(alpha * adv.detach()), max=100.0)


def to_torch(batch: dict, device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items() if v.dtype.kind == "f"}
