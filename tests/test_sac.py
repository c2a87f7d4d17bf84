"""SAC (hrlzoo/algos/sac.py)."""

from __future__ import annotations

import math

import pytest
import torch

from hrlzoo.algos.replay import Batch, HerReplayBuffer, ReplayBuffer
from hrlzoo.algos.sac import SAC, SACConfig, SquashedGaussianActor, train
from hrlzoo.envs.batched import BatchedEnv
from hrlzoo.envs.pendulum import TorchPendulum


def test_squashed_log_prob_is_the_change_of_variables():
    torch.manual_seed(0)
    actor = SquashedGaussianActor(3, 2, (16,), seeds=2, generators=[torch.Generator().manual_seed(s) for s in (0, 1)])
    obs = torch.randn(2, 50, 3)
    a, logp = actor(obs, generators=[torch.Generator().manual_seed(s) for s in (5, 6)])
    mu, log_std = actor.net(obs).split(2, -1)
    ref = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mu, log_std.clamp(-20, 2).exp()), [torch.distributions.TanhTransform()])
    assert a.abs().max() < 1
    inner = torch.atanh(a.clamp(-1 + 1e-6, 1 - 1e-6))
    ok = inner.abs().max(-1).values < 3  # away from the saturated tails, where SB3's 1e-6 matters
    assert torch.allclose(logp[ok], ref.log_prob(a).sum(-1)[ok], atol=1e-3)


def _batch(S=1, B=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(S, B, 3, generator=g), torch.rand(S, B, 1, generator=g) * 2 - 1,
                 torch.randn(S, B, generator=g), torch.randn(S, B, 3, generator=g), torch.zeros(S, B))


@pytest.mark.parametrize("target_entropy", [-5.0, 5.0])
def test_entropy_tuning_moves_alpha_towards_the_target(target_entropy):
    """alpha loss -(log_alpha (log pi + H*)).mean(): when the policy's entropy -log pi is above
    the target, alpha falls; below it, alpha rises. Adam's first step moves log_alpha by lr."""
    cfg = SACConfig(hidden=(16, 16), learning_rate=1e-2, target_entropy=target_entropy)
    agent = SAC(3, 1, cfg, seeds=[0])
    out = agent.update(_batch())
    entropy = out["entropy"]
    expected = -1e-2 if entropy > target_entropy else 1e-2
    assert agent.log_alpha.item() == pytest.approx(expected, rel=1e-3)
    assert out["alpha"] == pytest.approx(1.0)  # this update used alpha from before its step


def test_fixed_alpha_without_autotune():
    agent = SAC(3, 1, SACConfig(hidden=(8,), autotune=False, ent_coef_init=0.2), seeds=[0])
    agent.update(_batch())
    assert agent.log_alpha.item() == pytest.approx(math.log(0.2))


def test_critic_regresses_terminal_rewards():
    agent = SAC(3, 1, SACConfig(hidden=(32, 32), learning_rate=3e-3), seeds=[0])
    b = _batch(B=128)
    b = b._replace(reward=torch.sin(b.obs[..., 0]), terminated=torch.ones(1, 128))
    losses = [agent.update(b)["critic_loss"] for _ in range(80)]
    assert sum(losses[-5:]) < 0.3 * sum(losses[:5])


def test_seeds_train_as_they_would_alone_and_prefill_is_used():
    cfg = SACConfig(total_timesteps=30, learning_starts=10, batch_size=8, hidden=(16, 16))
    both = train(cfg, TorchPendulum(2), seeds=[1, 2])
    alone = train(cfg, TorchPendulum(1), seeds=[2])
    for p2, p1 in zip(both.agent.actor.parameters(), alone.agent.actor.parameters()):
        assert torch.allclose(p2[1], p1[0], atol=1e-5)
    assert torch.allclose(both.agent.log_alpha[1], alone.agent.log_alpha[0])
    # a pre-filled buffer is sampled from the first update on
    rb = ReplayBuffer(100, 3, 1, members=1)
    rb.extend(torch.zeros(1, 50, 3), torch.zeros(1, 50, 1), torch.full((1, 50), 7.0), torch.zeros(1, 50, 3),
              torch.ones(1, 50))
    res = train(SACConfig(total_timesteps=12, learning_starts=0, batch_size=8, hidden=(8,)), TorchPendulum(1),
                seeds=[0], replay=rb)
    assert len(rb) == 62 and res.agent.num_updates == 12


class _Reach(BatchedEnv):
    """A goal-conditioned toy: a point on a line moves by the action, the goal is a point drawn
    per episode; reward 0 within 0.1 of the goal, else -1; obs = [position, goal]."""

    goal_dim = 1

    def __init__(self, num_envs=1, autoreset=True):
        import numpy as np
        from gymnasium import spaces

        self.single_observation_space = spaces.Box(-10, 10, (2,), np.float32)
        self.single_action_space = spaces.Box(-1, 1, (1,), np.float32)
        super().__init__(num_envs, 10, "cpu", autoreset)
        self.x, self.goal = torch.zeros(num_envs), torch.zeros(num_envs)

    def _reset_worlds(self, idx):
        for i in idx:
            self.x[i], self.goal[i] = 0.0, float(self.np_random[i].uniform(-3, 3))

    def _step_worlds(self, action):
        self.x = self.x + 0.3 * action[:, 0]
        r = self.compute_reward(self.x.unsqueeze(-1), self.goal.unsqueeze(-1))
        return r, torch.zeros(self.num_envs, dtype=torch.bool)

    def _observe(self):
        return torch.stack([self.x, self.goal], -1)

    def achieved_goal(self, obs):
        return obs[:, :1]

    def compute_reward(self, achieved, desired):
        return -((achieved - desired).abs().sum(-1) > 0.1).float()


def test_her_training_relabels_goals():
    env = _Reach(2)
    cfg = SACConfig(total_timesteps=40, learning_starts=10, batch_size=32, hidden=(8,), her_k=4)
    res = train(cfg, env, seeds=[0, 1])
    assert res.agent.num_updates == 30
    rb = res.replay
    assert isinstance(rb, HerReplayBuffer) and len(rb) == 40
    # what the updates saw: a real part and relabelled goals
    b = rb.sample(32, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    assert b.obs.shape == (2, 32, 2)
    # relabelled goals make successes that the real, random-action data almost never has
    assert (b.reward[:, 32 - int(0.8 * 32):] == 0).float().mean() > (rb.reward == 0).float().mean()
