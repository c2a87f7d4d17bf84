"""PPO pieces and wiring (hrlzoo/algos/ppo.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrlzoo.algos.ppo import PPOConfig, RunningMeanStd, clipped_surrogate, gae, train, value_loss
from hrlzoo.envs.batched import BatchedEnv
from hrlzoo.envs.pendulum import TorchPendulum


def test_gae_by_hand_with_truncation_and_termination():
    """Four steps of one world: step 1 is truncated (bootstrap from V(final_obs) = 2.0, then cut
    the recursion), step 3 terminates (its next value, 5.0, must be ignored). gamma 0.9, lambda 0.8:
      d3 = 4 - 0.8 = 3.2                 A3 = 3.2
      d2 = 3 + 0.9 * 0.8 - 0.7 = 3.02    A2 = 3.02 + 0.72 * 3.2 = 5.324
      d1 = 2 + 0.9 * 2.0 - 0.6 = 3.2     A1 = 3.2            (episode ends: no A2 term)
      d0 = 1 + 0.9 * 0.6 - 0.5 = 1.04    A0 = 1.04 + 0.72 * 3.2 = 3.344"""
    r = torch.tensor([1.0, 2.0, 3.0, 4.0])
    v = torch.tensor([0.5, 0.6, 0.7, 0.8])
    next_v = torch.tensor([0.6, 2.0, 0.8, 5.0])
    term = torch.tensor([0.0, 0.0, 0.0, 1.0])
    done = torch.tensor([0.0, 1.0, 0.0, 1.0])
    adv, ret = gae(r, v, next_v, term, done, gamma=0.9, lam=0.8)
    assert adv.tolist() == pytest.approx([3.344, 3.2, 5.324, 3.2])
    assert ret.tolist() == pytest.approx([3.844, 3.8, 6.024, 4.0])
    # SB3's form of the same thing: reward += gamma V(final_obs) on the truncated step, treat it as done
    r_sb3 = r.clone()
    r_sb3[1] += 0.9 * 2.0
    adv_sb3, _ = gae(r_sb3, v, torch.tensor([0.6, 0.0, 0.8, 0.0]), done, done, 0.9, 0.8)
    assert torch.allclose(adv, adv_sb3)


def test_clipped_surrogate_is_pessimistic():
    ratio = torch.tensor([0.5, 1.0, 1.5, 1.5, 0.5])
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0])
    loss = clipped_surrogate(ratio, adv, 0.2)
    # max(-A r, -A clip(r, 0.8, 1.2)): the worse of the two for the policy
    assert loss.tolist() == pytest.approx([-0.5, 1.0, -1.2, 1.5, 0.8])
    # no gradient where the clipped term is the one taken
    r = ratio.clone().requires_grad_()
    clipped_surrogate(r, adv, 0.2).sum().backward()
    assert r.grad.tolist() == pytest.approx([-1.0, 1.0, 0.0, 1.0, 0.0])


def test_value_clipping_as_sb3():
    new, old, ret = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([3.0, 3.0])
    assert value_loss(new, old, ret, None).tolist() == [1.0, 9.0]
    assert value_loss(new, old, ret, 0.5).tolist() == [2.25, 6.25]  # V_old + clip(V - V_old, +-0.5)
    # CleanRL / TRL: the larger of the clipped and unclipped errors
    assert value_loss(new, old, ret, 0.5, pessimistic=True).tolist() == [2.25, 9.0]



def test_pessimistic_value_clipping_reaches_the_update():
    """PPOConfig.pessimistic_vf (rsl_rl's clipped value loss) reaches the update: the losses differ."""
    def run(**kw):
        cfg = _tiny(clip_range_vf=0.01, **kw)
        env = TorchPendulum(num_envs=cfg.num_envs)
        return train(cfg, env, seeds=[0]).updates[-1]["v_loss"]

    assert run(pessimistic_vf=True) != run(pessimistic_vf=False)

def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    rms = RunningMeanStd(2, (3,))
    data = [rng.normal(2.0, 3.0, (2, 5, 3)) for _ in range(4)]
    for x in data:
        rms.update(torch.as_tensor(x))
    allx = np.concatenate(data, axis=1)
    assert np.allclose(rms.mean.numpy(), allx.mean(1), atol=1e-4)
    assert np.allclose(rms.var.numpy(), allx.var(1), atol=1e-3)


def _tiny(**kw):
    base = dict(num_envs=2, num_steps=16, total_timesteps=64, minibatch_size=8, update_epochs=2,
                hidden=(16, 16), normalize_obs=True, normalize_reward=True)
    return PPOConfig(**{**base, **kw})


def test_seeds_train_as_they_would_alone():
    """Seed 7 trained beside seed 3 ends with the same weights as seed 7 trained alone."""
    cfg = _tiny()
    both = train(cfg, TorchPendulum(4), seeds=[3, 7])
    alone = train(cfg, TorchPendulum(2), seeds=[7])
    for (name, p2), p1 in zip(both.agent.named_parameters(), alone.agent.parameters()):
        assert torch.allclose(p2[1], p1[0], atol=1e-5), name
    assert [e["return"] for e in both.episodes if e["seed"] == 7] == \
        pytest.approx([e["return"] for e in alone.episodes])


class _ConstantReward(BatchedEnv):
    """One constant observation, reward 1 every step, never terminates, truncated after 5 steps."""

    def __init__(self, num_envs=1, autoreset=True):
        from gymnasium import spaces

        self.single_observation_space = spaces.Box(-1, 1, (1,), np.float32)
        self.single_action_space = spaces.Box(-1, 1, (1,), np.float32)
        super().__init__(num_envs, 5, "cpu", autoreset)

    def _reset_worlds(self, idx):
        pass

    def _step_worlds(self, action):
        return torch.ones(self.num_envs), torch.zeros(self.num_envs, dtype=torch.bool)

    def _observe(self):
        return torch.zeros(self.num_envs, 1)


def test_truncation_bootstraps_the_value():
    """With bootstrapping through the time limit, V is the infinite-horizon 1 / (1 - gamma) = 2;
    cutting the return at truncation would average the 1..5-step returns (about 1.6)."""
    cfg = PPOConfig(num_envs=4, num_steps=20, total_timesteps=80 * 60, minibatch_size=80, update_epochs=4,
                    gamma=0.5, gae_lambda=1.0, learning_rate=3e-3, hidden=(8,), vf_coef=1.0)
    res = train(cfg, _ConstantReward(4), seeds=[0])
    v = res.agent.value(torch.zeros(1, 1, 1)).item()
    assert abs(v - 2.0) < 0.1, v


class _Bandit(BatchedEnv):
    """One-step episodes: action 1 pays 1, action 0 pays 0 (a discrete head must find it)."""

    def __init__(self, num_envs=1, autoreset=True):
        from gymnasium import spaces

        self.single_observation_space = spaces.Box(-1, 1, (2,), np.float32)
        self.single_action_space = spaces.Discrete(2)
        super().__init__(num_envs, None, "cpu", autoreset)

    def _reset_worlds(self, idx):
        pass

    def _step_worlds(self, action):
        return (action == 1).float(), torch.ones(self.num_envs, dtype=torch.bool)

    def _observe(self):
        return torch.ones(self.num_envs, 2)


def test_discrete_head_learns_a_bandit():
    cfg = PPOConfig(num_envs=8, num_steps=8, total_timesteps=64 * 15, minibatch_size=32, update_epochs=4,
                    learning_rate=1e-2, hidden=(16,), ent_coef=0.0)
    res = train(cfg, _Bandit(16), seeds=[0, 1])
    probs = res.agent.dist(torch.ones(2, 1, 2)).probs[:, 0, 1]
    assert (probs > 0.9).all(), probs


def _wide_head(sampler: str, seeds=(0, 1)):
    """A discrete head far from uniform (some actions of probability exactly 0) on fixed inputs."""
    from gymnasium import spaces

    from hrlzoo.algos.ppo import PPO

    agent = PPO(3, spaces.Discrete(6), PPOConfig(hidden=(8,), categorical_sampler=sampler), list(seeds))
    with torch.no_grad():
        agent.actor.net[-1].weight.mul_(300.0)
        agent.actor.net[-1].bias.copy_(torch.tensor([-1e4, 0, 0, 0, 0, -1e4]))  # actions 0 and 5: p = 0
    obs = torch.randn(len(seeds), 1, 3, generator=torch.Generator().manual_seed(7)).expand(len(seeds), 20000, 3)
    return agent, obs


def test_default_sampler_draws_torch_multinomials_actions():
    """The default `multinomial` sampler: exactly torch.multinomial's draws from each seed's generator."""
    agent, obs = _wide_head("multinomial")
    assert PPOConfig().categorical_sampler == "multinomial"
    probs = agent.dist(obs).probs
    gens = [torch.Generator().manual_seed(0) for _ in agent.generators]
    for g, mine in zip(gens, agent.generators):
        g.set_state(mine.get_state())
    expected = torch.stack([torch.multinomial(p, 1, generator=g).squeeze(-1) for p, g in zip(probs, gens)])
    a, logp, _ = agent.act(obs)
    assert torch.equal(a, expected)
    assert torch.equal(logp, agent.dist(obs).log_prob(expected))


def test_inverse_cdf_sampler_draws_the_policys_distribution():
    """`inverse_cdf`: chi-square of 20000 draws per seed against the head's own probabilities (fixed
    seeds), never an action of probability 0, seeds drawn from their own generators."""
    from scipy.stats import chisquare

    agent, obs = _wide_head("inverse_cdf")
    a, logp, _ = agent.act(obs)
    probs = agent.dist(obs[:, :1]).probs[:, 0].detach().double()
    assert (probs[:, [0, 5]] == 0).all() and (probs[:, 1:5] > 0.001).all(), probs  # the test means something
    for s in range(2):
        counts = torch.bincount(a[s], minlength=6).double()
        assert counts[0] == 0 and counts[5] == 0
        keep = probs[s] > 0
        expected = probs[s][keep] / probs[s][keep].sum() * counts.sum()
        assert chisquare(counts[keep].numpy(), expected.numpy()).pvalue > 1e-3
    assert torch.isfinite(logp).all() and torch.equal(logp, agent.dist(obs).log_prob(a))
    twin, _ = _wide_head("inverse_cdf", seeds=(1, 0))  # seed 1's draws do not depend on its neighbour
    assert torch.equal(twin.act(obs.flip(0))[0][0], a[1])


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="categorical_sampler"):
        _wide_head("inverse-cdf")


def test_evaluate_gives_every_seed_the_same_episodes():
    """Two copies of one seed's weights evaluate to the same return (same starts), a third
    with other weights to another."""
    from hrlzoo.algos.ppo import evaluate

    res = train(_tiny(num_envs=1, total_timesteps=16, normalize_obs=False, normalize_reward=False),
                TorchPendulum(3), seeds=[0, 0, 5])
    r = evaluate(res.agent, res.normalizer, TorchPendulum(3 * 2), episodes_per_world=1)
    assert r.shape == (3,) and r[0] == r[1] and r[0] != r[2]
    assert (r < 0).all() and (r > -2000).all()
