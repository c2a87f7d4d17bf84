"""MLPs with a leading "members" dimension: M independent networks evaluated as one.

Every weight has shape [M, in, out] and every activation [M, B, features], so M networks cost
one batched matmul per layer instead of M small ones. Members never interact: initialisation
draws each member separately, LayerNorm normalises each sample's features, and Adam is
elementwise, so training M members together is the same as training M separate networks
(each on its own minibatch). We use members for two things at once: the seeds of a run and
the twin heads of a value ensemble (M = seeds x heads).

Layer layout and default initialisation follow OGBench's `impls/utils/networks.py` MLP:
Dense -> GELU -> LayerNorm (LayerNorm only when asked, after the activation), variance-scaling
"fan_avg" uniform kernels (= Xavier uniform) times `scale`, zero biases. The online-RL
algorithms (hrlzoo/algos/{ppo,sac,td3}.py) pick the activation and one of two other schemes:
`init="torch"` initialises every member as `torch.nn.Linear` does (what SB3's SAC/TD3 and
CleanRL's TD3/SAC networks get), `init="orthogonal"` as CleanRL's `layer_init` and SB3's
`ortho_init` (orthogonal kernels, gain sqrt(2) on hidden layers and `final_scale` on the last
one, zero biases). Both draw member by member (all layers of member 0, then member 1, ...),
from one `torch.Generator` per seed when `generators` is given, so member m's weights do not
depend on how many other members share the tensor.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}  # elu: rsl_rl / walk-these-ways actor-critics
INITS = ("xavier", "torch", "orthogonal")


class EnsembleLinear(nn.Module):
    """y[m] = x[m] @ W[m] + b[m] for every member m.

    `init_scale` scales the Xavier (fan_avg) variance; with `xavier=False` the weights are
    left at zero for `init_members_` to fill (no draw from any RNG here)."""

    def __init__(self, members: int, d_in: int, d_out: int, init_scale: float = 1.0, xavier: bool = True):
        super().__init__()
        weight = torch.zeros(members, d_in, d_out)
        if xavier:
            bound = math.sqrt(3.0 * init_scale / ((d_in + d_out) / 2.0))  # variance_scaling fan_avg uniform
            weight.uniform_(-bound, bound)
        self.weight = nn.Parameter(weight)
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
    """M independent MLPs: hidden layers Dense -> activation (-> LayerNorm); the last layer is
    linear unless `activate_final`. `final_scale` scales the last layer's initial weights
    (OGBench's actors use 1e-2; with `init="orthogonal"` it is the last layer's gain, CleanRL's
    0.01 for a policy head and 1.0 for a value head). `activation`: gelu | relu | tanh | elu.
    `init`: xavier (OGBench, from the global RNG) | torch | orthogonal (see the module doc);
    `generators`: None (the global RNG) or G generators, G dividing M, member m drawing from
    generators[m // (M // G)] (so the twin heads of one seed share that seed's generator)."""

    def __init__(self, members: int, d_in: int, dims: Sequence[int], layer_norm: bool = False,
                 activate_final: bool = False, final_scale: float = 1.0, activation: str = "gelu",
                 init: str = "xavier", generators: Sequence[torch.Generator] | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init: expected one of {INITS}, got {init!r}")
        layers: list[nn.Module] = []
        sizes = [d_in, *dims]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(dims) - 1
            layers.append(EnsembleLinear(members, a, b, final_scale if last else 1.0, xavier=init == "xavier"))
            if not last or activate_final:
                # exact GELU: flax uses the tanh form (|diff| < 1e-3), 2.5x slower here
                layers.append(ACTIVATIONS[activation]())
                if layer_norm:
                    layers.append(EnsembleLayerNorm(members, b))
        self.net = nn.Sequential(*layers)
        self.members = members
        if init != "xavier":
            init_members_(self, init, final_scale, generators)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def init_members_(mlp: EnsembleMLP, scheme: str, final_scale: float = 1.0,
                  generators: Sequence[torch.Generator] | None = None) -> None:
    """Re-draw every member's weights, member by member (all layers of member m, then m + 1).

    torch:      W ~ kaiming_uniform(a=sqrt(5)) and b ~ U(+-1/sqrt(fan_in)) drawn on the [out, in]
                matrix, exactly `torch.nn.Linear.reset_parameters`; the last layer's W times
                `final_scale`.
    orthogonal: W = orthogonal(gain) on [out, in], gain sqrt(2) for hidden layers and
                `final_scale` for the last, b = 0: CleanRL's `layer_init` (ppo*.py) and SB3's
                `ActorCriticPolicy` with ortho_init=True."""
    linears = [m for m in mlp.net if isinstance(m, EnsembleLinear)]
    members = mlp.members
    if generators is not None and (len(generators) == 0 or members % len(generators)):
        raise ValueError(f"generators: {len(generators)} do not divide {members} members")
    per_gen = members // len(generators) if generators else members
    for m in range(members):
        gen = generators[m // per_gen] if generators else None
        for i, lin in enumerate(linears):
            last = i == len(linears) - 1
            d_in, d_out = lin.weight.shape[1:]
            w = torch.empty(d_out, d_in)
            if scheme == "torch":
                nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
                bound = 1 / math.sqrt(d_in) if d_in > 0 else 0.0
                b = torch.empty(d_out).uniform_(-bound, bound, generator=gen)
                if last and final_scale != 1.0:
                    w.mul_(final_scale)
            elif scheme == "orthogonal":
                nn.init.orthogonal_(w, gain=final_scale if last else math.sqrt(2), generator=gen)
                b = torch.zeros(d_out)
            else:
                raise ValueError(f"init: expected torch or orthogonal, got {scheme!r}")
            lin.weight[m].copy_(w.t())
            lin.bias[m, 0].copy_(b)


@torch.no_grad()
def clip_grad_norm_members_(params: Sequence[torch.Tensor], max_norm: float, members: int) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` for each member on its own: member m's gradients (slice
    m of the leading dimension of every parameter) are scaled by min(1, max_norm / (|g_m| + 1e-6)),
    |g_m| the L2 norm over all of member m's gradients, so members never affect each other.
    Returns the per-member norms before clipping, [members]."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(members)
    per_param = torch.stack([torch.linalg.vector_norm(g.reshape(members, -1), dim=1) for g in grads])
    norms = torch.linalg.vector_norm(per_param, dim=0)
    coef = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, [coef.view(members, *([1] * (g.dim() - 1))) for g in grads])
    return norms


def randn_members(generators: Sequence[torch.Generator], shape: Sequence[int], device=None) -> torch.Tensor:
    """[len(generators), *shape] standard normals, member m's from generators[m] alone (so a
    seed's noise does not depend on how many seeds run beside it)."""
    return torch.stack([torch.randn(tuple(shape), generator=g, device=device) for g in generators])


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, parameter by parameter."""
    for tp, p in zip(target.parameters(), online.parameters()):
        tp.lerp_(p, tau)
