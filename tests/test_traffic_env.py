"""The SUMO traffic-signal task (hrlzoo/envs/traffic.py): gymnasium's checker, seeding, the six
IntelliLight factors against what the simulation must give, the designed reward, rescaling, and
the worker-process worlds against the in-process env."""

from __future__ import annotations

import numpy as np
import pytest

from hrlzoo.envs.traffic import DESIGNED_WEIGHTS, FACTORS, TrafficSignalEnv, TrafficWorlds, designed_reward

Q, W, D, S, P, T = range(6)


@pytest.fixture
def env():
    e = TrafficSignalEnv(seconds=600)
    yield e
    e.close()


def run(env, policy, seed=0):
    obs, _ = env.reset(seed=seed)
    rows, phases = [], []
    while True:
        obs, r, term, trunc, info = env.step(policy(len(rows)))
        rows.append((r, info["factors"], info["factors_unscaled"]))
        phases.append(env._signal.green_phase)
        if term or trunc:
            return rows, phases


def test_gymnasium_checker_and_seeding(env):
    from gymnasium.utils.env_checker import check_env

    check_env(env, skip_render_check=True)
    alternate = lambda i: (i // 3) % 2  # noqa: E731
    a, b, c = run(env, alternate, 1), run(env, alternate, 1), run(env, alternate, 2)
    assert [r for r, _, _ in a[0]] == [r for r, _, _ in b[0]]
    assert [r for r, _, _ in a[0]] != [r for r, _, _ in c[0]]
    assert len(a[0]) == 600 // 5  # seconds / delta_time decisions, then truncated


def test_factors_follow_the_signal(env):
    # one phase forever: never a switch, the other approach's queue and waiting time pile up
    rows, _ = run(env, lambda i: 0)
    z = np.array([f for _, f, _ in rows])
    assert (z[:, S] == 0).all()
    q = len(z) // 4
    assert z[-q:, Q].mean() > z[:q, Q].mean() + 5  # the red approach fills up (to its capacity)
    assert (np.diff(z[q:, W]) > 0).all()           # and its cars wait longer and longer
    # alternating: the switch factor is 1 exactly when the green phase changed
    rows, phases = run(env, lambda i: (i // 4) % 2)
    z = np.array([f for _, f, _ in rows])
    changed = np.diff([0, *phases]) != 0
    assert z[:, S].tolist() == changed.astype(float).tolist() and changed.sum() >= 10
    assert (z >= 0).all() and (z[:, D] <= len(env._lanes)).all()


def test_passed_vehicles_are_conserved_and_travelled_the_approach(env):
    rows, _ = run(env, lambda i: (i // 4) % 2)
    z = np.array([f for _, f, _ in rows])
    # every vehicle seen on an approach has either passed (counted once, then forgotten) or is
    # still there: the vehicles remembered are exactly those on the approaches now
    assert set(env._first_seen) == env._approaching and z[:, P].sum() > 50
    ids = set()
    for lane in env._lanes:
        ids.update(env.sim.sumo.lane.getLastStepVehicleIDs(lane))
    assert ids == env._approaching
    # a vehicle that passed drove at least the shortest approach at the speed limit
    sumo = env.sim.sumo
    fastest = min(sumo.lane.getLength(lane) / env._max_speed[lane] for lane in env._lanes) / 60.0
    passed = z[:, P] > 0
    assert (z[passed, T] / z[passed, P] >= fastest - 1e-9).all()


def test_designed_reward_and_rescaling():
    e = TrafficSignalEnv(seconds=200, factor_scale=[1, 60, 1, 1, 1, 1])  # waiting time in seconds
    try:
        rows, _ = run(e, lambda i: (i // 4) % 2, seed=3)
    finally:
        e.close()
    for r, z, zu in rows:
        assert r == pytest.approx(float(np.dot(DESIGNED_WEIGHTS, zu))) == pytest.approx(designed_reward(zu))
        assert np.allclose(z, zu * np.array([1, 60, 1, 1, 1, 1]))
    assert len(FACTORS) == len(DESIGNED_WEIGHTS) == 6


def test_one_simulation_per_process(env):
    with pytest.raises(RuntimeError, match="already live"):
        TrafficSignalEnv(seconds=100)


def test_worker_worlds_match_the_env(env):
    alternate = lambda i: (i // 4) % 2  # noqa: E731
    ref = [run(env, alternate, s)[0] for s in (4, 5)]
    env.close()
    worlds = TrafficWorlds(2, seconds=600)
    try:
        obs = worlds.reset([0, 1], [4, 5])
        got = []
        for i in range(len(ref[0])):
            _, r, term, trunc, z, zu = worlds.step([alternate(i)] * 2)
            got.append((r, zu))
        assert obs.shape == (2, worlds.observation_space.shape[0])
        for w in range(2):
            assert [g[0][w] for g in got] == [r for r, _, _ in ref[w]]
            assert np.array_equal(np.array([g[1][w] for g in got]), np.array([zu for _, _, zu in ref[w]]))
        assert trunc.all()
    finally:
        worlds.close()



def test_batched_traffic_worlds_are_independent_and_truncate():
    """TrafficBatched (one SUMO world per worker process) under hrlzoo.envs.batched's convention:
    world i of a 2-world env equals a 1-world env seeded with world i's seed, step for step and
    across the auto-reset at seconds / delta_time decisions, and different seeds give different
    traffic. (check_batched_env's rule that different seeds differ at reset cannot hold here:
    every scene starts from an empty network.)"""
    import torch

    from hrlzoo.envs.traffic import TrafficBatched

    T, seeds = 23, [5, 9]
    acts = np.random.default_rng(0).integers(0, 2, size=(T, 1)).repeat(2, 1)  # the same actions in both worlds

    def run(n, sd, a):
        env = TrafficBatched(n, seconds=50)
        try:
            assert env.max_episode_steps == 10
            obs, _ = env.reset(seed=sd)
            out = [obs.clone()]
            for t in range(T):
                o, r, te, tr, info = env.step(torch.as_tensor(a[t]))
                out.append((o.clone(), r.clone(), tr.clone(), info["final_obs"].clone(), env.factors_unscaled.clone()))
            return out
        finally:
            env.close()

    both = run(2, seeds, acts)
    for i in range(2):
        solo = run(1, [seeds[i]], acts[:, i:i + 1])
        assert torch.equal(solo[0][0], both[0][i])
        for t in range(T):
            assert all(torch.equal(x[i], y[0]) for x, y in zip(both[1 + t], solo[1 + t])), f"world {i}, step {t}"
    trunc = torch.stack([s[2] for s in both[1:]])
    assert trunc[:, 0].nonzero().flatten().tolist() == [9, 19]  # truncated exactly at 10 decisions
    assert not torch.equal(both[10][0], both[10][3])  # the finished world was reset (obs != final_obs)
    # the same actions, different seeds: different traffic
    assert not torch.equal(torch.stack([s[4][0] for s in both[1:]]), torch.stack([s[4][1] for s in both[1:]]))
