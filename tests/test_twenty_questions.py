"""hrlzoo.envs.twenty_questions: the world, the oracle's rules, rewards and ends, the batch, the
scripted and optimal questioners, and the gymnasium API (check_env)."""

import numpy as np
import pytest

from hrlzoo.envs.twenty_questions import (ANSWERS, START, TwentyQuestionsBatch, make_gym_env, make_vector_env,
                                          make_world, optimal_return, scripted_episode)


@pytest.fixture(scope="module")
def world():
    return make_world(16, 6, seed=3)


def test_world_is_deterministic_and_identifiable(world):
    again = make_world(16, 6, seed=3)
    assert again.names == world.names and again.attributes == world.attributes
    assert (again.table == world.table).all()
    assert len({r.tobytes() for r in world.table}) == 16           # every object its own signature
    assert (world.table.sum(0) == 8).all()                         # balanced splits
    assert make_world(16, 6, seed=4).names != world.names
    words = world.words()
    assert len(set(words)) == len(words) and all(n in words for n in world.names)
    with pytest.raises(ValueError):
        make_world(70, 6, seed=0)                                  # 2^6 < 70


def test_oracle_answers_and_rewards(world):
    env = TwentyQuestionsBatch(world, 3, max_turns=4)
    hidden = [0, 5, 9]
    assert env.reset(hidden) == [START] * 3
    k = 2
    q = world.question(k)
    obs, r, done = env.step([q, q, "is it blue ?"])
    for i, h in enumerate(hidden[:2]):
        assert obs[i] == f"{START} {q} {'yes' if world.table[h, k] else 'no'}"
    assert obs[2].endswith("is it blue ? invalid")
    assert r.tolist() == [-1.0, -1.0, -1.0] and not done.any()
    # a wrong guess costs a turn; a right one ends the game with reward 0
    obs, r, done = env.step([world.guess(0), world.guess(0), "  is   it a " + world.names[9] + "  ? "])
    assert r.tolist() == [0.0, -1.0, 0.0] and done.tolist() == [True, False, True]
    assert env.won.tolist() == [True, False, True]
    assert obs[1].endswith(f"{world.guess(0)} no") and obs[2].endswith(f"{world.guess(9)} yes")
    # finished games ignore their utterances; the turn limit ends the others
    before = list(obs)
    obs, r, done = env.step(["x", world.guess(1), "x"])
    assert obs[0] == before[0] and r[0] == 0.0
    obs, r, done = env.step(["x", "x", "x"])
    assert done.all() and env.turns.tolist() == [2, 4, 2] and not env.won[1]


def test_step_actions_matches_text(world):
    a = TwentyQuestionsBatch(world, 4, 6)
    b = TwentyQuestionsBatch(world, 4, 6)
    rng = np.random.default_rng(0)
    hidden = rng.integers(16, size=4)
    a.reset(hidden), b.reset(hidden)
    for _ in range(6):
        acts = rng.integers(-1, world.n_attributes + world.n_objects, size=4)
        o1, r1, d1 = a.step_actions(acts)
        o2, r2, d2 = b.step([world.utterance(int(x)) if x >= 0 else "garbage words" for x in acts])
        assert (r1 == r2).all() and (d1 == d2).all()
        assert [o.split()[-1] for o in o1] == [o.split()[-1] for o in o2]
        assert all(o.split()[-1] in ANSWERS or o == START for o in o1)


def test_scripted_questioner_plays_legal_games(world):
    rng = np.random.default_rng(1)
    wins = 0
    for _ in range(200):
        h = int(rng.integers(16))
        acts = scripted_episode(world, h, 8, rng, premature_guess=0.0)
        K = world.n_attributes
        assert len(acts) <= 8 and all(0 <= x < K + 16 for x in acts)
        asked = [x for x in acts if x < K]
        assert len(asked) == len(set(asked))                        # repeat = 0: no repeats
        wins += acts[-1] == K + h
    assert wins > 150                                               # 6 attributes identify 16 objects
    noisy = [scripted_episode(world, 0, 8, rng, premature_guess=0.0, repeat=0.5) for _ in range(100)]
    assert any(len([x for x in a if x < 6]) > len({x for x in a if x < 6}) for a in noisy)


def test_optimal_return_of_small_worlds():
    w = make_world(2, 1, seed=0)
    # one attribute splits two objects: ask (-1) then guess right (0): return -1; or guess at once:
    # half the time 0, else -1 then 0 -> -0.5, which is better
    assert optimal_return(w, max_turns=5, guess_max=2) == pytest.approx(-0.5)
    assert optimal_return(w, max_turns=1, guess_max=2) == pytest.approx(-0.5)   # one turn: guess
    w4 = make_world(4, 2, seed=0)
    # two perfect splits: guess among two: 2 questions would be -2; ask one (-1), then guess: -1.5
    assert optimal_return(w4, max_turns=6, guess_max=4) == pytest.approx(-1.5)
    assert optimal_return(w4, max_turns=6, guess_max=4) >= optimal_return(w4, 6, guess_max=1)


def test_gymnasium_single_and_vector_env(world):
    from gymnasium.utils.env_checker import check_env

    env = make_gym_env(world, max_turns=5)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0, options={"hidden": 3})
    assert obs == START and info["hidden"] == 3
    obs, r, term, trunc, info = env.step(world.guess(3))
    assert r == 0.0 and term and not trunc and info["won"]

    venv = make_vector_env(world, num_envs=4, max_turns=2)
    obs, _ = venv.reset(seed=0)
    assert len(obs) == 4 and all(o == START for o in obs)
    obs, r, term, trunc, _ = venv.step([world.question(0)] * 4)
    assert (r == -1).all() and not (term | trunc).any()
    obs, r, term, trunc, _ = venv.step([world.question(1)] * 4)
    assert trunc.all() and not term.any()                            # the turn limit
    obs, r, term, trunc, _ = venv.step(["x"] * 4)                    # next-step autoreset
    assert all(o == START for o in obs) and (r == 0).all()
