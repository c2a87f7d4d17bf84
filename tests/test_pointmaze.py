"""OGBench's PointMaze as we use it (hrlzoo/envs/pointmaze.py): the oracle, the generator's file
format read back by ogbench's own loader, batched evaluation."""

import numpy as np
import pytest

from hrlzoo.envs.pointmaze import (MAZES, GenSpec, MazeGeometry, evaluate_task, generate, load, make_env,
                                   oracle_path)
from hrlzoo.pipeline.npz import save_npz


@pytest.fixture(scope="module")
def geos():
    envs = {m: make_env(m) for m in MAZES}
    yield {m: (e.unwrapped, MazeGeometry(e.unwrapped)) for m, e in envs.items()}
    for e in envs.values():
        e.close()


@pytest.mark.parametrize("maze", MAZES)
def test_cached_oracle_equals_ogbench(geos, maze):
    u, geo = geos[maze]
    rng = np.random.default_rng(0)
    free = np.array([geo.ij_to_xy(c) for c in geo.all_cells])
    for _ in range(200):
        xy = free[rng.integers(len(free))] + rng.uniform(-1.9, 1.9, 2)
        goal = free[rng.integers(len(free))] + rng.uniform(-1.9, 1.9, 2)
        want, _ = u.get_oracle_subgoal(xy, goal)
        assert np.allclose(geo.oracle_subgoal(xy, goal), want)


def test_waypoint_is_the_goal_in_its_cell_and_the_oracle_subgoal_elsewhere(geos):
    _, geo = geos["large"]
    goal = geo.ij_to_xy(geo.vertex_cells[0]) + np.array([0.4, -0.3])
    assert np.array_equal(geo.waypoint(goal + 0.2, goal), goal)
    far = geo.ij_to_xy(geo.vertex_cells[-1])
    assert np.array_equal(geo.waypoint(far, goal), geo.oracle_subgoal(far, goal))
    xy = np.stack([goal + 0.2, far]).astype(np.float32)[None]  # [1, 2, 2]
    w = geo.waypoints(xy, np.broadcast_to(goal, xy.shape))
    assert w.dtype == np.float32 and w.shape == xy.shape
    assert np.allclose(w[0, 0], goal) and np.allclose(w[0, 1], geo.oracle_subgoal(far, goal))


def test_bfs_distances(geos):
    _, geo = geos["medium"]
    d = geo.bfs((1, 1))
    assert d[1, 1] == 0 and d[0, 0] == -1  # the goal, a wall
    for c in geo.all_cells:  # neighbours differ by at most one cell
        for di, dj in ((0, 1), (1, 0)):
            n = (c[0] + di, c[1] + dj)
            if n in geo.all_cells:
                assert abs(d[c] - d[n]) <= 1
    assert set(geo.vertex_cells) < set(geo.all_cells)


@pytest.mark.parametrize("kind", ["navigate", "stitch"])
def test_generated_dataset_loads_through_ogbench(tmp_path, kind):
    spec = GenSpec("medium", kind, episodes=3, max_episode_steps=41, seed=0)
    train, val = generate(spec)
    assert len(train["observations"]) == 3 * 41 and len(val["observations"]) == 41  # val: at least 1
    assert set(train) == {"observations", "actions", "terminals", "qpos", "qvel"}
    ends = np.flatnonzero(train["terminals"])
    assert list(ends) == [40, 81, 122]
    assert np.abs(train["actions"]).max() <= 1.0
    path = tmp_path / f"pointmaze-medium-{kind}-v0.npz"
    save_npz(train, path)
    save_npz(val, str(path).replace(".npz", "-val.npz"))
    tr, va = load(path, "medium", kind)
    assert tr["observations"].shape == (3 * 40, 2) and va["observations"].shape == (40, 2)
    # the loader pairs each state with the next record of the same episode
    assert np.allclose(tr["next_observations"][:40], train["observations"][1:41])
    assert list(np.flatnonzero(tr["terminals"])) == [39, 79, 119]
    # the point moves by 0.2 * action per step (walls aside): the data's actions explain its motion
    step = np.linalg.norm(tr["next_observations"] - tr["observations"], axis=1)
    assert step.max() <= 0.2 * np.sqrt(2) + 1e-3 and step.mean() > 0.05


def test_generation_is_deterministic_and_files_are_byte_stable(tmp_path):
    a, _ = generate(GenSpec("large", "navigate", episodes=2, max_episode_steps=31, seed=3))
    b, _ = generate(GenSpec("large", "navigate", episodes=2, max_episode_steps=31, seed=3))
    c, _ = generate(GenSpec("large", "navigate", episodes=2, max_episode_steps=31, seed=4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["observations"], c["observations"])
    save_npz(a, tmp_path / "x.npz")
    save_npz(b, tmp_path / "y.npz")
    assert (tmp_path / "x.npz").read_bytes() == (tmp_path / "y.npz").read_bytes()


def test_oracle_reaches_the_goal_and_batched_evaluation_counts_it(geos):
    """The noiseless oracle solves medium task 1; run as a batched policy it succeeds in every
    lockstep episode, while a policy that stands still never does."""
    states, goal = oracle_path("medium", 1)
    assert np.linalg.norm(states[-1] - goal) <= 1.0 and len(states) < 600
    _, geo = geos["medium"]

    def oracle(o, g):
        d = geo.waypoints(o, g) - o
        return d / (np.linalg.norm(d, axis=-1, keepdims=True) + 1e-6)

    envs = [make_env("medium") for _ in range(4)]
    r = evaluate_task(envs, 1, seeds=2, policy=oracle, max_steps=600, seed=1)
    assert r.success.shape == (2, 2) and r.success.min() == 1.0 and r.steps.max() < 600
    still = evaluate_task(envs, 1, seeds=2, policy=lambda o, g: np.zeros_like(o), max_steps=30, seed=1)
    assert still.success.max() == 0.0 and still.steps.min() == 30
    for e in envs:
        e.close()
