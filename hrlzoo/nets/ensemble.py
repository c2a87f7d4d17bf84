"""MLPs with a leading "members" dimension: M independent networks evaluated as one.

Every weight has shape [M, in, out] and every activation [M, B, features], so M networks cost
one batched matmul per layer instead of M small ones. Members never interact: initialisation
draws each member separately, LayerNorm normalises each sample's features, and Adam is
elementwise, so training M members together is the same as training M separate networks
(each on its own minibatch). We use members for two things at once: the seeds of a run and
the twin heads of a value ensemble (M = seeds x heads).

Layer layout and initialisation follow OGBench's `impls/utils/networks.py` MLP: Dense ->
GELU -> LayerNorm (LayerNorm only when asked, after the activation), variance-scaling
"fan_avg" uniform kernels (= Xavier uniform) times `scale`, zero biases.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class EnsembleLinear(nn.Module):
    """y[m] = x[m] @ W[m] + b[m] for every member m."""

    def __init__(self, members: int, d_in: int, d_out: int, init_scale: float = 1.0):
        super().__init__()
        bound = math.sqrt(3.0 * init_scale / ((d_in + d_out) / 2.0))  # variance_scaling fan_avg uniform
        self.weight = nn.Parameter(torch.empty(members, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(members, 1, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [M, B, d_in]
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dimension with a separate affine per member."""

    def __init__(self, members: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, d))
        self.bias = nn.Parameter(torch.zeros(members, 1, d))
        self.d = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.layer_norm(x, (self.d,), eps=1e-6) * self.weight + self.bias


class EnsembleMLP(nn.Module):
    """M independent MLPs: hidden layers Dense -> GELU (-> LayerNorm); the last layer is linear
    unless `activate_final`. `final_scale` scales the last layer's initial weights (OGBench's
    actors use 1e-2)."""

    def __init__(self, members: int, d_in: int, dims: Sequence[int], layer_norm: bool = False,
                 activate_final: bool = False, final_scale: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [d_in, *dims]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(dims) - 1
            layers.append(EnsembleLinear(members, a, b, final_scale if last else 1.0))
            if not last or activate_final:
                layers.append(nn.GELU())  # exact GELU: flax uses the tanh form (|diff| < 1e-3), 2.5x slower here
                if layer_norm:
                    layers.append(EnsembleLayerNorm(members, b))
        self.net = nn.Sequential(*layers)
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, parameter by parameter."""
    for tp, p in zip(target.parameters(), online.parameters()):
        tp.lerp_(p, tau)
