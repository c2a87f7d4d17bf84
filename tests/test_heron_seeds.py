"""HERON's batched seeds (stages/heron/method.py::train_runs): seeds trained together in one
batched TD3 learn exactly what they learn alone (up to floating-point summation order)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from hrlzoo.pipeline.params import load_params
from stages.heron.params import HeronParams

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params() -> HeronParams:
    p = copy.deepcopy(load_params("heron", HeronParams, root=ROOT))
    p.scale = "smoke"
    s = p.sizes["smoke"].pendulum
    # 300 steps: 199 TD3 updates (actor every 2nd, target noise on), 3 reward-model refits
    s.total_steps, s.learning_starts, s.rm_refit_start, s.rm_refit_every = 300, 100, 100, 50
    s.hidden = p.reward_model.hidden = 32
    return p


def _close(a, b, atol=1e-4, rtol=1e-4):
    assert [r["step"] for r in a.curve] == [r["step"] for r in b.curve]
    for ra, rb in zip(a.curve, b.curve):
        for k in ("return_true", "return_train", "rm_loss", "rm_acc"):
            if ra[k] is None:
                assert rb[k] is None
            else:
                assert np.isclose(ra[k], rb[k], rtol=rtol, atol=atol), (k, ra[k], rb[k])
    assert a.actor_state.keys() == b.actor_state.keys()
    for k in a.actor_state:
        assert a.actor_state[k].shape == b.actor_state[k].shape
        np.testing.assert_allclose(a.actor_state[k].numpy(), b.actor_state[k].numpy(), rtol=rtol, atol=atol)
    assert a.level_hist == b.level_hist
    if a.rm_state is not None:
        for k in a.rm_state:
            np.testing.assert_allclose(a.rm_state[k].numpy(), b.rm_state[k].numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("method", ["heron", "true_reward"])
def test_seeds_together_learn_what_they_learn_alone(params, method):
    from stages.heron.method import train_run, train_runs

    both = train_runs(params, "pendulum", method, [0, 1], progress=False)
    alone = [train_run(params, "pendulum", method, seed=s, progress=False) for s in (0, 1)]
    for b, a in zip(both, alone):
        # the reward model's refits amplify the batched actor's float-order differences
        # (return_train differed by 2e-4 relative at 1e-4): a looser tolerance for heron. On an
        # AVX-512 host (2026-12-08) 2 of seed 0's 1,024 first-layer weights differed by up to 1.2e-3
        # after its 199 updates and 3 refits (the rest within 1e-3), so heron's atol is 5e-3: still
        # far below what a batching error gives, a difference of the weights' own scale (~0.1, as
        # between the two seeds, asserted below)
        _close(b, a, rtol=1e-3 if method == "heron" else 1e-4, atol=5e-3 if method == "heron" else 1e-4)
    # and the two seeds really are different runs
    assert not np.allclose(both[0].actor_state["net.net.0.weight"], both[1].actor_state["net.net.0.weight"])
    assert both[0].info["seeds_batched"] == 2 and alone[0].info["seeds_batched"] == 1


def test_batched_mountaincar_episodes_end_per_seed(params):
    """MountainCar (episodes may end per seed: flag or time limit; the other preference
    method, the flat-label reward model): each seed matches its run alone."""
    from stages.heron.method import train_run, train_runs

    p = copy.deepcopy(params)
    s = p.sizes["smoke"].mountaincar
    s.total_steps, s.learning_starts, s.rm_refit_start, s.rm_refit_every, s.hidden = 1100, 999, 100, 500, 32
    both = train_runs(p, "mountaincar", "rlhf", [3, 4], progress=False)
    for b, seed in zip(both, (3, 4)):
        _close(b, train_run(p, "mountaincar", "rlhf", seed=seed, progress=False))


def test_train_runs_rejects_repeated_seeds(params):
    from stages.heron.method import train_runs

    with pytest.raises(ValueError, match="distinct"):
        train_runs(params, "pendulum", "true_reward", [0, 0], progress=False)
