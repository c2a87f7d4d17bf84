"""The shared replay buffers and TD3 (hrlzoo/algos/{replay,td3}.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from hrlzoo.algos.replay import Batch, HerReplayBuffer, ReplayBuffer
from hrlzoo.algos.td3 import TD3, actor_from_state, td_target


def filled_buffer(n=512, seed=0, obs_dim=3, act_dim=1, members=1):
    rng = np.random.default_rng(seed)
    rb = ReplayBuffer(n, obs_dim, act_dim, members)
    for _ in range(n):
        rb.add(rng.normal(size=(members, obs_dim)), rng.uniform(-2, 2, (members, act_dim)), rng.normal(size=members),
               rng.normal(size=(members, obs_dim)), rng.random(members) < 0.05)
    return rb


def small_agent(seed=0, **kw):
    return TD3(3, 1, [-2.0], [2.0], hidden=32, lr=1e-3, seed=seed, **kw)


def test_replay_ring_and_sampling():
    rb = ReplayBuffer(3, 2, 1)
    for i in range(5):
        rb.add([i, i], [i], float(i), [i + 1, i + 1], i == 4)
    assert len(rb) == 3 and sorted(rb.reward[0].tolist()) == [2.0, 3.0, 4.0]
    b1 = rb.sample(8, np.random.default_rng(1))
    b2 = rb.sample(8, np.random.default_rng(1))
    assert all(torch.equal(x, y) for x, y in zip(b1, b2))
    assert b1.obs.shape == (1, 8, 2) and b1.action.shape == (1, 8, 1) and b1.reward.shape == (1, 8)
    assert set(b1.reward.flatten().tolist()) <= {2.0, 3.0, 4.0}
    assert isinstance(b1, Batch) and b1.obs.dtype == torch.float32
    # consistent rows: next_obs = obs + 1, terminated only on the last transition
    assert torch.equal(b1.next_obs, b1.obs + 1) and torch.equal(b1.terminated, (b1.reward == 4).float())


def test_replay_numpy_sampling_draws_what_the_numpy_buffer_drew():
    """HERON passes a numpy Generator: the indices are rng.integers(0, size, (1, batch)), the
    same draws the numpy buffer made with size=batch, so HERON's minibatches did not change."""
    rb = filled_buffer(100)
    idx = np.random.default_rng(5).integers(0, 100, size=32)
    b = rb.sample(32, np.random.default_rng(5))
    assert torch.equal(b.obs[0], rb.obs[0, torch.as_tensor(idx)])


def test_replay_members_are_separate_and_prefill_extends():
    rb = ReplayBuffer(10, 1, 1, members=2)
    obs = torch.stack([torch.zeros(4, 1), torch.ones(4, 1)])          # member 0 stores 0s, member 1 1s
    rb.extend(obs, obs, obs[..., 0], obs, torch.zeros(2, 4))
    assert len(rb) == 4
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    b = rb.sample(16, gens)
    assert b.obs.shape == (2, 16, 1) and (b.obs[0] == 0).all() and (b.obs[1] == 1).all()
    # per-member generators: member 1's draws do not depend on member 0
    solo = rb.sample_indices(16, [torch.Generator().manual_seed(7), torch.Generator().manual_seed(1)])
    assert torch.equal(rb.sample_indices(16, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])[1],
                       solo[1])
    big = ReplayBuffer(5, 1, 1)
    big.extend(torch.arange(12.0).reshape(1, 12, 1), torch.zeros(1, 12, 1), torch.arange(12.0), torch.zeros(1, 12, 1),
               torch.zeros(1, 12))
    assert len(big) == 5 and sorted(big.reward[0].tolist()) == [7.0, 8.0, 9.0, 10.0, 11.0]


def _her_buffer(capacity, n_envs=2, k=4):
    reward = lambda achieved, goal: -((achieved - goal).abs().sum(-1) > 0.5).float()
    return HerReplayBuffer(capacity, 1, 1, 1, reward, n_envs=n_envs, k=k)


def _fill_episodes(rb, lengths_per_env, goal=-1.0):
    """Stream e's t-th transition has achieved goal 1000 e + 10 episode + t (unique codes)."""
    n_envs = len(lengths_per_env)
    ep = [0] * n_envs
    t = [0] * n_envs
    steps = max(sum(ls) for ls in lengths_per_env)
    for _ in range(steps):
        achieved, done = [], []
        for e in range(n_envs):
            ls = lengths_per_env[e]
            achieved.append(1000 * e + 10 * ep[e] + t[e])
            t[e] += 1
            d = ep[e] < len(ls) and t[e] == ls[ep[e]]
            done.append(d)
            if d:
                ep[e], t[e] = ep[e] + 1, 0
        a = torch.tensor(achieved, dtype=torch.float32).view(1, n_envs, 1)
        rb.add(torch.zeros(1, n_envs, 1), torch.zeros(1, n_envs, 1), torch.full((1, n_envs), -1.0),
               torch.zeros(1, n_envs, 1), torch.zeros(1, n_envs), goal=torch.full((1, n_envs, 1), goal),
               achieved=a, done=torch.tensor(done).view(1, n_envs))


@pytest.mark.parametrize("capacity", [64, 16])  # 16: the ring wraps inside episodes
def test_her_future_relabelling(capacity):
    rb = _her_buffer(capacity, n_envs=2, k=4)
    _fill_episodes(rb, [[5, 7, 9], [3, 4, 6, 8]])
    B = 400
    b = rb.sample(B, torch.Generator().manual_seed(0))
    n_virtual = int((1 - 1 / 5) * B)
    goals = b.obs[0, :, 1]                       # obs = [observation, goal]
    real, virt = slice(0, B - n_virtual), slice(B - n_virtual, B)
    assert (goals[real] == -1).all() and (b.reward[0, real] == -1).all()
    assert (goals[virt] != -1).all()
    # every virtual goal is achieved later in the same episode of the same stream
    idx = rb.sample_indices(B, torch.Generator().manual_seed(0))[0, virt]
    cur = rb.achieved[0, idx, 0]
    new = goals[virt]
    assert torch.equal(cur // 1000, new // 1000)                 # same env stream
    assert torch.equal((cur % 1000) // 10, (new % 1000) // 10)   # same episode
    assert ((new % 10) >= (cur % 10)).all()                      # the future (or now)
    assert ((new == cur) == (b.reward[0, virt] == 0)).all()      # reward recomputed on the new goal
    assert (new > cur).any() and (new == cur).any()


def test_td_target_bootstraps_only_when_not_terminated():
    r, next_q = torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0])
    y = td_target(r, torch.tensor([0.0, 1.0]), next_q, 0.9)
    assert y.tolist() == pytest.approx([10.0, 1.0])


def test_init_is_torch_linear_after_manual_seed():
    """Seed s's networks are the nn.Linear layers the single-seed TD3 drew after
    torch.manual_seed(s), in the order actor, actor target, critic 1, critic 2."""
    torch.manual_seed(4)
    ref = [nn.Linear(3, 32), nn.Linear(32, 32), nn.Linear(32, 1)]
    _ = [nn.Linear(3, 32), nn.Linear(32, 32), nn.Linear(32, 1)]  # the old actor target
    q1 = [nn.Linear(4, 32), nn.Linear(32, 32), nn.Linear(32, 1)]
    q2 = [nn.Linear(4, 32), nn.Linear(32, 32), nn.Linear(32, 1)]
    agent = TD3(3, 1, [-2.0], [2.0], hidden=32, seed=[9, 4])
    lin = [m for m in agent.actor.net.net if hasattr(m, "weight")]
    qs = [m for m in agent.critics.net.net if hasattr(m, "weight")]
    for l, r in zip(lin, ref):
        assert torch.equal(l.weight[1], r.weight.t()) and torch.equal(l.bias[1, 0], r.bias)
    for l, a, b in zip(qs, q1, q2):
        assert torch.equal(l.weight[2], a.weight.t()) and torch.equal(l.weight[3], b.weight.t())


def test_act_stays_in_the_action_box_and_noise_is_seeded():
    agent = small_agent()
    obs = np.zeros(3, dtype=np.float32)
    a1 = agent.act(obs, 5.0, np.random.default_rng(3))
    a2 = agent.act(obs, 5.0, np.random.default_rng(3))
    assert a1.shape == (1,) and np.array_equal(a1, a2)
    assert -2.0 <= a1[0] <= 2.0
    assert np.array_equal(agent.act(obs), agent.act(obs))  # no noise: deterministic
    assert agent.act(np.zeros((5, 3))).shape == (5, 1)


@pytest.mark.parametrize("twin", [True, False])
def test_update_decreases_critic_loss_on_a_fixed_batch(twin):
    agent = small_agent(twin_q=twin, target_noise=0.2 if twin else 0.0)
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(1, 256, 3)), rng.uniform(-2, 2, size=(1, 256, 1))
    # terminal transitions with a smooth reward: the TD target is the reward, a regression
    batch = Batch(obs, act, np.sin(obs[..., 0]) + act[..., 0], rng.normal(size=(1, 256, 3)),
                  np.ones((1, 256))).to_torch()
    losses = [agent.update(batch)["critic_loss"] for _ in range(60)]
    assert agent.critics.n_q == (2 if twin else 1)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:3])


def test_update_is_deterministic_and_delays_the_actor():
    outs = []
    for _ in range(2):
        agent = small_agent(seed=7)
        rb, rng = filled_buffer(seed=1), np.random.default_rng(2)
        hist = [agent.update(rb.sample(64, rng)) for _ in range(6)]
        outs.append((hist, agent.actor_state()))
    (h1, s1), (h2, s2) = outs
    assert h1 == h2
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert ["actor_loss" in h for h in h1] == [False, True] * 3  # policy_delay = 2


def test_seeds_train_as_they_would_alone():
    """Two seeds in one TD3 == each seed alone, on the same per-seed minibatches (no target
    noise: its generator is shared)."""
    both = TD3(3, 1, [-2.0], [2.0], hidden=32, seed=[3, 8], target_noise=0.0)
    alone = TD3(3, 1, [-2.0], [2.0], hidden=32, seed=8, target_noise=0.0)
    rb = filled_buffer(200, members=2)
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    for _ in range(6):
        b = rb.sample(32, gens)
        both.update(b)
        alone.update(Batch(*(x[1:] for x in b)))
    x = torch.randn(7, 3)
    assert torch.allclose(both.actor(x.expand(2, 7, 3))[1], alone.actor(x), atol=1e-5)


def test_actor_state_roundtrip():
    agent = small_agent()
    actor = actor_from_state(agent.actor_state())
    x = torch.randn(5, 3)
    assert torch.allclose(actor(x), agent.actor(x))
    full = agent.state_dict()
    other = small_agent(seed=1)
    other.load_state_dict(full)
    assert torch.allclose(other.actor(x), agent.actor(x))
    two = TD3(3, 1, [-2.0], [2.0], hidden=32, seed=[0, 1])
    one = actor_from_state(two.actor_state(seed_index=1))
    assert torch.allclose(one(x), two.actor(x.expand(2, 5, 3))[1])


def test_actor_from_a_checkpoint_of_the_single_seed_td3():
    """Checkpoints written before the seeds dimension (nn.Linear layout) still load."""
    torch.manual_seed(2)
    layers = nn.Sequential(nn.Linear(3, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    state = {f"net.{k}": v for k, v in layers.state_dict().items()}
    state.update(action_scale=torch.tensor([2.0]), action_bias=torch.tensor([0.0]),
                 action_low=torch.tensor([-2.0]), action_high=torch.tensor([2.0]))
    actor = actor_from_state(state)
    x = torch.randn(6, 3)
    assert torch.allclose(actor(x), torch.tanh(layers(x)) * 2.0, atol=1e-6)
