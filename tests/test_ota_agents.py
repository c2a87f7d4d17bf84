"""HIQL / OTA / GCIVL / GCBC losses and networks (stages/ota, hrlzoo/gcrl/nets.py)."""

import copy
import math

import numpy as np
import pytest
import torch

from hrlzoo.gcrl.dataset import GCData, GoalSampling, stack_batches, value_batch
from hrlzoo.gcrl.nets import GCActor, awr_weights, expectile_loss, length_normalize, to_torch
from hrlzoo.nets.ensemble import EnsembleMLP, ema_update
from stages.ota import gcbc, gcivl, hiql, ota


def line_data(n_traj=20, length=40, seed=0) -> GCData:
    """Trajectories walking right along a line: s_t = x, x += 0.1 per step (with noise)."""
    rng = np.random.default_rng(seed)
    obs, nxt, act, term = [], [], [], []
    for _ in range(n_traj):
        x = rng.uniform(-1, 1)
        for k in range(length):
            a = 1.0
            y = x + 0.1 * a
            obs.append((x, 0.0)); nxt.append((y, 0.0)); act.append((a, 0.0)); term.append(float(k == length - 1))
            x = y
    return GCData(np.array(obs), np.array(act), np.array(nxt), np.array(term))


CFG = hiql.HIQLConfig(obs_dim=2, action_dim=2, hidden=[32, 32], discount=0.9)
GS = GoalSampling(0.2, 0.5, 0.3, geom=True)


def batches(data, seeds, n, option_len, B=64):
    rngs = [np.random.default_rng([s, 0]) for s in seeds]
    for _ in range(n):
        yield to_torch(stack_batches([value_batch(data, r, B, GS, CFG.discount, option_len) for r in rngs]), "cpu")


def train_value(data, option_len, steps=30, seeds=(0, 1), loss=hiql.value_loss, lr=3e-4):
    torch.manual_seed(123)
    v = hiql.make_value(CFG, len(seeds))
    t = copy.deepcopy(v).requires_grad_(False)
    opt = torch.optim.Adam(v.parameters(), lr=lr)
    for b in batches(data, seeds, steps, option_len):
        l, _ = loss(v, t, b, CFG)
        opt.zero_grad()
        l.backward()
        opt.step()
        ema_update(t, v, CFG.tau)
    return v


def test_ota_with_n1_is_hiql_bit_for_bit():
    data = line_data()
    v_hiql = train_value(data, 1, loss=hiql.value_loss)
    torch.manual_seed(123)
    v_ota = hiql.make_value(CFG, 2)
    t = copy.deepcopy(v_ota).requires_grad_(False)
    opt = torch.optim.Adam(v_ota.parameters(), lr=3e-4)
    rngs = [np.random.default_rng([s, 0]) for s in (0, 1)]
    for _ in range(30):
        b = to_torch(stack_batches([ota.high_value_batch(data, r, 64, GS, CFG.discount, 1, rule="hiql_reward") for r in rngs]), "cpu")
        l, _ = ota.high_value_loss(v_ota, t, b, CFG)
        opt.zero_grad()
        l.backward()
        opt.step()
        ema_update(t, v_ota, CFG.tau)
    for a, b in zip(v_hiql.state_dict().values(), v_ota.state_dict().values()):
        assert torch.equal(a, b)
    v_n5 = train_value(data, 5, loss=ota.high_value_loss)
    assert not all(torch.equal(a, b) for a, b in zip(v_hiql.state_dict().values(), v_n5.state_dict().values()))


def test_value_loss_matches_the_formula_on_a_hand_case():
    """IVL with kappa weights from the target advantage and residuals from the online heads."""
    torch.manual_seed(0)
    v = hiql.make_value(CFG, 1)
    t = copy.deepcopy(v)
    b = to_torch(stack_batches([value_batch(line_data(), np.random.default_rng(0), 16, GS, 0.9)]), "cpu")
    loss, _ = hiql.value_loss(v, t, b, CFG)
    with torch.no_grad():
        nv = t(b["option_ends"], b["goals"])[0]
        cv = t(b["observations"], b["goals"])[0]
        on = v(b["observations"], b["goals"])[0]
        r, m = b["rewards"][0], b["masks"][0]
        adv = r + 0.9 * m * torch.minimum(nv[0], nv[1]) - (cv[0] + cv[1]) / 2
        want = 0.0
        for i in range(2):
            q = r + 0.9 * m * nv[i]
            w = torch.where(adv >= 0, torch.tensor(0.7), torch.tensor(0.3))
            want += (w * (q - on[i]) ** 2).mean()
    assert torch.allclose(loss, want, atol=1e-6)


def test_seeds_are_independent_networks():
    """Changing seed 1's minibatch leaves seed 0's gradients untouched."""
    torch.manual_seed(0)
    v = hiql.make_value(CFG, 2)
    t = copy.deepcopy(v)
    b = next(batches(line_data(), (0, 1), 1, 1))
    grads = []
    for perturb in (False, True):
        bb = {k: x.clone() for k, x in b.items()}
        if perturb:
            bb["goals"][1] += 3.0
        v.zero_grad()
        hiql.value_loss(v, t, bb, CFG)[0].backward()
        grads.append([p.grad[0].clone() for p in v.goal_rep.parameters()])
    for a, c in zip(*grads):
        assert torch.equal(a, c)


def test_learned_value_orders_states_toward_the_goal():
    """On a line walked rightwards, V(s, g) must rise as s approaches g from the left."""
    data = line_data(n_traj=40)
    v = train_value(data, 1, steps=800, seeds=(0,), lr=1e-3)
    xs = torch.linspace(0.0, 1.8, 9)
    s = torch.stack([xs, torch.zeros_like(xs)], -1)[None]
    g = torch.tensor([[2.0, 0.0]]).expand(1, 9, 2)
    with torch.no_grad():
        vals = v(s, g).mean(1)[0]
    assert (vals[1:] > vals[:-1]).float().mean() >= 0.85, vals
    assert vals.max() <= 0.5 and vals.min() >= -1 / (1 - CFG.discount) - 1


def test_expectile_and_awr_weights():
    adv = torch.tensor([1.0, -1.0, 0.0])
    diff = torch.tensor([2.0, 2.0, -1.0])
    assert torch.allclose(expectile_loss(adv, diff, 0.7), torch.tensor([0.7 * 4, 0.3 * 4, 0.7]))
    w = awr_weights(torch.tensor([0.0, 1.0, 10.0]), 3.0)
    assert torch.allclose(w, torch.tensor([1.0, math.exp(3.0), 100.0]))


def test_length_normalize_and_gaussian_log_prob():
    z = length_normalize(torch.randn(3, 5, 10))
    assert torch.allclose(z.norm(dim=-1), torch.full((3, 5), math.sqrt(10)), atol=1e-5)
    mean = torch.zeros(1, 1, 2)
    assert torch.allclose(GCActor.log_prob(mean, torch.zeros(1, 1, 2)), torch.tensor([[-math.log(2 * math.pi)]]))


def test_ensemble_mlp_layout_and_initialisation():
    net = EnsembleMLP(3, 4, [8, 1], layer_norm=True)
    kinds = [type(m).__name__ for m in net.net]
    assert kinds == ["EnsembleLinear", "GELU", "EnsembleLayerNorm", "EnsembleLinear"]
    w = net.net[0].weight
    assert w.shape == (3, 4, 8) and w.abs().max() <= math.sqrt(3.0 / 6) + 1e-6
    assert not torch.equal(w[0], w[1])  # members drawn separately
    assert net(torch.randn(3, 5, 4)).shape == (3, 5, 1)


def test_actors_train_and_act_within_bounds():
    """The low actor clones the data's action (+1 on x) and the composed policy stays in [-1, 1]."""
    data = line_data()
    v = train_value(data, 1, steps=50, seeds=(0,))
    v.requires_grad_(False)
    torch.manual_seed(0)
    low = hiql.make_low_actor(CFG, 1)
    high = hiql.make_high_actor(CFG, 1)
    opt = torch.optim.Adam([*low.parameters(), *high.parameters()], lr=1e-3)
    from hrlzoo.gcrl.dataset import high_actor_batch, low_actor_batch
    rng = np.random.default_rng(0)
    for _ in range(300):
        lb = to_torch(stack_batches([low_actor_batch(data, rng, 64, 5)]), "cpu")
        hb = to_torch(stack_batches([high_actor_batch(data, rng, 64, 5, 0.0, False, 0.9)]), "cpu")
        loss = hiql.low_actor_loss(low, v, lb, CFG)[0] + hiql.high_actor_loss(high, v, v, hb, 3.0)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    s = torch.tensor([[[0.0, 0.0]]])
    a = hiql.act(high, low, s, torch.tensor([[[1.0, 0.0]]]))
    assert a.shape == (1, 1, 2) and a.abs().max() <= 1.0
    assert a[0, 0, 0] > 0.5  # the data always moves right
    w = hiql.act_with_subgoal(low, v, s, torch.tensor([[[0.5, 0.0]]]))
    assert w[0, 0, 0] > 0.5


@pytest.mark.parametrize("method", ["gcbc", "gcivl"])
def test_flat_agents_learn_the_data_action(method):
    data = line_data()
    torch.manual_seed(0)
    actor = gcbc.make_actor(2, 2, [32, 32], 1)
    value = gcivl.make_value(2, [32, 32], 1) if method == "gcivl" else None  # flat value (no phi)
    opt = torch.optim.Adam(actor.parameters(), lr=1e-3)
    from hrlzoo.gcrl.dataset import actor_batch
    rng = np.random.default_rng(0)
    for _ in range(300):
        b = to_torch(stack_batches([actor_batch(data, rng, 64, GoalSampling(0, 1, 0, False), 0.9)]), "cpu")
        loss = gcbc.actor_loss(actor, b)[0] if method == "gcbc" else gcivl.actor_loss(actor, value, b, 10.0)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    a = gcbc.act(actor, torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[1.0, 0.0]]]))
    assert a[0, 0, 0] > 0.5


def test_curve_checkpoints_are_evenly_spaced_and_end_at_the_last_step():
    from stages.ota.params import checkpoints

    assert checkpoints(3000, 5) == [600, 1200, 1800, 2400, 3000]
    assert checkpoints(40, 4) == [10, 20, 30, 40]
    assert checkpoints(3, 5) == [1, 2, 3]  # fewer steps than points: each step once
    assert checkpoints(7, 1) == [7]
