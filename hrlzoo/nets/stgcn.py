"""ST-GCN (Yan et al., 2018) with a leading "members" dimension: M independent encoders as one.

The layers follow the encoder that HiCLR, AimCLR and CrosSCLR share (JHang2020/HiCLR
`net/st_gcn.py`, `net/utils/tgcn.py`, `net/utils/graph.py`):

* a graph convolution (`ConvTemporalGraphical`): a 1x1 convolution to K x C_out channels, then
  `einsum('nkctv,kvw->nctw')` with the K partitions of the adjacency (K = 3 for the "spatial"
  strategy: root, centripetal, centrifugal), each multiplied by a learnable edge-importance
  mask of ones;
* a block (`st_gcn`): residual (none in the first block, identity when the shape is kept,
  else 1x1 strided convolution + BN) + graph conv -> BN -> ReLU -> temporal conv (9 x 1,
  stride s) -> BN -> Dropout, then ReLU;
* `data_bn`, a BatchNorm1d over (joint, channel) pairs of the input, before the blocks;
* global average pooling over time and joints, then `fc`.

Members: every weight belongs to one of M encoders (seeds trained together). Convolutions are
grouped (`groups=M`), BatchNorm normalises each member's channels on that member's own
minibatch, the graph product multiplies member m's features by member m's edge importances, and
the head is an `EnsembleLinear`. Member m reads channels [m*C, (m+1)*C) of every activation, so
members never interact and training M of them on their own batches is training M networks.

Inputs are [M, N, C, T, V] (member, sample, xyz, frame, joint): one person (the official code
also takes a person axis M_p and averages over it after pooling; our generated data has one
actor per sequence). Outputs are [M, N, features].

Initialisation (`official_init`) is the official `weights_init` of processor/pretrain.py:
conv and linear weights N(0, 0.02), biases 0, BatchNorm weights N(1, 0.02), biases 0, drawn
for each member separately.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from hrlzoo.nets.ensemble import EnsembleLinear

# NTU RGB+D 25-joint layout, 1-based pairs as in net/utils/graph.py (layout 'ntu-rgb+d'), centre 21.
NTU_NEIGHBOURS = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                  (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
                  (20, 19), (22, 23), (23, 8), (24, 25), (25, 12))
NTU_CENTER = 21 - 1
NTU_JOINTS = 25


def hop_distance(num_node: int, edges: Sequence[tuple[int, int]], max_hop: int = 1) -> np.ndarray:
    """Hops between joints (inf beyond max_hop), as graph.get_hop_distance."""
    a = np.zeros((num_node, num_node))
    for i, j in edges:
        a[j, i] = a[i, j] = 1
    hop = np.full((num_node, num_node), np.inf)
    reach = np.stack([np.linalg.matrix_power(a, d) for d in range(max_hop + 1)]) > 0
    for d in range(max_hop, -1, -1):
        hop[reach[d]] = d
    return hop


def spatial_adjacency(num_node: int = NTU_JOINTS, neighbours=NTU_NEIGHBOURS, center: int = NTU_CENTER) -> np.ndarray:
    """The 'spatial' partition strategy with max_hop 1 (graph.Graph.get_adjacency): [3, V, V],
    root / closer to the centre / further from it, of the column-normalised adjacency."""
    edges = [(i, i) for i in range(num_node)] + [(i - 1, j - 1) for i, j in neighbours]
    hop = hop_distance(num_node, edges, 1)
    adj = (hop <= 1).astype(np.float64)
    deg = adj.sum(0)
    norm = adj @ np.diag(np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0.0))
    parts = []
    for h in (0, 1):
        root, close, far = (np.zeros((num_node, num_node)) for _ in range(3))
        for i in range(num_node):
            for j in range(num_node):
                if hop[j, i] == h:
                    if hop[j, center] == hop[i, center]:
                        root[j, i] = norm[j, i]
                    elif hop[j, center] > hop[i, center]:
                        close[j, i] = norm[j, i]
                    else:
                        far[j, i] = norm[j, i]
        if h == 0:
            parts.append(root)
        else:
            parts += [root + close, far]
    return np.stack(parts).astype(np.float32)


class MemberBN(nn.Module):
    """BatchNorm over [N, M*C, ...] channels: per member and channel, on the member's batch."""

    def __init__(self, members: int, channels: int, dims: int = 2):
        super().__init__()
        self.bn = (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(members * channels)

    def forward(self, x):
        return self.bn(x)


class GraphConv(nn.Module):
    """ConvTemporalGraphical with members: x [N, M*C_in, T, V], A [K, V, V] * importance [M, K, V, V]."""

    def __init__(self, members: int, c_in: int, c_out: int, k: int):
        super().__init__()
        self.members, self.c_out, self.k = members, c_out, k
        self.conv = nn.Conv2d(members * c_in, members * c_out * k, 1, groups=members)

    def forward(self, x, a):  # a: [M, K, V, V]
        x = self.conv(x)
        n, _, t, v = x.shape
        x = x.view(n, self.members, self.k, self.c_out, t, v)
        return torch.einsum("nmkctv,mkvw->nmctw", x, a).reshape(n, self.members * self.c_out, t, v)


class Block(nn.Module):
    """One st_gcn block (net/st_gcn.py) for M members."""

    def __init__(self, members: int, c_in: int, c_out: int, k: int, stride: int = 1, dropout: float = 0.0,
                 residual: bool = True, t_kernel: int = 9):
        super().__init__()
        m = members
        self.gcn = GraphConv(m, c_in, c_out, k)
        self.tcn = nn.Sequential(
            MemberBN(m, c_out), nn.ReLU(inplace=True),
            nn.Conv2d(m * c_out, m * c_out, (t_kernel, 1), (stride, 1), ((t_kernel - 1) // 2, 0), groups=m),
            MemberBN(m, c_out), nn.Dropout(dropout, inplace=True))
        if not residual:
            self.residual = None
            self.kind = "none"
        elif c_in == c_out and stride == 1:
            self.residual = None
            self.kind = "identity"
        else:
            self.residual = nn.Sequential(nn.Conv2d(m * c_in, m * c_out, 1, (stride, 1), groups=m), MemberBN(m, c_out))
            self.kind = "conv"
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x, a):
        if self.kind == "none":
            res = 0
        elif self.kind == "identity":
            res = x
        else:
            res = self.residual(x)
        return self.relu(self.tcn(self.gcn(x, a)) + res)


class STGCN(nn.Module):
    """M ST-GCN encoders. `channels[i]`, `strides[i]`: block i's output width and temporal stride
    (the official 10 blocks: channels [16]*4 + [32]*3 + [64]*2 + [256], strides 1,1,1,1,2,1,1,2,1,1;
    the first block has no residual and no dropout). `head`: widths of the layers after pooling
    (e.g. [256, 128]: Linear-ReLU-Linear, the MoCo projector; [classes]: a linear classifier;
    []: features only). Returns (features [M, N, channels[-1]], head output [M, N, head[-1]])."""

    def __init__(self, members: int, channels: Sequence[int], strides: Sequence[int], head: Sequence[int] = (),
                 in_channels: int = 3, dropout: float = 0.5, num_node: int = NTU_JOINTS, t_kernel: int = 9):
        super().__init__()
        if len(channels) != len(strides) or not channels:
            raise ValueError("channels and strides: expected equal, non-empty lists")
        a = torch.from_numpy(spatial_adjacency(num_node))
        self.register_buffer("A", a)
        k = a.shape[0]
        self.members, self.in_channels, self.num_node = members, in_channels, num_node
        self.data_bn = MemberBN(members, in_channels * num_node, dims=1)
        blocks, c = [], in_channels
        for i, (co, s) in enumerate(zip(channels, strides)):
            blocks.append(Block(members, c, co, k, s, dropout=0.0 if i == 0 else dropout, residual=i > 0,
                                t_kernel=t_kernel))
            c = co
        self.blocks = nn.ModuleList(blocks)
        self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones(members, *a.shape)) for _ in blocks])
        self.feature_dim = c
        layers: list[nn.Module] = []
        for i, d in enumerate(head):
            layers.append(EnsembleLinear(members, c, d))
            if i < len(head) - 1:
                layers.append(nn.ReLU())
            c = d
        self.head = nn.Sequential(*layers)
        self.out_dim = c

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x [M, N, C, T, V] -> pooled features [M, N, channels[-1]]."""
        m, n, c, t, v = x.shape
        assert m == self.members and c == self.in_channels and v == self.num_node, x.shape
        # data_bn over (member, joint, channel) as the official (N*M_p, V*C, T) layout
        h = x.permute(1, 0, 4, 2, 3).reshape(n, m * v * c, t)
        h = self.data_bn(h).view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n, m * c, t, v)
        for blk, imp in zip(self.blocks, self.edge_importance):
            h = blk(h, self.A.unsqueeze(0) * imp)
        h = h.mean(dim=(2, 3))  # avg_pool2d over (T, V)
        return h.view(n, m, -1).transpose(0, 1)

    def forward(self, x: torch.Tensor):
        f = self.features(x)
        return f, self.head(f)


INITS = ("official", "default")


def init_members(module: nn.Module, generators: Sequence[torch.Generator], kind: str = "official") -> None:
    """`official_init` or `default_init` (see each)."""
    if kind == "official":
        official_init(module, generators)
    elif kind == "default":
        default_init(module, generators)
    else:
        raise ValueError(f"init: expected one of {INITS}, got {kind!r}")


@torch.no_grad()
def default_init(module: nn.Module, generators: Sequence[torch.Generator]) -> None:
    """PyTorch's own initialisation of Conv2d / Linear (weights and biases U(-1/sqrt(fan_in),
    1/sqrt(fan_in)): kaiming_uniform with a = sqrt(5)) and BatchNorm (weight 1, bias 0), drawn
    for every member from its own generator."""
    m = len(generators)

    def uniform(shape, bound):
        return torch.stack([(torch.rand(shape, generator=g) * 2 - 1) * bound for g in generators])

    for mod in module.modules():
        if isinstance(mod, nn.Conv2d):
            w = mod.weight
            per = (w.shape[0] // m, *w.shape[1:])
            bound = 1.0 / np.sqrt(np.prod(w.shape[1:]))
            w.copy_(uniform(per, bound).reshape(w.shape))
            if mod.bias is not None:
                mod.bias.copy_(uniform((w.shape[0] // m,), bound).reshape(-1))
        elif isinstance(mod, EnsembleLinear):
            bound = 1.0 / np.sqrt(mod.weight.shape[1])
            mod.weight.copy_(uniform(mod.weight.shape[1:], bound))
            mod.bias.copy_(uniform(mod.bias.shape[1:], bound))
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.weight.fill_(1.0)
            mod.bias.zero_()


@torch.no_grad()
def official_init(module: nn.Module, generators: Sequence[torch.Generator]) -> None:
    """processor/pretrain.py `weights_init` for every member: conv/linear weights N(0, 0.02),
    biases 0; BatchNorm weights N(1, 0.02), biases 0. Member m draws from generators[m] only,
    so its initial weights do not depend on how many members are trained beside it."""
    m = len(generators)

    def draw(shape_per_member, mean):
        return torch.stack([torch.randn(shape_per_member, generator=g) * 0.02 + mean for g in generators])

    for mod in module.modules():
        if isinstance(mod, nn.Conv2d):
            w = mod.weight  # [M*Cout, Cin/groups, kh, kw], member-major along dim 0
            per = (w.shape[0] // m, *w.shape[1:])
            w.copy_(draw(per, 0.0).reshape(w.shape))
            if mod.bias is not None:
                mod.bias.zero_()
        elif isinstance(mod, EnsembleLinear):
            mod.weight.copy_(draw(mod.weight.shape[1:], 0.0))
            mod.bias.zero_()
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            per = (mod.weight.shape[0] // m,)
            mod.weight.copy_(draw(per, 1.0).reshape(-1))
            mod.bias.zero_()
