"""The goal-conditioned samplers (hrlzoo/gcrl/dataset.py): every boundary case of spec A §2.2-2.3.

The toy buffer stores each state's own index, so a sampled state tells which index it came
from: observations[i] = (i, trajectory), next_observations[i] = (i + 1, trajectory)."""

import numpy as np
import pytest

from hrlzoo.gcrl.dataset import (GCData, GoalDraws, GoalSampling, actor_batch, high_actor_batch, low_actor_batch,
                                 value_batch, value_draws, value_targets)

LENGTHS = [1, 2, 7, 30, 3]  # transitions per trajectory; a length-1 trajectory has t = T at once


def toy() -> GCData:
    obs, nxt, term = [], [], []
    i = 0
    for traj, n in enumerate(LENGTHS):
        for k in range(n):
            obs.append((i, traj))
            nxt.append((i + 1, traj))
            term.append(1.0 if k == n - 1 else 0.0)
            i += 1
    obs = np.array(obs, dtype=np.float32)
    return GCData(obs, np.zeros((len(obs), 2)), np.array(nxt, dtype=np.float32), np.array(term))


def idx(states):
    return states[..., 0].astype(int)


def test_trajectory_boundaries():
    d = toy()
    assert list(d.terminal_locs) == list(np.cumsum(LENGTHS) - 1)
    assert list(d.initial_locs) == [0, *np.cumsum(LENGTHS)[:-1]]
    assert list(d.final_idx(np.arange(d.size))) == [e for n, e in zip(LENGTHS, np.cumsum(LENGTHS) - 1)
                                                    for _ in range(n)]
    with pytest.raises(ValueError):
        GCData(d.observations, d.actions, d.next_observations, np.zeros(d.size))


@pytest.mark.parametrize("geom", [True, False])
def test_future_goals_stay_in_the_trajectory_and_ahead(geom):
    d, rng = toy(), np.random.default_rng(0)
    t = rng.integers(0, d.size, 5000)
    g = d.future_idxs(rng, t, geom, discount=0.9)
    T = d.final_idx(t)
    assert np.all(g <= T)
    assert np.all((g > t) | ((g == t) & (t == T)))  # t itself only at the trajectory's end
    if not geom:  # uniform over (t, T]: the far end is reached
        assert np.any(g == T) and np.any((g > t) & (g < T))


def test_goal_probabilities_must_sum_to_one():
    with pytest.raises(ValueError):
        GoalSampling(0.2, 0.5, 0.5, geom=True)


def test_current_goal_only():
    d, rng = toy(), np.random.default_rng(1)
    b = value_batch(d, rng, 256, GoalSampling(1.0, 0.0, 0.0, True), 0.99)
    assert np.array_equal(b["goal_idxs"], b["idxs"])
    assert np.all(b["rewards"] == 0) and np.all(b["masks"] == 0)


def test_value_batch_n1_is_hiqls_batch():
    """HIQL: r = 0 iff g == s_t, mask = 1 - that, and the bootstrap state is s_{t+1}."""
    d, rng = toy(), np.random.default_rng(2)
    b = value_batch(d, rng, 4000, GoalSampling(0.2, 0.5, 0.3, True), 0.9, option_len=1)
    t, g = b["idxs"], b["goal_idxs"]
    assert np.array_equal(b["option_ends"], d.next_observations[t])
    assert np.array_equal(b["rewards"], (t == g).astype(np.float32) - 1)
    assert np.array_equal(b["masks"], 1 - (t == g).astype(np.float32))
    assert np.array_equal(idx(b["observations"]), t) and np.array_equal(idx(b["goals"]), g)
    cur = (g == t).mean()
    assert 0.15 < cur < 0.35  # p_cur = 0.2 plus the rare t = T future goals and random hits


@pytest.mark.parametrize("n", [2, 5, 50])
def test_option_terminals_of_the_hiql_reward_reading(n):
    """Our earlier reading (rule hiql_reward): o = min(t+n, g) for goals of the same trajectory,
    o = min(t+n, T+1) for random goals; the option never crosses its trajectory."""
    d, rng = toy(), np.random.default_rng(3)
    gs = GoalSampling(0.2, 0.5, 0.3, True)
    b = value_batch(d, rng, 6000, gs, 0.9, option_len=n, rule="hiql_reward")
    t, g = b["idxs"], b["goal_idxs"]
    T = d.final_idx(t)
    o = t + b["option_steps"].astype(int)
    end = idx(b["option_ends"])  # the index of the option's end state (T + 1 = final state)
    assert np.array_equal(end, o)
    traj = b["goal_in_traj"]
    assert np.all(d.observations[g[traj]][:, 1] == d.observations[t[traj]][:, 1]) and np.all(g[traj] >= t[traj])
    assert np.all(b["option_ends"][:, 1] == d.observations[t][:, 1])  # never leaves the trajectory
    assert np.all((o > t) & (o <= T + 1) & (o <= t + n))
    ahead = traj & (g > t)
    # goal-based early termination: the option stops exactly at a goal closer than n
    near = ahead & (g - t <= n)
    assert near.any() and np.array_equal(o[near], g[near])
    far = ahead & (g - t > n)
    assert np.array_equal(o[far], t[far] + n)
    # timeout: a random goal elsewhere runs the full n steps or to the trajectory's final state
    rand = ~traj
    assert rand.any() and np.array_equal(o[rand], np.minimum(t[rand] + n, T[rand] + 1))
    # one -1 per option unless s_t is already the goal
    assert np.array_equal(b["rewards"], (t == g).astype(np.float32) - 1)


def test_option_len_one_equals_hiql_under_the_same_random_stream():
    d = toy()
    gs = GoalSampling(0.2, 0.5, 0.3, True)
    a = value_batch(d, np.random.default_rng(9), 512, gs, 0.99, option_len=1)
    b = value_batch(d, np.random.default_rng(9), 512, gs, 0.99, option_len=1)
    c = value_batch(d, np.random.default_rng(9), 512, gs, 0.99, option_len=5, rule="hiql_reward")
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert np.array_equal(a["goal_idxs"], c["goal_idxs"])  # same goals; only the option differs
    assert not np.array_equal(a["option_ends"], c["option_ends"])


def test_low_actor_subgoal_is_k_ahead_capped_at_the_end():
    d, rng = toy(), np.random.default_rng(4)
    b = low_actor_batch(d, rng, 2000, subgoal_steps=4)
    t = idx(b["observations"])
    assert np.array_equal(idx(b["subgoals"]), np.minimum(t + 4, d.final_idx(t)))
    assert np.array_equal(idx(b["next_observations"]), t + 1)


@pytest.mark.parametrize("p_rand", [0.0, 0.5])
def test_high_actor_targets(p_rand):
    """Future goals: target j = min(t+k, g); random goals: j = min(t+k, T)."""
    d, rng = toy(), np.random.default_rng(5)
    b = high_actor_batch(d, rng, 4000, subgoal_steps=3, p_rand=p_rand, geom=False, discount=0.99)
    t, g, j = b["idxs"], b["goal_idxs"], b["target_idxs"]
    T = d.final_idx(t)
    traj = b["goal_in_traj"]
    assert np.all(d.observations[g[traj]][:, 1] == d.observations[t[traj]][:, 1]) and np.all(g[traj] > t[traj] - 1)
    assert np.array_equal(j[traj], np.minimum(t[traj] + 3, g[traj]))
    assert np.array_equal(j[~traj], np.minimum(t[~traj] + 3, T[~traj]))
    assert np.all(j <= T)
    if p_rand == 0:
        assert traj.all()
    else:
        assert 0.3 < (~traj).mean() < 0.6


def test_flat_actor_goals_are_uniform_future_states():
    d, rng = toy(), np.random.default_rng(6)
    b = actor_batch(d, rng, 3000, GoalSampling(0.0, 1.0, 0.0, geom=False), 0.99)
    t, g = idx(b["observations"]), idx(b["goals"])
    T = d.final_idx(t)
    assert np.all((g > t) | (t == T)) and np.all(g <= T)


# ----------------------------------------------------------------------------- OTA's official rule
# Hand-built draws on the toy buffer (trajectory 3 holds indices 10..39, T = 39; trajectory 2
# holds 3..9, T = 9). Each case: (t, kind, goal draw) -> (o, goal, success).
HAND = [  # n = 5
    (10, "traj", 12, 12, 12, True),    # goal 2 steps ahead: the option stops at it, success
    (10, "traj", 15, 15, 15, True),    # exactly n ahead: reached at the option's last step
    (10, "traj", 16, 15, 16, False),   # n + 1 ahead: a full option, then bootstrap at s_15
    (36, "rand", 5, 39, 5, False),     # random goal, option runs past T: ends at s_T (obs[39])
    (39, "rand", 20, 39, 20, False),   # t = T: an option of length 0
    (39, "traj", 39, 39, 39, True),    # future goal at t = T is T itself: success
    (10, "rand", 15, 15, 15, True),    # a random goal that the option happens to reach
    (3, "cur", 0, 8, 8, True),         # current-state goal: g := s_o, o = min(t + n, T)
    (7, "cur", 0, 9, 9, True),         # ... capped at T
]


def hand_draws(d: GCData) -> GoalDraws:
    t = np.array([c[0] for c in HAND])
    kind = np.array([c[1] for c in HAND])
    draw = np.array([c[2] for c in HAND])
    return GoalDraws(t, d.final_idx(t), np.where(kind == "traj", draw, t), np.where(kind == "rand", draw, 0),
                     kind == "traj", kind == "cur")


def test_official_option_targets_on_hand_built_cases():
    d = toy()
    b = value_targets(d, hand_draws(d), option_len=5, rule="official")
    o = np.array([c[3] for c in HAND])
    goal = np.array([c[4] for c in HAND])
    success = np.array([c[5] for c in HAND])
    assert np.array_equal(b["end_idxs"], o)
    assert np.array_equal(b["goal_idxs"], goal)
    assert np.array_equal(idx(b["option_ends"]), o)      # s_o itself, an observation, never T + 1
    assert np.array_equal(idx(b["goals"]), goal)
    assert np.array_equal(b["option_steps"], (o - b["idxs"]).astype(np.float32))
    assert np.array_equal(b["rewards"], np.where(success, 0.0, -1.0).astype(np.float32))
    assert np.array_equal(b["masks"], np.where(success, 0.0, 1.0).astype(np.float32))


def test_hiql_reward_reading_on_the_same_cases():
    """The declared switch: r = 0 only when g is s_t; random goals end at T + 1 (next_observations[T])."""
    d = toy()
    b = value_targets(d, hand_draws(d), option_len=5, rule="hiql_reward")
    t = b["idxs"]
    want_o = np.array([12, 15, 15, 40, 40, 40, 15, 4, 8])  # o counted as the end state's index
    assert np.array_equal(idx(b["option_ends"]), want_o)
    assert np.array_equal(b["goal_idxs"], np.array([12, 15, 16, 5, 20, 39, 15, 3, 7]))
    at = b["goal_idxs"] == t
    assert np.array_equal(b["rewards"], at.astype(np.float32) - 1)
    assert at.tolist() == [False] * 5 + [True, False, True, True]


def test_unknown_rule_is_refused():
    d = toy()
    with pytest.raises(ValueError):
        value_targets(d, hand_draws(d), option_len=5, rule="hiql")


@pytest.mark.parametrize("n", [1, 3, 5])
def test_official_rule_gives_options_to_go(n):
    """Dynamic programming on every (t, g > t) pair of one 30-step trajectory with the official
    targets V(t, g) = r + gamma m V(o, g) converges to -(1 - gamma^(ceil(d/n) - 1)) / (1 - gamma):
    zero within one option, one -1 per further option (spec A §2.3)."""
    d, gamma = toy(), 0.9
    t, g = np.array([(a, c) for a in range(10, 40) for c in range(a + 1, 40)]).T
    draws = GoalDraws(t, d.final_idx(t), g, np.zeros_like(t), np.ones(len(t), bool), np.zeros(len(t), bool))
    b = value_targets(d, draws, option_len=n, rule="official")
    V = np.zeros((40, 40))
    for _ in range(40):
        V[t, g] = b["rewards"] + gamma * b["masks"] * V[b["end_idxs"], g]
    k = np.ceil((g - t) / n) - 1
    assert np.allclose(V[t, g], -(1 - gamma ** k) / (1 - gamma))
    assert np.all(V[t[g - t <= n], g[g - t <= n]] == 0)


@pytest.mark.parametrize("n", [2, 5])
def test_official_rule_on_random_batches(n):
    d, rng = toy(), np.random.default_rng(7)
    dr = value_draws(d, rng, 6000, GoalSampling(0.2, 0.5, 0.3, True), 0.9)
    b = value_targets(d, dr, option_len=n, rule="official")
    t, g, o, T = b["idxs"], b["goal_idxs"], b["end_idxs"], dr.final
    assert np.all((o >= t) & (o <= np.minimum(t + n, T)))       # within the trajectory, never T + 1
    assert np.array_equal(b["rewards"] == 0, o == g) and np.array_equal(b["masks"], (o != g).astype(np.float32))
    fut = dr.use_traj & ~dr.use_cur
    assert np.array_equal(o[fut], np.minimum(t[fut] + n, g[fut]))
    assert np.all(b["rewards"][fut & (g - t <= n)] == 0)
    rand = ~dr.use_traj & ~dr.use_cur
    assert rand.any() and np.array_equal(o[rand], np.minimum(t[rand] + n, T[rand]))
    assert np.array_equal(g[dr.use_cur], o[dr.use_cur]) and np.all(b["rewards"][dr.use_cur] == 0)
    # the same draws give HIQL's goals for every non-current draw: the comparison is paired
    h = value_targets(d, dr, option_len=n, rule="hiql_reward")
    assert np.array_equal(h["goal_idxs"][~dr.use_cur], g[~dr.use_cur])
