"""HiCLR's core, in one file: the views (augmentations), the streams, the joint mask, the MoCo
model with its three query branches, and the losses, as the official code has them
(JHang2020/HiCLR; file names below are that repository's).

Every tensor carries a leading members axis M: the seeds trained together (hrlzoo/nets/stgcn.py).
Skeletons are [M, B, 3, T, 25]; each member draws its views from its own torch.Generator.

Views (feeder/ntu_feeder.py `Feeder_triple`, feeder/tools.py):
    v_0, v_k  basic  = temporal crop (mirror-pad T//6 frames at each end, random window of T)
                       + shear (3x3, off-diagonals U(-0.5, 0.5))
    v_1, v_2  strong = basic + spatial flip (p 0.5) + rotation (main axis U(0, 30 deg), the
                       others U(0, 1 deg)) + Gaussian noise (sigma 0.01, p 0.5) + temporal Gaussian
                       blur (kernel 15, sigma U(0.1, 2), p 0.5; the official kernel is NOT
                       normalised, see `gaussian_blur`) + zeroing one axis (p 0.5)
    v_2 additionally gets the joint mask after the stream transform (processor/utils.py
    `Jointmask`, ratio 0.1: int(0.1 * 25) = 2 joints per frame, one pattern per minibatch, set to
    a learnable scalar; net/hiclr.py `forward_pretrain_wmask`).

Losses (processor/pretrain_hiclr.py, net/hiclr.py), with l_b = [q_b . k, q_b . queue] / tau:
    L_info = CE(l_0, 0)                                  (InfoNCE of the basic view)
    L_h1   = -mean sum softmax(l_0).detach() * log softmax(l_1)   (strong toward basic)
    L_h2   = -mean sum softmax(l_1).detach() * log softmax(l_2)   (masked toward strong)
    HiCLR: L = L_info + (L_h1 + L_h2) / 2
After the mining epoch, L_info becomes AimCLR's nearest-neighbour-mining loss: the top-1 queue
entry of every branch joins the positive (`nnm_loss`).

Methods (METHODS):
    hiclr         the three branches, both hierarchy levels (the paper)
    no_h2         basic + strong branches, L = L_info + L_h1: HiCLR without its second level
    skeletonclr   MoCo on the basic views only (net/skeletonclr.py), no mining
    naive_strong  MoCo with the strong view as the query, key basic, no mining: strong
                  augmentation placed directly in InfoNCE (our reading of the paper's baseline)
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from hrlzoo.envs.skeleton import BONES, FLIP_ORDER
from hrlzoo.nets.stgcn import STGCN, init_members

METHODS = ("skeletonclr", "naive_strong", "no_h2", "hiclr")
BRANCHES = {"skeletonclr": ("basic",), "naive_strong": ("strong",), "no_h2": ("basic", "strong"),
            "hiclr": ("basic", "strong", "masked")}
MINING = {"skeletonclr": False, "naive_strong": False, "no_h2": True, "hiclr": True}
STREAMS = ("joint", "motion", "bone")

# --------------------------------------------------------------------------- streams


def to_stream(x: torch.Tensor, stream: str) -> torch.Tensor:
    """joint: as is; motion: x[t+1] - x[t] (last frame 0); bone: joint - its partner in the
    official Bone list (joint 21's bone is 0). x [..., 3, T, V]."""
    if stream == "joint":
        return x
    if stream == "motion":
        out = torch.zeros_like(x)
        out[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
        return out
    if stream == "bone":
        child = torch.tensor([a - 1 for a, _ in BONES])
        parent = torch.tensor([b - 1 for _, b in BONES])
        out = torch.zeros_like(x)
        out[..., child] = x[..., child] - x[..., parent]
        return out
    raise ValueError(f"unknown stream {stream!r}")


# --------------------------------------------------------------------------- augmentations


def _uniform(g: torch.Generator, shape, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(shape, generator=g) * (hi - lo) + lo


def temporal_crop(x: torch.Tensor, gens, padding_ratio: int = 6) -> torch.Tensor:
    """tools.temperal_crop: mirror-pad T // ratio frames at each end, take a random window of T."""
    m, b, c, t, v = x.shape
    pad = t // padding_ratio
    if pad == 0:
        return x
    xp = torch.cat([x[..., :pad, :].flip(-2), x, x[..., -pad:, :].flip(-2)], dim=-2)
    start = torch.stack([torch.randint(0, 2 * pad + 1, (b,), generator=g) for g in gens])  # [M, B]
    idx = start[..., None] + torch.arange(t)                                               # [M, B, T]
    idx = idx[:, :, None, :, None].expand(m, b, c, t, v)
    return torch.gather(xp, 3, idx)


def shear(x: torch.Tensor, gens, r: float = 0.5) -> torch.Tensor:
    """tools.shear: x' = S x with S = [[1, s1_0, s2_0], [s1_1, 1, s2_1], [s1_2, s2_2, 1]]."""
    m, b = x.shape[:2]
    s1 = torch.stack([_uniform(g, (b, 3), -r, r) for g in gens])
    s2 = torch.stack([_uniform(g, (b, 3), -r, r) for g in gens])
    one = torch.ones(m, b)
    s = torch.stack([torch.stack([one, s1[..., 0], s2[..., 0]], -1),
                     torch.stack([s1[..., 1], one, s2[..., 1]], -1),
                     torch.stack([s1[..., 2], s2[..., 2], one], -1)], -2)   # [M, B, 3, 3]
    return torch.einsum("mbij,mbjtv->mbitv", s, x)


def _bernoulli(gens, b: int, p: float) -> torch.Tensor:
    return torch.stack([torch.rand(b, generator=g) < p for g in gens])  # [M, B]


def spatial_flip(x: torch.Tensor, gens, p: float = 0.5) -> torch.Tensor:
    """tools.random_spatial_flip: the left/right joint permutation with probability p."""
    flip = _bernoulli(gens, x.shape[1], p)[..., None, None, None]
    return torch.where(flip, x[..., list(FLIP_ORDER)], x)


def _axis_rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """The matrices of tools.random_rotate's `rotate` (before its transpose), [..., 3, 3]."""
    c, s = torch.cos(angle), torch.sin(angle)
    z, o = torch.zeros_like(angle), torch.ones_like(angle)
    if axis == 0:
        rows = [[o, z, z], [z, c, s], [z, -s, c]]
    elif axis == 1:
        rows = [[c, z, -s], [z, o, z], [s, z, c]]
    else:
        rows = [[c, s, z], [-s, c, z], [z, z, o]]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def random_rotate(x: torch.Tensor, gens) -> torch.Tensor:
    """tools.random_rotate: a main axis (uniform) rotated by U(0, 30) degrees, the other two by
    U(0, 1) degrees, applied about x, then y, then z (seq @ R.T, i.e. x' = R x)."""
    m, b = x.shape[:2]
    main = torch.stack([torch.randint(0, 3, (b,), generator=g) for g in gens])       # [M, B]
    big = torch.stack([_uniform(g, (b, 3), 0.0, 30.0) for g in gens])                # drawn for every axis,
    small = torch.stack([_uniform(g, (b, 3), 0.0, 1.0) for g in gens])               # one of them is used
    rot = torch.eye(3).expand(m, b, 3, 3)
    for axis in range(3):
        deg = torch.where(main == axis, big[..., axis], small[..., axis])
        rot = _axis_rotation(axis, torch.deg2rad(deg)) @ rot
    return torch.einsum("mbij,mbjtv->mbitv", rot, x)


def gaussian_noise(x: torch.Tensor, gens, std: float = 0.01, p: float = 0.5) -> torch.Tensor:
    """tools.gaus_noise: N(0, std) on every coordinate, with probability p per sample."""
    on = _bernoulli(gens, x.shape[1], p)[..., None, None, None]
    noise = torch.stack([torch.randn(x.shape[1:], generator=g) for g in gens]) * std
    return torch.where(on, x + noise, x)


def gaussian_blur(x: torch.Tensor, gens, kernel: int = 15, sigma=(0.1, 2.0), p: float = 0.5) -> torch.Tensor:
    """tools.GaussianBlurConv: with probability p, convolve along time with
    w_k = exp(-k^2 / (2 sigma^2)), k = -7..7, sigma U(0.1, 2), zero padding. As in the official
    code the kernel is not normalised: its sum runs from 1 (sigma 0.1) to about 5 (sigma 2), so
    the blur also scales the sequence."""
    m, b, c, t, v = x.shape
    sig = torch.stack([_uniform(g, (b,), sigma[0], sigma[1]) for g in gens])          # [M, B]
    on = torch.stack([torch.rand(b, generator=g) for g in gens]) < p                 # the official draws
    k = torch.arange(kernel, dtype=x.dtype) - kernel // 2                            # sigma first, then prob
    w = torch.exp(-(k ** 2) / (2 * sig[..., None] ** 2))                             # [M, B, K]
    r = kernel // 2
    xp = F.pad(x, (0, 0, r, r))                                                      # pad T
    win = xp.unfold(3, kernel, 1)                                                    # [M, B, C, T, V, K]
    blurred = torch.einsum("mbctvk,mbk->mbctv", win, w)
    return torch.where(on[..., None, None, None], blurred, x)


def axis_mask(x: torch.Tensor, gens, p: float = 0.5) -> torch.Tensor:
    """tools.axis_mask: with probability p, zero one coordinate axis (uniform)."""
    m, b = x.shape[:2]
    on = _bernoulli(gens, b, p)
    axis = torch.stack([torch.randint(0, 3, (b,), generator=g) for g in gens])
    keep = ~(on[..., None] & (axis[..., None] == torch.arange(3)))                    # [M, B, 3]
    return x * keep[..., None, None].to(x.dtype)


def basic_view(x, gens, shear_amplitude: float = 0.5, padding_ratio: int = 6):
    """Feeder_triple._aug."""
    if padding_ratio > 0:
        x = temporal_crop(x, gens, padding_ratio)
    if shear_amplitude > 0:
        x = shear(x, gens, shear_amplitude)
    return x


def strong_view(x, gens, shear_amplitude: float = 0.5, padding_ratio: int = 6):
    """Feeder_triple._strong_aug with aug_method '12345'."""
    x = basic_view(x, gens, shear_amplitude, padding_ratio)
    x = spatial_flip(x, gens)
    x = random_rotate(x, gens)
    x = gaussian_noise(x, gens)
    x = gaussian_blur(x, gens)
    return axis_mask(x, gens)


def joint_mask(m: int, t: int, v: int, gens, ratio: float = 0.1) -> torch.Tensor:
    """processor/utils.py Jointmask: for every frame, int(V * ratio) joints (sampled without
    replacement) masked; one pattern per minibatch (per member here). [M, 1, 1, T, V] of 0/1."""
    k = int(v * ratio)
    mask = torch.ones(m, t, v)
    if k > 0:
        for i, g in enumerate(gens):
            chosen = torch.argsort(torch.rand(t, v, generator=g), dim=1)[:, :k]
            mask[i].scatter_(1, chosen, 0.0)
    return mask[:, None, None]


# --------------------------------------------------------------------------- model and losses


class MoCo(nn.Module):
    """net/hiclr.py HiCLR (pretrain=True) for M members: query encoder with its MLP projector,
    momentum key encoder, a queue of K negatives per member, the learnable mask token."""

    def __init__(self, members: int, channels, strides, feature_dim: int, queue_size: int, momentum: float,
                 temperature: float, dropout: float, generators, init: str = "official"):
        super().__init__()
        hidden = channels[-1]
        self.encoder_q = STGCN(members, channels, strides, head=[hidden, feature_dim], dropout=dropout)
        self.encoder_k = copy.deepcopy(self.encoder_q)
        # The official HiCLR.__init__ copies q into k, then PT_Processor.load_model applies
        # weights_init to the whole model: q and k start from independent draws (q first).
        init_members(self.encoder_q, generators, init)
        init_members(self.encoder_k, generators, init)
        for p in self.encoder_k.parameters():
            p.requires_grad = False
        self.mask_param = nn.Parameter(torch.zeros(members))
        self.m, self.tau, self.K = momentum, temperature, queue_size
        queue = torch.stack([torch.randn(feature_dim, queue_size, generator=g) for g in generators])
        self.register_buffer("queue", F.normalize(queue, dim=1))   # [M, F, K], columns unit
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.mul_(self.m).add_(pq.detach(), alpha=1.0 - self.m)

    @torch.no_grad()
    def enqueue(self, k: torch.Tensor) -> None:
        b = k.shape[1]
        if self.K % b:
            raise ValueError(f"queue size {self.K} is not a multiple of the batch {b}")
        ptr = int(self.queue_ptr)
        self.queue[:, :, ptr:ptr + b] = k.transpose(1, 2)
        self.queue_ptr[0] = (ptr + b) % self.K

    def apply_mask(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x * mask, masked entries set to the member's learnable token."""
        tok = self.mask_param.view(-1, 1, 1, 1, 1)
        return x * mask + (1.0 - mask) * tok

    def logits(self, q: torch.Tensor, k: torch.Tensor):
        """[l_pos, l_neg] / tau per member: q, k [M, B, F] unit -> ([M, B, 1 + K], l_neg [M, B, K])."""
        l_pos = (q * k).sum(-1, keepdim=True)
        l_neg = torch.bmm(q, self.queue.clone().detach())
        return torch.cat([l_pos, l_neg], dim=-1) / self.tau, l_neg


def distribution_loss(target_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-mean_b sum_j softmax(target).detach() log softmax(logits), per member [M] (the official
    `-torch.mean(torch.sum(torch.log(output) * target, dim=1))`; log_softmax = log of softmax)."""
    p = torch.softmax(target_logits.detach(), dim=-1)
    return -(p * torch.log_softmax(logits, dim=-1)).sum(-1).mean(-1)


def infonce_loss(logits: torch.Tensor) -> torch.Tensor:
    """CE with the positive at index 0, per member [M]."""
    return -torch.log_softmax(logits, dim=-1)[..., 0].mean(-1)


def nnm_loss(logits: torch.Tensor, l_negs, topk: int = 1) -> torch.Tensor:
    """AimCLR's nearest-neighbour mining (net/hiclr.py `nearest_neighbors_mining_mutalddm_wmask`):
    the top-k queue entries of every branch's l_neg are positives too; the loss is the mean over
    the positive set of -log softmax(l_0), per member [M]."""
    onehot = torch.zeros_like(l_negs[0])
    for l_neg in l_negs:
        onehot.scatter_(-1, torch.topk(l_neg, topk, dim=-1).indices, 1.0)
    pos = torch.cat([torch.ones_like(onehot[..., :1]), onehot], dim=-1)
    return (-(torch.log_softmax(logits, dim=-1) * pos).sum(-1) / pos.sum(-1)).mean(-1)


def pretrain_step(model: MoCo, method: str, x: torch.Tensor, gens, stream: str, mining: bool,
                  mask_ratio: float = 0.1, topk: int = 1, device="cpu") -> dict[str, torch.Tensor]:
    """One step of processor/pretrain_hiclr.py (or SkeletonCLR's) on a batch x [M, B, 3, T, V].
    Returns per member: the losses total (to minimise, summed over members by the caller),
    info, h1, h2 (zeros where a method has no such term), and acc, the share of first-branch
    queries whose own key beats every queue entry. Momentum update, key, enqueue inside, in the
    official order (queries, momentum update, key, logits, enqueue). Views are drawn on the CPU
    (the members' generators) and moved to `device`."""
    branches = BRANCHES[method]
    # views in the official order: data1 (query), data2 (key), data3 (strong), data4 (strong, masked)
    views = {"basic": basic_view(x, gens)} if "basic" in branches else {}
    views["key"] = basic_view(x, gens)
    if "strong" in branches:
        views["strong"] = strong_view(x, gens)
    if "masked" in branches:
        views["masked"] = strong_view(x, gens)
    views = {k: to_stream(v, stream).to(device) for k, v in views.items()}
    if "masked" in branches:
        m, _, _, t, v = x.shape
        views["masked"] = model.apply_mask(views["masked"], joint_mask(m, t, v, gens, mask_ratio).to(device))
    qs = {b: F.normalize(model.encoder_q(views[b])[1], dim=-1) for b in branches}
    with torch.no_grad():
        model.momentum_update()
        k = F.normalize(model.encoder_k(views["key"])[1], dim=-1)
    out = {b: model.logits(q, k) for b, q in qs.items()}
    zero = torch.zeros(x.shape[0], device=k.device)
    first = branches[0]
    acc = (out[first][0].argmax(-1) == 0).float().mean(-1)
    if mining:
        info = nnm_loss(out[first][0], [out[b][1] for b in branches], topk)
    else:
        info = infonce_loss(out[first][0])
    h1 = distribution_loss(out["basic"][0], out["strong"][0]) if method in ("no_h2", "hiclr") else zero
    h2 = distribution_loss(out["strong"][0], out["masked"][0]) if method == "hiclr" else zero
    levels = {"no_h2": 1, "hiclr": 2}.get(method, 0)
    total = info + ((h1 + h2) / levels if levels else 0.0)
    model.enqueue(k)
    return {"total": total, "info": info, "h1": h1, "h2": h2, "acc": acc.detach()}


def step_lr(base_lr: float, epoch: int, steps) -> float:
    """processor/pretrain.py adjust_lr: base * 0.1 ** (number of steps the epoch is past)."""
    return base_lr * 0.1 ** sum(epoch > s for s in steps)


def scaled_epoch(fraction: float, epochs: int) -> int:
    """An official epoch boundary (e.g. LR step 250 of 300, mining 150 of 300) as a fraction of
    our number of epochs."""
    return int(math.floor(fraction * epochs + 1e-9))
