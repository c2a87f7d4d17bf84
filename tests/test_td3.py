"""The shared replay buffer and TD3 (hrlzoo/algos/{replay,td3}.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrlzoo.algos.replay import Batch, ReplayBuffer
from hrlzoo.algos.td3 import TD3, actor_from_state, td_target


def filled_buffer(n=512, seed=0, obs_dim=3, act_dim=1):
    rng = np.random.default_rng(seed)
    rb = ReplayBuffer(n, obs_dim, act_dim)
    for _ in range(n):
        rb.add(rng.normal(size=obs_dim), rng.uniform(-2, 2, act_dim), rng.normal(),
               rng.normal(size=obs_dim), rng.random() < 0.05)
    return rb


def small_agent(seed=0, **kw):
    torch.manual_seed(seed)
    return TD3(3, 1, [-2.0], [2.0], hidden=32, lr=1e-3, seed=seed, **kw)


def test_replay_ring_and_sampling():
    rb = ReplayBuffer(3, 2, 1)
    for i in range(5):
        rb.add([i, i], [i], float(i), [i + 1, i + 1], i == 4)
    assert len(rb) == 3 and sorted(rb.reward.tolist()) == [2.0, 3.0, 4.0]
    b1 = rb.sample(8, np.random.default_rng(1))
    b2 = rb.sample(8, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(b1, b2))
    assert b1.obs.shape == (8, 2) and b1.action.shape == (8, 1) and b1.reward.shape == (8,)
    assert set(b1.reward.tolist()) <= {2.0, 3.0, 4.0}
    tb = b1.to_torch()
    assert isinstance(tb, Batch) and tb.obs.dtype == torch.float32


def test_td_target_bootstraps_only_when_not_terminated():
    r, next_q = torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0])
    y = td_target(r, torch.tensor([0.0, 1.0]), next_q, 0.9)
    assert y.tolist() == pytest.approx([10.0, 1.0])


def test_act_stays_in_the_action_box_and_noise_is_seeded():
    agent = small_agent()
    obs = np.zeros(3, dtype=np.float32)
    a1 = agent.act(obs, 5.0, np.random.default_rng(3))
    a2 = agent.act(obs, 5.0, np.random.default_rng(3))
    assert a1.shape == (1,) and np.array_equal(a1, a2)
    assert -2.0 <= a1[0] <= 2.0
    assert np.array_equal(agent.act(obs), agent.act(obs))  # no noise: deterministic


@pytest.mark.parametrize("twin", [True, False])
def test_update_decreases_critic_loss_on_a_fixed_batch(twin):
    agent = small_agent(twin_q=twin, target_noise=0.2 if twin else 0.0)
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(256, 3)), rng.uniform(-2, 2, size=(256, 1))
    # terminal transitions with a smooth reward: the TD target is the reward, a regression
    batch = Batch(obs, act, np.sin(obs[:, 0]) + act[:, 0], rng.normal(size=(256, 3)),
                  np.ones(256)).to_torch()
    losses = [agent.update(batch)["critic_loss"] for _ in range(60)]
    assert len(agent.critics) == (2 if twin else 1)
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


def test_actor_state_roundtrip():
    agent = small_agent()
    actor = actor_from_state(agent.actor_state())
    x = torch.randn(5, 3)
    assert torch.allclose(actor(x), agent.actor(x))
    full = agent.state_dict()
    other = small_agent(seed=1)
    other.load_state_dict(full)
    assert torch.allclose(other.actor(x), agent.actor(x))
