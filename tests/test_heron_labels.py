"""HERON's labelling rule and Bradley-Terry loss (stages/heron/labels.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stages.heron.labels import (bradley_terry_loss, flat_sum_labels, hierarchical_labels,
                                 level_histogram, margins)


def T(rows):
    return torch.tensor(rows, dtype=torch.float64)


def reference_labels(z, signs, ranking, delta):
    """A straightforward double loop, as the official ddpg_rm.py `get_loss` (any n)."""
    B = len(z)
    pref = np.zeros((B, B), dtype=np.int8)
    level = np.full((B, B), -1, dtype=np.int64)
    for i in range(B):
        for j in range(B):
            for l, k in enumerate(ranking):
                zi, zj = float(z[i][k]) * signs[k], float(z[j][k]) * signs[k]
                if zi > zj + float(delta[k]):
                    pref[i, j], level[i, j] = 1, l
                    break
                if zj > zi + float(delta[k]):
                    pref[i, j], level[i, j] = -1, l
                    break
    return pref, level


# ---------------------------------------------------------------- hand-made cases

def test_clear_win_at_level_one():
    # factor 0 lower-is-better decides at once; factor 1 would say the opposite
    z = T([[0.0, 9.0], [1.0, 0.0]])
    pref, level = hierarchical_labels(z, [-1, -1], [0, 1], T([0.5, 0.5]))
    assert pref[0, 1] == 1 and pref[1, 0] == -1
    assert level[0, 1] == 0 and level[1, 0] == 0
    assert pref.dtype == torch.int8 and level.dtype == torch.int64


def test_tie_within_margin_falls_to_level_two():
    z = T([[0.0, 5.0], [0.4, 1.0]])  # |dz_0| = 0.4 <= margin 0.5: tie; level 2 prefers row 1
    pref, level = hierarchical_labels(z, [-1, -1], [0, 1], T([0.5, 0.5]))
    assert pref[1, 0] == 1 and pref[0, 1] == -1
    assert level[1, 0] == 1


def test_all_levels_tie_is_discarded():
    z = T([[0.0, 1.0], [0.3, 1.2]])
    pref, level = hierarchical_labels(z, [-1, -1], [0, 1], T([0.5, 0.5]))
    assert (pref == 0).all() and (level == -1).all()
    loss, acc, n = bradley_terry_loss(torch.tensor([0.0, 1.0], requires_grad=True), pref)
    assert n == 0 and loss.item() == 0.0


def test_margin_is_strict_and_zero_margin_decides_any_difference():
    z = T([[0.0], [0.5]])
    pref, _ = hierarchical_labels(z, [1], [0], T([0.5]))  # difference == margin: still a tie
    assert pref[1, 0] == 0
    pref, level = hierarchical_labels(z, [1], [0], T([0.0]))
    assert pref[1, 0] == 1 and level[1, 0] == 0
    pref, _ = hierarchical_labels(T([[2.0], [2.0]]), [1], [0], T([0.0]))  # exact equality: tie
    assert (pref == 0).all()


def test_signs_flip_preferences():
    z = T([[1.0], [2.0]])
    up, _ = hierarchical_labels(z, [1], [0], T([0.0]))
    down, _ = hierarchical_labels(z, [-1], [0], T([0.0]))
    assert up[1, 0] == 1 and down[1, 0] == -1


def test_ranking_picks_the_deciding_factor():
    z = T([[0.0, 1.0], [1.0, 0.0]])  # higher-is-better on both: they disagree
    pref01, _ = hierarchical_labels(z, [1, 1], [0, 1], T([0.0, 0.0]))
    pref10, level10 = hierarchical_labels(z, [1, 1], [1, 0], T([0.0, 0.0]))
    assert pref01[1, 0] == 1 and pref10[1, 0] == -1
    assert level10[1, 0] == 0  # level = position in the ranking, not the factor index


def test_margins_are_unbiased_std_times_mult():
    zb = T([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    d = margins(zb, [0.5, 1.0])
    assert d[0].item() == pytest.approx(0.5 * 2.0)  # unbiased std of (0, 2, 4) is 2
    assert d[1].item() == 0.0
    assert (margins(zb[:1], [1.0, 1.0]) == 0).all()  # one row: no std, zero margins


def test_flat_sum_labels():
    # signed sums: row0 = -(1 + 1) = -2, row1 = -(0 + 3) = -3, row2 = -(2 + 0) = -2
    z = T([[1.0, 1.0], [0.0, 3.0], [2.0, 0.0]])
    pref, level = flat_sum_labels(z, [-1, -1])
    assert pref[0, 1] == 1 and pref[1, 0] == -1 and pref[2, 1] == 1
    assert pref[0, 2] == 0 and pref[2, 0] == 0  # equal sums: discarded
    assert level[0, 1] == 0 and level[0, 2] == -1 and level[1, 1] == -1


def test_bradley_terry_loss_by_hand():
    r = torch.tensor([0.0, 1.0, 3.0], requires_grad=True)
    pref = torch.zeros(3, 3, dtype=torch.int8)
    pref[1, 0], pref[0, 1] = 1, -1      # x1 > x0: r_w - r_l = 1 (ordered right)
    pref[2, 0], pref[0, 2] = -1, 1      # x0 > x2: r_w - r_l = -3 (ordered wrong)
    loss, acc, n = bradley_terry_loss(r, pref)  # (2, 1) undecided
    sig = lambda x: 1 / (1 + math.exp(-x))
    expected = (-math.log(sig(1.0)) - math.log(sig(-3.0))) / (2 + 1e-5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert n.item() == 2 and acc.item() == pytest.approx(0.5)
    loss.backward()
    assert torch.isfinite(r.grad).all() and r.grad.abs().sum() > 0


def test_bt_loss_counts_each_unordered_pair_once():
    z = T([[0.0], [1.0], [2.0], [3.0]])
    pref, _ = hierarchical_labels(z, [1], [0], T([0.0]))
    _, _, n = bradley_terry_loss(torch.zeros(4), pref)
    assert n.item() == 6  # 4 * 3 / 2, as the official `for j in range(i)`


def test_level_histogram():
    z = T([[0.0, 0.0], [0.0, 1.0], [5.0, 1.0]])
    _, level = hierarchical_labels(z, [1, 1], [0, 1], T([0.0, 0.0]))
    # pairs (1,0): level 1; (2,0): level 0; (2,1): level 0
    assert level_histogram(level, 2).tolist() == [2, 1, 0]


# ---------------------------------------------------------------- properties

values = st.sampled_from([round(x * 0.25, 2) for x in range(-8, 9)])  # coarse grid: many ties


@st.composite
def problems(draw):
    n = draw(st.integers(1, 4))
    B = draw(st.integers(2, 10))
    z = draw(st.lists(st.lists(values, min_size=n, max_size=n), min_size=B, max_size=B))
    signs = draw(st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n))
    ranking = draw(st.permutations(list(range(n))))
    mult = draw(st.lists(st.sampled_from([0.0, 0.3, 0.5, 1.0]), min_size=n, max_size=n))
    return T(z), signs, list(ranking), mult


@settings(max_examples=150, deadline=None)
@given(problems())
def test_vectorised_labels_equal_the_double_loop(problem):
    z, signs, ranking, mult = problem
    delta = margins(z, mult)
    pref, level = hierarchical_labels(z, signs, ranking, delta)
    ref_pref, ref_level = reference_labels(z.tolist(), signs, ranking, delta.tolist())
    assert np.array_equal(pref.numpy(), ref_pref)
    assert np.array_equal(level.numpy(), ref_level)
    assert torch.equal(pref, -pref.T) and torch.equal(level, level.T)


def _clear_of_margin_edges(z: torch.Tensor, signs, delta: torch.Tensor, tol=1e-9) -> bool:
    """True when no comparison a > b + delta sits within float rounding of its edge (at such
    an edge, rescaling may flip a comparison by one ulp; that is rounding, not the rule)."""
    sz = z * torch.as_tensor(signs, dtype=z.dtype)
    a, b = sz.unsqueeze(1), sz.unsqueeze(0)
    gap = (a - b).abs() - delta
    exact_tie = (a == b) & (delta == 0)
    scale = a.abs() + b.abs() + delta + 1e-12
    return bool(((gap.abs() > tol * scale) | exact_tie).all())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(problems(), st.data())
def test_labels_are_invariant_to_rescaling_a_factor(problem, data):
    z, signs, ranking, mult = problem
    k = data.draw(st.integers(0, z.shape[1] - 1))
    c = data.draw(st.one_of(st.sampled_from([0.25, 2.0, 100.0, 1024.0]),
                            st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)))
    zs = z.clone()
    zs[:, k] *= c
    d, ds = margins(z, mult), margins(zs, mult)  # margins recomputed from the scaled buffer
    assume(_clear_of_margin_edges(z, signs, d) and _clear_of_margin_edges(zs, signs, ds))
    assert torch.equal(hierarchical_labels(z, signs, ranking, d)[0],
                       hierarchical_labels(zs, signs, ranking, ds)[0])


@given(problems(), st.integers(-3, 3))
@settings(max_examples=50, deadline=None)
def test_power_of_two_rescaling_is_exactly_invariant(problem, e):
    z, signs, ranking, mult = problem
    zs = z * 2.0 ** (3 * e)  # exact in floating point, margins included
    assert torch.equal(hierarchical_labels(z, signs, ranking, margins(z, mult))[0],
                       hierarchical_labels(zs, signs, ranking, margins(zs, mult))[0])


def test_flat_sum_is_not_scale_invariant():
    # the contrast HERON's claim rests on: the flat sum's labels change with a factor's scale
    z = T([[1.0, 0.0], [0.0, 0.5]])
    before, _ = flat_sum_labels(z, [-1, -1])
    zs = z.clone()
    zs[:, 1] *= 100
    after, _ = flat_sum_labels(zs, [-1, -1])
    assert before[1, 0] == 1 and after[1, 0] == -1
