"""HAMNet's networks, with a leading seeds ("members") dimension on every weight (hrlzoo/nets/ensemble.py).

- `PatchEncoder`: CORN's contact encoder (iMSquared/corn `pkm/scripts/pretrain/uni/model_col.py`,
  `ColModel`: point patches -> MLP patch tokeniser + MLP position encoding, a hand-state token,
  a transformer encoder), here over 2-D object and environment point patches (UNICORN's variant
  with an environment cloud), and its pretext heads (`ContactHeads`: per-patch contact logits,
  CORN's decoder_c_h / decoder_c_e MLPs).
- `HAMNet`: the hierarchical modular actor-critic of iMSquared/HAMNet
  `ham/models/rl/net/hypernet_modular.py` (`ModularHyperActionValueNet` with `scaling`,
  `scale_bias`, `fuse_scale`, `cross_global`/`cross_local` + `cross_big`, `use_local_shape`, as
  `rss_train.yaml` sets them): the modulation network (`NodeModulationNetworkWithGate`) maps the
  context to a softmax over M modules for every parameter tensor of the base networks and to
  gates 1 + h(z) per hidden unit (weights and biases); the base networks (`GateModMLP`) compute
  y = tanh(LN(g_W * (sum_m p_W,m W_m) x + g_b * (sum_m p_b,m b_m))) with a plain last layer.
- `Monolithic`: the baseline, one MLP actor and one MLP critic on the same inputs (context and
  base inputs concatenated), widths chosen to match HAMNet's parameter count.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from hrlzoo.nets.ensemble import EnsembleLayerNorm, EnsembleLinear, EnsembleMLP


def _lin(S: int, d_in: int, d_out: int, gens=None) -> EnsembleLinear:
    """An ensemble linear layer initialised as torch.nn.Linear, member by member."""
    lin = EnsembleLinear(S, d_in, d_out, xavier=False)
    with torch.no_grad():
        for m in range(S):
            g = gens[m] if gens is not None else None
            w = torch.empty(d_out, d_in)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
            lin.weight[m].copy_(w.t())
            lin.bias[m, 0].uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in), generator=g)
    return lin


class _Apply(nn.Module):
    """Applies an [S, n, d] module to [S, ..., d] (flattens the middle dimensions)."""

    def __init__(self, mod: nn.Module):
        super().__init__()
        self.mod = mod

    def forward(self, x):
        s = x.shape
        return self.mod(x.reshape(s[0], -1, s[-1])).reshape(*s[:-1], -1)


class MLP(nn.Module):
    """HAMNet's `ham.models.common.MLP` with use_ln: Linear -> LayerNorm -> GELU on every layer but
    the last (`activate_output`: the last too), per member."""

    def __init__(self, S: int, dims: Sequence[int], activate_output: bool = False, gens=None):
        super().__init__()
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(_lin(S, a, b, gens))
            if i < len(dims) - 2 or activate_output:
                layers += [EnsembleLayerNorm(S, b), nn.GELU()]
        self.net = _Apply(nn.Sequential(*layers))

    def forward(self, x):
        return self.net(x)


class Attention(nn.Module):
    """Multi-head attention per member: q [S, B, Tq, d], kv [S, B, Tk, d] -> [S, B, Tq, d]."""

    def __init__(self, S: int, d: int, heads: int, gens=None):
        super().__init__()
        self.h = heads
        self.q, self.k, self.v, self.o = (_Apply(_lin(S, d, d, gens)) for _ in range(4))

    def forward(self, q, kv):
        S, B, Tq, d = q.shape
        Tk = kv.shape[2]
        h, dh = self.h, d // self.h
        Q = self.q(q).reshape(S, B, Tq, h, dh)
        K = self.k(kv).reshape(S, B, Tk, h, dh)
        V = self.v(kv).reshape(S, B, Tk, h, dh)
        a = torch.softmax(torch.einsum("sbqhd,sbkhd->sbhqk", Q, K) / math.sqrt(dh), -1)
        return self.o(torch.einsum("sbhqk,sbkhd->sbqhd", a, V).reshape(S, B, Tq, d))


class Block(nn.Module):
    """Pre-LN transformer block (attention + 4x GELU MLP), per member."""

    def __init__(self, S: int, d: int, heads: int, gens=None):
        super().__init__()
        self.ln1, self.ln2 = _Apply(EnsembleLayerNorm(S, d)), _Apply(EnsembleLayerNorm(S, d))
        self.attn = Attention(S, d, heads, gens)
        self.mlp = _Apply(nn.Sequential(_lin(S, d, 4 * d, gens), nn.GELU(), _lin(S, 4 * d, d, gens)))

    def forward(self, x):
        y = self.ln1(x)
        x = x + self.attn(y, y)
        return x + self.mlp(self.ln2(x))


def patches(cloud: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cloud [..., K, 2] (points in angular order) -> (points relative to their patch centre
    [..., K / patch, patch, 2], patch centres [..., K / patch, 2]). Consecutive points of an
    angularly sorted 2-D cloud form our patches (CORN groups by FPS + kNN)."""
    g = cloud.reshape(*cloud.shape[:-2], cloud.shape[-2] // patch, patch, 2)
    c = g.mean(-2)
    return g - c.unsqueeze(-2), c


class PatchEncoder(nn.Module):
    """CORN's patch transformer, 2-D: tokens = [hand, object patches, environment patches]."""

    def __init__(self, S: int, patch: int, d: int, layers: int, heads: int, hand_dim: int = 4, gens=None):
        super().__init__()
        self.patch, self.d = patch, d
        self.tok = MLP(S, (2 * patch, d, d), gens=gens)       # CORN patch_type mlp
        self.pos = MLP(S, (2, d, d), gens=gens)               # CORN pos_enc_type mlp
        self.hand = MLP(S, (hand_dim, d), gens=gens)         # the 'hand_state' key token
        self.kind = nn.Parameter(torch.zeros(S, 1, 1, 2, d))  # object / environment patch embedding
        self.blocks = nn.ModuleList([Block(S, d, heads, gens) for _ in range(layers)])
        self.ln = _Apply(EnsembleLayerNorm(S, d))

    def forward(self, obj_cloud, env_cloud, hand):
        """obj_cloud [S, B, Ko, 2], env_cloud [S, B, Ke, 2], hand [S, B, hand_dim] ->
        tokens [S, B, 1 + Ko/patch + Ke/patch, d] (hand token first, as CORN's keys)."""
        toks = []
        for j, cl in enumerate((obj_cloud, env_cloud)):
            g, c = patches(cl, self.patch)
            toks.append(self.tok(g.flatten(-2)) + self.pos(c) + self.kind[..., j, :])
        x = torch.cat([self.hand(hand).unsqueeze(2), *toks], 2)
        for b in self.blocks:
            x = b(x)
        return self.ln(x)


class ContactHeads(nn.Module):
    """CORN's pretext decoders: per object patch, 'any point touches the hand' (decoder_c_h); per
    environment patch, 'any point touches the object' (decoder_c_e; CORN's ColModel applies
    decoder_c_h to both, we give each its own). MLP (d, d, d, 1) with LayerNorm."""

    def __init__(self, S: int, d: int, gens=None):
        super().__init__()
        self.c_h = MLP(S, (d, d, d, 1), gens=gens)
        self.c_e = MLP(S, (d, d, d, 1), gens=gens)

    def forward(self, tokens, n_obj: int):
        return self.c_h(tokens[:, :, 1:1 + n_obj]).squeeze(-1), self.c_e(tokens[:, :, 1 + n_obj:]).squeeze(-1)


class CrossPool(nn.Module):
    """HAMNet's cross-attention pooling with `cross_big`: query MLP (Linear, LN, GELU) from state
    keys, key/value MLP on the tokens, one multi-head cross-attention, projection MLP."""

    def __init__(self, S: int, q_dim: int, d: int, emb: int, heads: int, proj: Sequence[int], gens=None):
        super().__init__()
        self.q = MLP(S, (q_dim, emb), activate_output=True, gens=gens)
        self.kv = MLP(S, (d, emb), activate_output=True, gens=gens)
        self.attn = Attention(S, emb, heads, gens)
        self.proj = MLP(S, (emb, *proj), gens=gens)

    def forward(self, q, tokens):
        return self.proj(self.attn(self.q(q).unsqueeze(2), self.kv(tokens)).squeeze(2))


class Inputs(nn.Module):
    """The shared front of HAMNet and the monolithic baseline: the (frozen or trainable) contact
    encoder, the environment cross-attention (HAMNet's peripheral/focal pooling, query from hand and
    object state) and the local shape embedding (object patch tokens attended by a query from object
    state, goal and hand state, `use_local_shape`). Returns (context, base input)."""

    def __init__(self, S: int, layout: dict, enc_cfg: dict, emb: int, heads: int, proj: Sequence[int],
                 encoded: bool, gens=None):
        super().__init__()
        self.L = layout
        self.encoded = encoded
        d = enc_cfg["dim"]
        self.d = d
        # encoded: the observation carries the frozen pretrained encoder's tokens (`EncodedEnv`, as
        # HAMNet's env wrapper puts UNICORN's embeddings into the observation); else the encoder
        # is part of the policy and trained with it, from scratch
        self.encoder = None if encoded else PatchEncoder(S, enc_cfg["patch"], d, enc_cfg["layers"], enc_cfg["heads"],
                                                         gens=gens)
        n = lambda k: layout[k].stop - layout[k].start
        self.state_dim = n("object_state") + n("goal") + n("goal_rel") + n("previous_action") + n("hand_state")
        self.env_pool = CrossPool(S, n("hand_state") + n("object_state"), d, emb, heads, proj, gens)
        self.shape_pool = CrossPool(S, n("object_state") + n("goal") + n("goal_rel") + n("hand_state"), d, emb, heads,
                                    proj, gens)
        self.n_obj = n("object_cloud") // 2 // enc_cfg["patch"]
        self.ctx_dim = d + proj[-1] + n("phys_params") + self.state_dim
        self.base_dim = proj[-1] + self.state_dim

    def tokens(self, obs):
        L = self.L
        if self.encoded:
            return obs[..., L["tokens"]].unflatten(-1, (-1, self.d))
        oc = obs[..., L["object_cloud"]].unflatten(-1, (-1, 2))
        ec = obs[..., L["env_cloud"]].unflatten(-1, (-1, 2))
        return self.encoder(oc, ec, obs[..., L["hand_state"]])

    def forward(self, obs):
        L = self.L
        z = self.tokens(obs)
        g = lambda k: obs[..., L[k]]
        states = torch.cat([g("object_state"), g("goal"), g("goal_rel"), g("previous_action"), g("hand_state")], -1)
        env = self.env_pool(torch.cat([g("hand_state"), g("object_state")], -1), z[:, :, 1 + self.n_obj:])
        shape = self.shape_pool(torch.cat([g("object_state"), g("goal"), g("goal_rel"), g("hand_state")], -1),
                                z[:, :, 1:1 + self.n_obj])
        ctx = torch.cat([z[:, :, 0], env, g("phys_params"), states], -1)
        base = torch.cat([shape, states], -1)
        return ctx, base


class HAMNet(nn.Module):
    """The hierarchical modular actor-critic (module doc). `modulation(obs)` also returns the module
    probabilities, for the module-usage analysis."""

    def __init__(self, inputs: Inputs, S: int, act_dim: int, hidden: Sequence[int], modules: int,
                 wnet: Sequence[int], gate_init: float = 0.008, gens=None):
        super().__init__()
        self.inputs, self.M, self.S = inputs, modules, S
        din = inputs.base_dim
        self.dims = {"actor": [din, *hidden, act_dim], "critic": [din, *hidden, 1]}
        # M parameter sets of the base networks: each module's weights drawn as torch.nn.Linear
        # (HAMNet builds M ActionValueSubnets and stacks their parameters)
        self.W = nn.ParameterList()
        self.b = nn.ParameterList()
        for net in ("actor", "critic"):
            for a, b_ in zip(self.dims[net][:-1], self.dims[net][1:]):
                W = torch.empty(S, modules, b_, a)
                bias = torch.empty(S, modules, b_)
                for s in range(S):
                    g = gens[s] if gens is not None else None
                    for m in range(modules):
                        nn.init.kaiming_uniform_(W[s, m], a=math.sqrt(5), generator=g)
                        bias[s, m].uniform_(-1 / math.sqrt(a), 1 / math.sqrt(a), generator=g)
                self.W.append(nn.Parameter(W))
                self.b.append(nn.Parameter(bias))
        self.num_param = 2 * len(self.W)   # every weight and every bias, actor then critic
        # NodeModulationNetworkWithGate: shared backbone MLP (LN, GELU, activated output),
        # logits head, fused gate head (U(+-init_std) weights, zero bias) over the hidden units
        self.bb = MLP(S, (inputs.ctx_dim, *wnet), activate_output=True, gens=gens)
        self.logits = _Apply(_lin(S, wnet[-1], self.num_param * modules, gens))
        self.targets = [h for _ in ("actor", "critic") for h in hidden for _ in (0, 1)]  # (W, b) per hidden layer
        head = _lin(S, wnet[-1], sum(self.targets), gens)
        with torch.no_grad():
            for s in range(S):
                head.weight[s].uniform_(-gate_init, gate_init, generator=gens[s] if gens is not None else None)
            head.bias.zero_()
        self.scale_head = _Apply(head)

    def modulation(self, ctx):
        z = self.bb(ctx)
        p = torch.softmax(self.logits(z).unflatten(-1, (self.num_param, self.M)), -1)  # [S, B, P, M]
        gates = torch.split(1.0 + self.scale_head(z), self.targets, -1)
        return p, gates

    def _base(self, x, p, gates, layers: range, gate_offset: int):
        n = len(layers)
        for j, li in enumerate(layers):
            W, b = self.W[li], self.b[li]
            pW, pb = p[:, :, 2 * li], p[:, :, 2 * li + 1]                       # [S, B, M]
            Wx = torch.einsum("sbm,sbmi->sbi", pW, torch.einsum("sbj,smij->sbmi", x, W))
            bias = torch.einsum("sbm,smi->sbi", pb, b)
            if j < n - 1:   # hidden layer: gated, LayerNorm without affine, tanh
                gW, gb = gates[gate_offset + 2 * j], gates[gate_offset + 2 * j + 1]
                x = torch.tanh(nn.functional.layer_norm(gW * Wx + gb * bias, (Wx.shape[-1],)))
            else:           # last layer: ungated (HAMNet pads its gates with ones), linear
                x = Wx + bias
        return x

    def forward(self, obs):
        ctx, base = self.inputs(obs)
        p, gates = self.modulation(ctx)
        la = len(self.dims["actor"]) - 1
        lc = len(self.dims["critic"]) - 1
        act = self._base(base, p, gates, range(0, la), 0)
        val = self._base(base, p, gates, range(la, la + lc), 2 * (la - 1))
        return act, val.squeeze(-1)

    def module_probs(self, obs):
        with torch.no_grad():
            ctx, _ = self.inputs(obs)
            return self.modulation(ctx)[0]


class Monolithic(nn.Module):
    """The monolithic baseline: separate MLP actor and critic (tanh, LayerNorm) on [context, base input]."""

    def __init__(self, inputs: Inputs, S: int, act_dim: int, hidden: Sequence[int], gens=None):
        super().__init__()
        self.inputs = inputs
        d = inputs.ctx_dim + inputs.base_dim
        self.actor = EnsembleMLP(S, d, [*hidden, act_dim], layer_norm=True, activation="tanh", init="torch",
                                 generators=gens)
        self.critic = EnsembleMLP(S, d, [*hidden, 1], layer_norm=True, activation="tanh", init="torch", generators=gens)

    def forward(self, obs):
        ctx, base = self.inputs(obs)
        x = torch.cat([ctx, base], -1)
        return self.actor(x), self.critic(x).squeeze(-1)


def count(module: nn.Module, members: int) -> int:
    """Trainable parameters of one member."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad) // members


def monolithic_width(inputs_dim: int, act_dim: int, depth: int, target: int) -> int:
    """The width w of a depth-`depth` actor + critic MLP (with LayerNorm) whose parameter count is
    closest to `target` (HAMNet's modulation network + its M base-network parameter sets)."""
    def n(w):
        one = lambda out: (inputs_dim * w + w + 2 * w) + (depth - 1) * (w * w + 3 * w) + (w * out + out)
        return one(act_dim) + one(1)
    return min(range(4, 4096), key=lambda w: abs(n(w) - target))
