"""The batched-env convention (hrlzoo/envs/batched.py) and TorchPendulum (hrlzoo/envs/pendulum.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from hrlzoo.envs.batched import BatchedEnv, GymnasiumBatched, GymVectorEnv, check_batched_env
from hrlzoo.envs.pendulum import TorchPendulum


def test_torch_pendulum_matches_gymnasium_step_by_step():
    """Three worlds against three gymnasium Pendulum-v1 with the same seeds and actions, over
    650 steps (three episodes each, across auto-resets): obs, reward, truncation within 1e-5."""
    seeds, n = [5, 6, 7], 3
    env = TorchPendulum(n)
    gyms = [gym.make("Pendulum-v1") for _ in range(n)]
    obs, _ = env.reset(seed=seeds)
    ref = np.stack([g.reset(seed=s)[0] for g, s in zip(gyms, seeds)])
    assert np.abs(obs.numpy() - ref).max() < 1e-5
    rng = np.random.default_rng(0)
    truncations = 0
    for t in range(650):
        a = rng.uniform(-2.5, 2.5, (n, 1)).astype(np.float32)  # also outside the box: both clip
        obs, r, term, trunc, info = env.step(torch.as_tensor(a))
        out = [g.step(a[i]) for i, g in enumerate(gyms)]
        assert np.abs(info["final_obs"].numpy() - np.stack([o[0] for o in out])).max() < 1e-5, t
        assert np.abs(r.numpy() - np.array([o[1] for o in out])).max() < 1e-5, t
        assert trunc.tolist() == [o[3] for o in out] and term.tolist() == [o[2] for o in out], t
        for i, g in enumerate(gyms):
            if out[i][3]:
                g.reset()  # no seed: the world's own stream goes on, as gymnasium's does
                truncations += 1
        ref = np.stack([g.unwrapped._get_obs() for g in gyms])
        assert np.abs(obs.numpy() - ref).max() < 1e-5, t
    assert truncations == 9


def test_torch_pendulum_passes_the_checker():
    check_batched_env(lambda **kw: TorchPendulum(**kw), num_envs=3)


class _Coupled(TorchPendulum):
    """Broken on purpose: world 0's torque leaks into every world."""

    def _step_worlds(self, action):
        return super()._step_worlds(action + action[:1])


class _LateLimit(TorchPendulum):
    """Broken on purpose: truncates one step late."""

    def step(self, action):
        obs, r, te, tr, info = super().step(action)
        return obs, r, te, tr & (self.elapsed < 0), info


@pytest.mark.parametrize("broken, message", [(_Coupled, "depends on the other worlds"),
                                             (_LateLimit, "truncated must be set exactly")])
def test_checker_catches_broken_envs(broken, message):
    with pytest.raises(AssertionError, match=message):
        check_batched_env(lambda **kw: broken(**kw), num_envs=3)


def test_auto_reset_boundary_keeps_final_obs_and_restarts_the_counter():
    env = TorchPendulum(2, max_episode_steps=5)
    env.reset(seed=0)
    a = torch.zeros(2, 1)
    for t in range(4):
        obs, _, _, trunc, info = env.step(a)
        assert not trunc.any() and torch.equal(info["final_obs"], obs)
    obs, _, term, trunc, info = env.step(a)
    assert trunc.all() and not term.any()
    # final_obs is the state the 5th step reached, obs the first of the next episode
    assert not torch.equal(info["final_obs"], obs)
    assert env.elapsed.tolist() == [0, 0]
    fresh = TorchPendulum(1)
    fresh.reset(seed=[1])  # its first start
    second = fresh.np_random[0].uniform(low=-np.array([np.pi, 1.0]), high=np.array([np.pi, 1.0]))
    second_obs = np.array([np.cos(second[0]), np.sin(second[0]), second[1]], dtype=np.float32)
    assert np.allclose(obs[1].numpy(), second_obs)  # world 1 (seed 0 + 1) drew its second start


def test_vector_face_equals_gymnasium_sync_vector_env():
    """GymVectorEnv(TorchPendulum) against gymnasium's SyncVectorEnv of Pendulum-v1 in
    SAME_STEP mode: observations, rewards, flags and the final_obs info keys."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    ours = GymVectorEnv(TorchPendulum(2, max_episode_steps=7))
    ref = SyncVectorEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=7)] * 2,
                        autoreset_mode=AutoresetMode.SAME_STEP)
    o1, _ = ours.reset(seed=3)
    o2, _ = ref.reset(seed=3)
    assert np.allclose(o1, o2, atol=1e-5)
    rng = np.random.default_rng(1)
    for t in range(16):
        a = rng.uniform(-2, 2, (2, 1)).astype(np.float32)
        s1, s2 = ours.step(a), ref.step(a)
        for x, y in zip(s1[:4], s2[:4]):
            assert np.allclose(x, y, atol=1e-5), t
        assert ("final_obs" in s1[4]) == ("final_obs" in s2[4]), t
        if "final_obs" in s2[4]:
            assert np.array_equal(s1[4]["_final_obs"], s2[4]["_final_obs"])
            assert np.allclose(np.stack(s1[4]["final_obs"]), np.stack(s2[4]["final_obs"]), atol=1e-5)


def test_gymnasium_batched_follows_the_convention_and_equals_the_twin():
    a = GymnasiumBatched("Pendulum-v1", 2)
    b = TorchPendulum(2)
    oa, _ = a.reset(seed=[4, 9])
    ob, _ = b.reset(seed=[4, 9])
    assert torch.allclose(oa, ob, atol=1e-5)
    act = torch.full((2, 1), 0.7)
    for _ in range(205):  # across the 200-step boundary
        ra, rb = a.step(act), b.step(act)
        for x, y in zip(ra[:4], rb[:4]):
            assert torch.allclose(x.double(), y.double(), atol=1e-5)
        assert torch.allclose(ra[4]["final_obs"], rb[4]["final_obs"], atol=1e-5)
    assert isinstance(a, BatchedEnv)
