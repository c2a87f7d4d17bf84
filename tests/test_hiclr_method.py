"""HiCLR's pieces against their definitions: the asymmetric (gradient-stopped) distribution loss,
InfoNCE and the nearest-neighbour-mining loss, the loss composition of each method, the MoCo
queue and momentum update, the augmentations, the streams, the ST-GCN graph and the batched
members (M encoders in one = M separate encoders)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hrlzoo.envs.skeleton import BONES, FLIP_ORDER, SkeletonConfig, generate
from hrlzoo.nets.stgcn import STGCN, official_init, spatial_adjacency
from stages.hiclr import method as hm

torch.set_num_threads(1)


def gens(n, base=0):
    return [torch.Generator().manual_seed(base + i) for i in range(n)]


# ----------------------------------------------------------------------------- losses


def test_distribution_loss_is_soft_cross_entropy_with_stopped_target():
    torch.manual_seed(0)
    target = torch.randn(2, 4, 9, requires_grad=True)
    logits = torch.randn(2, 4, 9, requires_grad=True)
    loss = hm.distribution_loss(target, logits)
    p = torch.softmax(target.detach(), -1)
    expected = -(p * torch.log(torch.softmax(logits.detach(), -1))).sum(-1).mean(-1)
    assert loss.shape == (2,)
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.sum().backward()
    assert target.grad is None  # the weaker view is never pulled toward the stronger one
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # the gradient of soft cross-entropy w.r.t. the logits: (softmax(logits) - p) / batch
    assert torch.allclose(logits.grad, (torch.softmax(logits.detach(), -1) - p) / 4, atol=1e-6)


def test_distribution_loss_is_asymmetric_and_minimal_at_the_target():
    torch.manual_seed(1)
    a, b = torch.randn(1, 8, 17), torch.randn(1, 8, 17) * 3
    assert not torch.allclose(hm.distribution_loss(a, b), hm.distribution_loss(b, a))
    entropy = -(torch.softmax(a, -1) * torch.log_softmax(a, -1)).sum(-1).mean(-1)
    assert torch.allclose(hm.distribution_loss(a, a), entropy, atol=1e-6)
    assert (hm.distribution_loss(a, b) > entropy).all()


def test_infonce_is_cross_entropy_with_the_positive_first():
    torch.manual_seed(2)
    logits = torch.randn(3, 5, 11)
    ours = hm.infonce_loss(logits)
    for m in range(3):
        ref = F.cross_entropy(logits[m], torch.zeros(5, dtype=torch.long))
        assert torch.allclose(ours[m], ref, atol=1e-6)


def test_nnm_loss_adds_each_branch_top1_as_a_positive():
    logits = torch.log(torch.tensor([[[0.4, 0.1, 0.2, 0.3]]]))  # [M=1, B=1, 1 + K=3]
    neg_a = torch.tensor([[[0.0, 5.0, 1.0]]])  # top-1: queue entry 1
    neg_b = torch.tensor([[[9.0, 0.0, 1.0]]])  # top-1: queue entry 0
    ls = torch.log_softmax(logits, -1)[0, 0]
    # positives: the key (index 0) and queue entries 0 and 1 (logit columns 1 and 2)
    expected = -(ls[0] + ls[1] + ls[2]) / 3
    assert torch.allclose(hm.nnm_loss(logits, [neg_a, neg_b], topk=1), expected.view(1), atol=1e-6)
    # the same entry mined twice counts once
    expected_once = -(ls[0] + ls[2]) / 2
    assert torch.allclose(hm.nnm_loss(logits, [neg_a, neg_a], topk=1), expected_once.view(1), atol=1e-6)


# ----------------------------------------------------------------------------- model and step


def tiny_model(members=2, queue=8, momentum=0.9):
    return hm.MoCo(members, [4, 8], [1, 2], feature_dim=6, queue_size=queue, momentum=momentum,
                   temperature=0.07, dropout=0.0, generators=gens(members))


@pytest.mark.parametrize("method", hm.METHODS)
def test_pretrain_step_composes_the_official_losses(method):
    torch.manual_seed(3)
    model = tiny_model()
    x = torch.randn(2, 4, 3, 12, 25)
    out = hm.pretrain_step(model, method, x, gens(2, 10), "joint", mining=False)
    if method == "hiclr":
        expected = out["info"] + (out["h1"] + out["h2"]) / 2
        assert (out["h1"] > 0).all() and (out["h2"] > 0).all()
    elif method == "no_h2":
        expected = out["info"] + out["h1"]
        assert (out["h1"] > 0).all() and (out["h2"] == 0).all()
    else:
        expected = out["info"]
        assert (out["h1"] == 0).all() and (out["h2"] == 0).all()
    assert torch.allclose(out["total"], expected)
    assert out["total"].shape == (2,) and torch.isfinite(out["total"]).all()


def test_step_enqueues_keys_and_updates_the_key_encoder_by_momentum():
    torch.manual_seed(4)
    model = tiny_model(queue=8, momentum=0.9)
    q0 = [p.detach().clone() for p in model.encoder_q.parameters()]
    k0 = [p.detach().clone() for p in model.encoder_k.parameters()]
    queue0 = model.queue.clone()
    x = torch.randn(2, 4, 3, 12, 25)
    hm.pretrain_step(model, "hiclr", x, gens(2, 20), "joint", mining=False)
    for a, b, k in zip(q0, k0, model.encoder_k.parameters()):
        assert torch.allclose(k, 0.9 * b + 0.1 * a, atol=1e-6)
    assert int(model.queue_ptr) == 4
    assert torch.allclose(model.queue[:, :, 4:], queue0[:, :, 4:])      # untouched part
    assert not torch.allclose(model.queue[:, :, :4], queue0[:, :, :4])  # the batch's keys
    assert torch.allclose(model.queue[:, :, :4].norm(dim=1), torch.ones(2, 4), atol=1e-5)  # unit keys
    hm.pretrain_step(model, "hiclr", x, gens(2, 21), "joint", mining=True)
    assert int(model.queue_ptr) == 0  # wrapped around


def test_the_mask_token_is_learnable_and_fills_the_masked_joints():
    model = tiny_model()
    mask = hm.joint_mask(2, 12, 25, gens(2), ratio=0.1)
    assert mask.shape == (2, 1, 1, 12, 25)
    assert ((1 - mask).sum(-1) == 2).all()  # int(25 * 0.1) joints per frame
    with torch.no_grad():
        model.mask_param.copy_(torch.tensor([0.5, -2.0]))
    x = torch.randn(2, 3, 3, 12, 25)
    y = model.apply_mask(x, mask)
    hidden = (mask == 0).expand_as(x)
    assert torch.equal(y[0][hidden[0]], torch.full_like(y[0][hidden[0]], 0.5))
    assert torch.equal(y[1][hidden[1]], torch.full_like(y[1][hidden[1]], -2.0))
    assert torch.equal(y[~hidden], x[~hidden])
    out = hm.pretrain_step(model, "hiclr", torch.randn(2, 4, 3, 12, 25), gens(2, 30), "joint", mining=False)
    out["total"].sum().backward()
    assert model.mask_param.grad is not None and model.mask_param.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- augmentations and streams


def test_flip_order_is_a_left_right_involution():
    order = np.array(FLIP_ORDER)
    assert sorted(order) == list(range(25)) and (order[order] == np.arange(25)).all()
    x = torch.randn(1, 3, 3, 5, 25)
    flipped = hm.spatial_flip(x, gens(1), p=1.0)
    assert torch.equal(flipped[..., 4], x[..., 8])  # left shoulder <- right shoulder
    assert torch.equal(hm.spatial_flip(flipped, gens(1), p=1.0), x)


def test_basic_view_without_shear_only_moves_time():
    x = torch.randn(1, 2, 3, 1, 25).expand(1, 2, 3, 12, 25).contiguous()  # constant in time
    y = hm.basic_view(x, gens(1), shear_amplitude=0.0)
    assert torch.allclose(y, x)
    s = hm.shear(torch.randn(1, 2, 3, 12, 25), gens(1), r=0.0)
    assert s.shape == (1, 2, 3, 12, 25)
    z = torch.randn(1, 2, 3, 12, 25)
    assert torch.allclose(hm.shear(z, gens(1), r=0.0), z)


def test_rotation_keeps_lengths_and_axis_mask_zeroes_one_axis():
    x = torch.randn(2, 6, 3, 4, 25)
    r = hm.random_rotate(x, gens(2))
    assert torch.allclose(r.norm(dim=2), x.norm(dim=2), atol=1e-5)
    m = hm.axis_mask(x, gens(2), p=1.0)
    zero_axes = (m.abs().sum(dim=(3, 4)) == 0).sum(-1)
    assert (zero_axes == 1).all()


def test_streams():
    x = torch.randn(3, 5, 25)
    motion = hm.to_stream(x, "motion")
    assert torch.allclose(motion[:, :-1], x[:, 1:] - x[:, :-1]) and (motion[:, -1] == 0).all()
    bone = hm.to_stream(x, "bone")
    for child, parent in BONES:
        assert torch.allclose(bone[..., child - 1], x[..., child - 1] - x[..., parent - 1])
    assert (bone[..., 20] == 0).all()


# ----------------------------------------------------------------------------- encoder


def test_spatial_adjacency_partitions_a_column_normalised_graph():
    a = spatial_adjacency()
    assert a.shape == (3, 25, 25)
    assert np.allclose(a.sum(axis=(0, 1)), 1.0)  # every column of the normalised adjacency
    assert np.allclose(np.diag(a[0]), a.sum(0).diagonal())  # self-loops in the root partition


def test_members_are_independent_encoders():
    torch.manual_seed(5)
    two = STGCN(2, [4, 8], [1, 2], head=[8, 5], dropout=0.0)
    official_init(two, gens(2))
    one = [STGCN(1, [4, 8], [1, 2], head=[8, 5], dropout=0.0) for _ in range(2)]
    for i, net in enumerate(one):
        official_init(net, gens(1, i))  # member i draws from generator i alone
    x = torch.randn(2, 6, 3, 10, 25)
    f2, z2 = two(x)
    for i, net in enumerate(one):
        f1, z1 = net(x[i:i + 1])
        assert torch.allclose(f2[i], f1[0], atol=1e-5) and torch.allclose(z2[i], z1[0], atol=1e-5)
    # member 1's output does not depend on member 0's input
    x2 = x.clone()
    x2[0] += 1.0
    assert torch.allclose(two(x2)[1][1], z2[1], atol=1e-6)


# ----------------------------------------------------------------------------- generator


def test_generator_is_deterministic_and_protocols_hold():
    cfg = SkeletonConfig(classes=["wave_hand", "squat", "nod"], subjects=4, frames=10)
    x, meta = generate(cfg, seed=3)
    x2, _ = generate(cfg, seed=3)
    assert x.dtype == np.float32 and x.shape == (4 * 3 * 3, 3, 10, 25) and np.array_equal(x, x2)
    assert np.isfinite(x).all()
    assert np.allclose(x[:, :, :, 20], 0.0, atol=1e-5)  # centred on joint 21
    assert set(meta["xview"][meta["camera"] == 1]) == {"test"}
    assert set(meta["xview"][meta["camera"] != 1]) == {"train"}
    train_subj = set(meta["subject"][meta["xsub"] == "train"])
    assert train_subj and train_subj.isdisjoint(meta["subject"][meta["xsub"] == "test"])
    # the same performance seen from the three cameras is the same motion: after the official
    # y-rotation the views are close, and closer than two different classes
    perf = meta["performance"]
    same = [np.abs(x[(perf == p) & (meta["camera"] == 1)] - x[(perf == p) & (meta["camera"] == 2)]).mean()
            for p in np.unique(perf)]
    other = np.abs(x[meta["label"] == 0][:4] - x[meta["label"] == 1][:4]).mean()
    assert np.mean(same) < other


def test_linear_evaluation_learns_features_with_a_large_offset_and_tiny_spread():
    """The pilot's failure mode: pooled ST-GCN features whose across-sample spread is ~1e-4 of
    their norm. The official SGD head (lr 3) on the raw features stays at chance within a short
    budget; on standardised features (learners.standardise) it separates the classes."""
    from types import SimpleNamespace

    from hrlzoo.pipeline.lightning import make_trainer
    from stages.hiclr.common import generators
    from stages.hiclr.learners import make_linear, standardise

    g = torch.Generator().manual_seed(0)
    classes, n, h = 4, 512, 8
    y = torch.arange(n) % classes
    centres = torch.randn(classes, h, generator=g)
    f = 1.0 + 1e-4 * (centres[y] + 0.3 * torch.randn(n, h, generator=g))   # offset 1, spread 1e-4
    f = f.unsqueeze(0).expand(2, -1, -1).contiguous()                         # two members
    fs, = standardise(f)
    assert torch.allclose(fs.mean(1), torch.zeros(2, h), atol=1e-4)
    assert torch.allclose(fs.std(1), torch.ones(2, h), atol=1e-3)
    opt = SimpleNamespace(lr=3.0, momentum=0.9, nesterov=False, weight_decay=0.0, steps=[0.8], warmup=0.0, batch=128)

    def top1(feats):
        m = make_linear(feats, y, classes, opt, 10, generators([0, 1], "head"), generators([0, 1], "init"),
                        lambda *a: None)
        make_trainer("cpu", max_epochs=10, progress=False).fit(m)
        with torch.no_grad():
            return (m.head(feats).argmax(-1) == y).float().mean(1)

    assert (top1(f) < 0.4).all()          # raw: about chance (0.25)
    assert (top1(fs) > 0.9).all()         # standardised: the classes separate
