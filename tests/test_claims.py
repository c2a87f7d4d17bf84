"""Claims as data: validation, t intervals (and their coverage), the verdict rules, seeds,
floors, gates, pairing, missing data, single models and the registration check."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import polars as pl
import pytest
import scipy.stats as sst
from hypothesis import given, settings
from hypothesis import strategies as st

from hrlzoo.pipeline.claims import (MIN_SEEDS, RELATIONS, Claim, ClaimSet, Metric, count_verdicts,
                                    evaluate, load_claims, mean_ci, registration_problems,
                                    summarise, t_interval)

TIGHT = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])  # five seeds, small spread
WIDE = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])  # five seeds, large spread
REG = {"registered": "before-results"}


def table(groups: dict[tuple[str, str], np.ndarray], metric: str = "ret", seeds=None) -> pl.DataFrame:
    """One row per (method, task, seed) from {(method, task): values} (seeds 0.. unless given)."""
    rows = [{"method": m, "task": t, "seed": (seeds[m] if seeds else range(len(vals)))[s], metric: float(v)}
            for (m, t), vals in groups.items() for s, v in enumerate(vals)]
    return pl.DataFrame(rows)


def claim(relation: str, **kw) -> Claim:
    base = dict(id="c", text="A claim.", metric="ret", method="a", relation=relation,
                source="test", where={"task": "t"}, **REG)
    if relation in ("at_least", "at_most"):
        base["value"] = kw.pop("value", 0.0)
    else:
        base["baseline"] = kw.pop("baseline", "b")
        base["margin_source"] = "test"
    base.update(kw)
    return Claim(**base)


def verdict_of(relation: str, a: np.ndarray, b: np.ndarray | None = None, claimset_kw=None, **kw):
    groups = {("a", "t"): a}
    if b is not None:  # the baseline's seeds in another order, so that paired differences spread
        groups[("b", "t")] = b[::-1]
    (v,) = evaluate(ClaimSet([claim(relation, **kw)], **(claimset_kw or {})), table(groups))
    return v


# --------------------------------------------------------------------------- verdict rules

CASES = [
    # relation, a, b (or None), extra claim fields, expected verdict
    ("greater", 10 + TIGHT, TIGHT, {}, "reproduced"),
    ("greater", TIGHT, 10 + TIGHT, {}, "not reproduced"),
    ("greater", WIDE, 1 + TIGHT, {}, "inconclusive"),
    ("greater", 10 + TIGHT, TIGHT, {"margin": 20.0}, "not reproduced"),
    ("greater", 10 + TIGHT, TIGHT, {"margin": 9.9}, "inconclusive"),
    ("less", TIGHT, 10 + TIGHT, {}, "reproduced"),
    ("less", 10 + TIGHT, TIGHT, {}, "not reproduced"),
    ("less", WIDE, 1 + TIGHT, {}, "inconclusive"),
    ("not_less", TIGHT, 0.3 + TIGHT, {"margin": 1.0}, "reproduced"),
    ("not_less", TIGHT, 10 + TIGHT, {"margin": 1.0}, "not reproduced"),
    ("not_less", WIDE, TIGHT, {"margin": 1.0}, "inconclusive"),
    ("not_greater", 0.3 + TIGHT, TIGHT, {"margin": 1.0}, "reproduced"),
    ("not_greater", 10 + TIGHT, TIGHT, {"margin": 1.0}, "not reproduced"),
    ("not_greater", WIDE, TIGHT, {"margin": 1.0}, "inconclusive"),
    ("equivalent", 0.1 + TIGHT, TIGHT, {"margin": 1.0}, "reproduced"),
    ("equivalent", 10 + TIGHT, TIGHT, {"margin": 1.0}, "not reproduced"),
    ("equivalent", -10 + TIGHT, TIGHT, {"margin": 1.0}, "not reproduced"),
    ("equivalent", WIDE, TIGHT, {"margin": 1.0}, "inconclusive"),
    ("equivalent", 10 + TIGHT, TIGHT, {"margin": 20.0}, "reproduced"),
    ("at_least", 10 + TIGHT, None, {"value": 5.0}, "reproduced"),
    ("at_least", 10 + TIGHT, None, {"value": 15.0}, "not reproduced"),
    ("at_least", 5 + WIDE, None, {"value": 5.0}, "inconclusive"),
    ("at_least", 10 + TIGHT, None, {"value": 15.0, "margin": 6.0}, "reproduced"),
    ("at_most", 10 + TIGHT, None, {"value": 15.0}, "reproduced"),
    ("at_most", 10 + TIGHT, None, {"value": 5.0}, "not reproduced"),
    ("at_most", 5 + WIDE, None, {"value": 5.0}, "inconclusive"),
]


@pytest.mark.parametrize("relation,a,b,kw,expected", CASES,
                         ids=[f"{c[0]}-{c[4]}-{i}" for i, c in enumerate(CASES)])
def test_verdict_rules(relation, a, b, kw, expected):
    v = verdict_of(relation, a, b, **kw)
    assert v.verdict == expected, v.reason
    assert v.ci_low <= v.diff <= v.ci_high
    assert v.reason.startswith("95% ") and " interval of " in v.reason
    assert v.n_method == 5 and v.n_baseline == (0 if b is None else 5)
    assert v.interval == ("one-sample t" if b is None else "paired t")  # seeds 0..4 on both sides


def test_every_relation_is_covered():
    assert {c[0] for c in CASES} == set(RELATIONS)
    for r in RELATIONS:
        assert {c[4] for c in CASES if c[0] == r} == {"reproduced", "not reproduced", "inconclusive"}


def test_intervals_are_scipys_t_intervals():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1, 1, 6), rng.normal(0, 2, 6)
    est, lo, hi, how = t_interval(a, b, paired=True)
    ci = sst.ttest_rel(a, b).confidence_interval(0.95)
    assert how == "paired t" and (lo, hi) == pytest.approx((ci.low, ci.high)) and est == pytest.approx((a - b).mean())
    est, lo, hi, how = t_interval(a, b[:4])
    ci = sst.ttest_ind(a, b[:4], equal_var=False).confidence_interval(0.95)
    assert how == "Welch t" and (lo, hi) == pytest.approx((ci.low, ci.high))
    est, lo, hi, how = t_interval(a, 0.5)
    ci = sst.ttest_1samp(a, 0.5).confidence_interval(0.95)
    assert how == "one-sample t" and (lo, hi) == pytest.approx((ci.low - 0.5, ci.high - 0.5))
    # by hand: mean 2, sd 1, n = 3 -> 2 +- t(0.975, 2) / sqrt(3)
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (m, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert mean_ci([4.5]) == (4.5, None, None)
    with pytest.raises(ValueError):
        mean_ci([])
    with pytest.raises(ValueError):
        t_interval(a, b[:4], paired=True)


@pytest.mark.parametrize("dist", ["normal", "skewed"])
@pytest.mark.parametrize("n", [3, 5, 10])
def test_coverage_at_small_n(dist, n):
    """The "95%" intervals cover the true difference in 93-97% of 20,000 simulated experiments
    at n = 3, 5 and 10 seeds, for the one-sample, paired and Welch intervals, on normal data
    and on skewed data (gamma with shape 4, skewness 1: returns and rates of a few seeds are
    rarely more skewed than that). Measured with the same seed: much stronger skew breaks the
    one-sample interval (exponential data: 0.88-0.90), not the two-sample ones (0.93-0.97)."""
    rng = np.random.default_rng(1000 + n)
    reps = 20_000

    def draw(scale=1.0):
        if dist == "normal":
            return rng.normal(0.0, scale, (reps, n))
        return scale * (rng.gamma(4.0, 1.0, (reps, n)) - 4.0) / 2.0  # mean 0, sd = scale

    a, b, noise = draw(), draw(2.0), draw(0.5)

    def covered(lo, hi, true=0.0):
        return float(np.mean((lo <= true) & (true <= hi)))

    _, lo, hi, _ = t_interval(a + 3.0, 3.0)  # one-sample, against the true mean
    assert 0.93 <= covered(lo, hi) <= 0.97
    _, lo, hi, _ = t_interval(a + 1.0, a + noise, paired=True)  # correlated pairs, true diff 1
    assert 0.93 <= covered(lo, hi, 1.0) <= 0.97
    _, lo, hi, _ = t_interval(a, b)  # unequal variances
    assert 0.93 <= covered(lo, hi) <= 0.97


def test_the_old_bootstrap_would_not_cover():
    """Why the rule changed: with 3 seeds a percentile bootstrap of the mean is [min, max]
    and covers about 75% (measured here on normal data), far below its nominal 95%."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (4000, 3))
    boot = x[:, rng.integers(0, 3, (400, 3))].mean(axis=2)  # 400 resamples per experiment
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=1)
    assert float(np.mean((lo <= 0) & (0 <= hi))) < 0.85
    _, lo, hi, _ = t_interval(x)
    assert 0.93 <= float(np.mean((lo <= 0) & (0 <= hi))) <= 0.97


# --------------------------------------------------------------------------- seeds


def test_a_decisive_verdict_needs_five_seeds():
    four = verdict_of("greater", 10 + TIGHT[:4], TIGHT[:4])
    assert four.verdict == "inconclusive"
    assert four.reason.startswith("too few seeds (a: 4, b: 4; a verdict needs >= 5 per side)")
    assert "lies above 0" in four.reason and four.ci_low > 0  # the interval is still shown
    assert verdict_of("greater", 10 + TIGHT, TIGHT).verdict == "reproduced"
    assert MIN_SEEDS == 5
    one = verdict_of("greater", np.array([10.0]), TIGHT)
    assert one.verdict == "inconclusive" and "too few seeds" in one.reason and math.isnan(one.ci_low)
    thr = verdict_of("at_least", 10 + TIGHT[:3], None, value=0.0)
    assert thr.verdict == "inconclusive" and "too few seeds (a: 3" in thr.reason


def test_single_model_counts_as_one():
    """Evaluation-sampling seeds of one trained model are n = 1: the claim is about the trained
    side's seeds against that one model (paired on the sampling seeds where it has them)."""
    t = table({("a", "t"): 10 + TIGHT, ("base", "t"): 0.3 * TIGHT})
    single = {"single_model": {"base": "one SFT model"}}
    (v,) = evaluate(ClaimSet([claim("greater", baseline="base")], **single), t)
    assert v.verdict == "reproduced" and v.n_method == 5 and v.n_baseline == 1 and v.interval == "paired t"
    (w,) = evaluate(ClaimSet([claim("greater", baseline="base", paired=False)], **single), t)
    assert w.interval == "one-sample t" and w.diff == pytest.approx(v.diff)
    # the one model on the method side: the sign of the difference is kept
    (u,) = evaluate(ClaimSet([claim("less", method="base", baseline="a")], **single), t)
    assert u.verdict == "reproduced" and u.diff == pytest.approx(-v.diff) and u.n_method == 1
    both = table({("a", "t"): TIGHT, ("b", "t"): TIGHT + 5})
    (x,) = evaluate(ClaimSet([claim("less")], single_model={"a": "x", "b": "y"}), both)
    assert x.verdict == "inconclusive" and "single model" in x.reason
    # a property of the one model itself (a gate on the base) is judged over its evaluation samples
    (y,) = evaluate(ClaimSet([claim("at_least", value=-1.0)], single_model={"a": "one model"}), both)
    assert y.verdict == "reproduced" and y.n_method == 5
    assert y.interval == "one-sample t over evaluation samples of one model"
    s = summarise(t, by=["method"], metrics=["ret"], single_model=single["single_model"])
    row = s.filter(method="base").row(0, named=True)
    assert row["n"] == 1 and row["ci_low"] is None and row["mean"] == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- pairing


def test_pairing_is_inferred_from_matching_seeds():
    rng = np.random.default_rng(2)
    shared = rng.normal(0, 5, 6)  # seed effects shared by both methods
    a, b = shared + 1.0 + rng.normal(0, 0.1, 6), shared + rng.normal(0, 0.1, 6)
    same = table({("a", "t"): a, ("b", "t"): b})
    (paired,) = evaluate([claim("greater")], same)
    assert paired.interval == "paired t" and paired.paired and paired.verdict == "reproduced"
    (welch,) = evaluate([claim("greater", paired=False)], same)
    assert welch.interval == "Welch t" and not welch.paired and welch.verdict == "inconclusive"
    assert (welch.ci_high - welch.ci_low) > 10 * (paired.ci_high - paired.ci_low)
    other = table({("a", "t"): a, ("b", "t"): b}, seeds={"a": range(6), "b": range(10, 16)})
    (v,) = evaluate(ClaimSet([claim("greater")]), other)
    assert v.interval == "Welch t"
    (v,) = evaluate(ClaimSet([claim("greater", paired=True)]), other)
    assert v.verdict == "inconclusive" and "same seeds" in v.reason


def test_baseline_where_compares_one_method_on_two_tasks():
    t = table({("heron", "x1"): 100 + TIGHT, ("heron", "x100"): 100.2 + TIGHT, ("rlhf", "x1"): TIGHT})
    c = Claim(id="scale_inv", text="Scale invariance.", metric="ret", method="heron",
              where={"task": "x100"}, relation="equivalent", baseline="heron",
              baseline_where={"task": "x1"}, margin=5.0, source="paper §5.3",
              margin_source="test", **REG)
    (v,) = evaluate([c], t)
    assert v.verdict == "reproduced" and v.diff == pytest.approx(0.2)
    assert "heron (task=x100) - heron (task=x1)" in v.reason


def test_where_matches_non_string_columns():
    rows = [{"method": m, "level": lvl, "seed": s, "ret": float(10 * (m == "a") + s * 0.1 + (m == "b") * 0.3 * s * s)}
            for m in ("a", "b") for lvl in (1, 2) for s in range(5)]
    c = Claim(id="x", text="t", metric="ret", method="a", baseline="b", relation="greater",
              where={"level": 2}, source="s", margin_source="m", **REG)
    (v,) = evaluate([c], pl.DataFrame(rows))
    assert v.verdict == "reproduced" and v.n_method == 5


# --------------------------------------------------------------------------- floors


def test_both_sides_at_a_floor_are_untestable():
    zeros = np.zeros(5)
    floors = {"metrics": {"ret": Metric("ret", floor=0.0, ceiling=1.0)}}
    v = verdict_of("greater", zeros, zeros, claimset_kw=floors)
    assert v.verdict == "untestable" and "floor 0" in v.reason
    v = verdict_of("less", np.ones(5), np.ones(5), claimset_kw=floors)
    assert v.verdict == "untestable" and "ceiling 1" in v.reason
    # without the declaration, two identical results are what they are: the CI is [0, 0]
    assert verdict_of("greater", zeros, zeros).verdict == "not reproduced"
    assert verdict_of("not_less", zeros, zeros).verdict == "reproduced"
    # one side off the floor: a real comparison; the floor of one and the ceiling of the other too
    assert verdict_of("greater", np.full(5, 0.4) + TIGHT, zeros, claimset_kw=floors).verdict == "reproduced"
    assert verdict_of("greater", np.ones(5), zeros, claimset_kw=floors).verdict == "reproduced"
    # a floor on one seed only is no floor
    almost = np.array([0.0, 0.0, 0.0, 0.0, 0.2])
    assert verdict_of("greater", almost, zeros, claimset_kw=floors).verdict != "untestable"


# --------------------------------------------------------------------------- gates


def gate(value: float, gid: str = "g") -> Claim:
    return Claim(id=gid, text="b learns.", metric="ret", method="b", relation="at_least", value=value,
                 where={"task": "t"}, source="test", kind="gate", **REG)


@pytest.mark.parametrize("value,expected", [(-1.0, "reproduced"), (5.0, "untestable"), (0.0, "untestable")])
def test_gates(value, expected):
    """A gate that holds leaves the claim alone; a failed (5) or inconclusive (0: the interval
    straddles it) gate makes it untestable, naming the gate, and keeps the numbers."""
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT})
    g, c = evaluate(ClaimSet([claim("greater", gates=["g"])], [gate(value)]), t)
    assert g.claim.kind == "gate" and c.verdict == expected
    if expected == "untestable":
        assert c.reason.startswith(f"gate not met: g is {g.verdict}") and c.ci_low > 0
    assert count_verdicts([g, c])[expected.replace(" ", "_")] == 1 and sum(count_verdicts([g, c]).values()) == 1


def test_too_few_seeds_is_the_reason_before_an_inconclusive_gate():
    t = table({("a", "t"): 10 + TIGHT[:3], ("b", "t"): TIGHT})  # the gate's side has 5 seeds
    g, c = evaluate(ClaimSet([claim("greater", gates=["g"])], [gate(0.0)]), t)
    assert g.verdict == "inconclusive" and c.verdict == "inconclusive" and c.few_seeds
    assert c.reason.startswith("too few seeds") and c.reason.endswith("gate g is inconclusive too")
    g, c = evaluate(ClaimSet([claim("greater", gates=["g"])], [gate(5.0)]), t)  # a failed gate still rules
    assert g.verdict == "not reproduced" and c.verdict == "untestable"


def test_a_claim_can_gate_another_and_cycles_are_refused():
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT})
    first = claim("less", id="first")  # not reproduced
    second = claim("greater", id="second", gates=["first"])
    v1, v2 = evaluate(ClaimSet([second, first]), t)  # order in the file does not matter
    assert v1.id == "second" and v1.verdict == "untestable" and "first is not reproduced" in v1.reason
    with pytest.raises(ValueError, match="cycle"):
        ClaimSet([claim("less", id="x", gates=["y"]), claim("less", id="y", gates=["x"])])
    with pytest.raises(ValueError, match="no gate or claim 'nope'"):
        ClaimSet([claim("less", gates=["nope"])])
    with pytest.raises(ValueError, match="cannot depend on other gates"):
        Claim(**{**gate(0.0).__dict__, "gates": ["x"]})


# --------------------------------------------------------------------------- missing data


@pytest.mark.parametrize("kw,needle", [
    ({"baseline": "nobody"}, "no rows for method=nobody, task=t"),
    ({"where": {"task": "elsewhere"}}, "no rows for method=a, task=elsewhere"),
    ({"metric": "success"}, "no column 'success'"),
    ({"where": {"env": "t"}}, "no column 'env'"),
])
def test_missing_rows_are_inconclusive(kw, needle):
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT})
    (v,) = evaluate([claim("greater", **kw)], t)
    assert v.verdict == "inconclusive"
    assert v.reason.startswith("missing data") and needle in v.reason
    assert math.isnan(v.ci_low) and math.isnan(v.ci_high)


def test_nulls_nans_and_absent_seeds_are_never_dropped():
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT})
    nulls = t.with_columns(pl.when((pl.col("seed") == 0) & (pl.col("method") == "a")).then(None)
                           .otherwise(pl.col("ret")).alias("ret"))
    (v,) = evaluate([claim("greater")], nulls)
    assert v.verdict == "inconclusive" and "missing data: 1 of 5 seeds" in v.reason
    nan = table({("a", "t"): np.array([1.0, np.nan, 2.0, 3.0, 4.0]), ("b", "t"): TIGHT})
    (v,) = evaluate([claim("greater")], nan)
    assert v.verdict == "inconclusive" and "NaN" in v.reason
    (v,) = evaluate([claim("greater")], t.filter(pl.col("seed") != 3), seeds=range(5))
    assert v.verdict == "inconclusive" and "missing data: 1 of 5 seeds" in v.reason
    assert evaluate([claim("greater")], t, seeds=range(5))[0].verdict == "reproduced"
    both = pl.concat([t, t.with_columns(task=pl.lit("u"))])
    (v,) = evaluate([claim("greater", where={})], both)
    assert v.verdict == "inconclusive" and "ambiguous rows" in v.reason and "task" in v.reason
    (v,) = evaluate([claim("greater")], pl.DataFrame({"x": [1.0]}))
    assert v.verdict == "inconclusive" and "no column 'method'" in v.reason


def test_verdicts_are_deterministic_and_complete():
    t = table({("a", "t"): 10 + WIDE, ("b", "t"): WIDE})
    c = [claim("greater")]
    v = evaluate(c, t)[0]
    assert v.to_dict() == evaluate(c, t)[0].to_dict()
    entry = v.metrics_entry()
    for key in ("verdict", "diff", "ci_low", "ci_high", "n_method", "n_baseline", "paired", "interval",
                "margin", "margin_source", "gates", "registered", "reason"):
        assert key in entry


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_interval_brackets_the_mean(values):
    mean, lo, hi = mean_ci(values)
    assert lo <= mean + 1e-6 * max(1.0, abs(mean)) and mean - 1e-6 * max(1.0, abs(mean)) <= hi
    assert mean == pytest.approx(float(np.mean(values)), abs=1e-6)


# --------------------------------------------------------------------------- YAML


GOOD = """\
metrics:
  ret: {floor: 0, text: the return}
single_model:
  base: one model
gates:
  - id: b_learns
    text: b learns.
    source: spec
    metric: ret
    method: b
    where: {task: t}
    relation: at_least
    value: 1
    registered: before-results
claims:
  - id: beats_misweighted
    text: HERON beats a mis-weighted reward.
    source: paper §5.1
    metric: ret
    method: a
    where: {task: t}
    relation: greater
    baseline: b
    margin: 0.5
    margin_source: a third of the paper's gain
    gates: [b_learns]
    registered: before-results
  - id: solves
    text: A reaches 5.
    source: spec A §1.5
    metric: ret
    method: a
    where: {task: t, level: 2}
    relation: at_least
    value: 5e0
    registered: post-hoc
    post_hoc_reason: written after the first results
retired:
  - id: old_one
    text: It held by construction.
    last_verdict: reproduced
    why: moved to the tests
"""


def test_load_claims(tmp_path):
    p = tmp_path / "claims.yaml"
    p.write_text(GOOD)
    cs = load_claims(p)
    (g,), (c1, c2) = cs.gates, cs.claims
    assert g.kind == "gate" and c1.kind == "claim" and [c.id for c in cs] == ["b_learns", "beats_misweighted", "solves"]
    assert c1.baseline == "b" and c1.margin == 0.5 and c1.gates == ["b_learns"]
    assert c1.baseline_rows_where == {"task": "t"}
    assert c2.value == 5.0 and c2.where == {"task": "t", "level": "2"} and c2.registered == "post-hoc"
    assert cs.metrics["ret"].floor == 0.0 and cs.metrics["ret"].ceiling is None
    assert cs.single_model == {"base": "one model"} and cs.retired[0].id == "old_one"
    (tmp_path / "empty.yaml").write_text("")
    assert list(load_claims(tmp_path / "empty.yaml")) == []


@pytest.mark.parametrize("edit,needle", [
    (("    baseline: b\n", "    baseline: b\n    colour: red\n"), "unknown key 'colour'"),
    (("relation: greater", "relation: bigger"), "relation: 'bigger' is not one of"),
    (("    baseline: b\n", ""), "needs a baseline"),
    (("    value: 5e0\n", ""), "needs a value"),
    (("    value: 5e0\n", "    value: 5e0\n    baseline: b\n"), "drop baseline"),
    (("    margin: 0.5\n", "    margin: -1\n"), "margin"),
    (("relation: greater\n    baseline: b\n    margin: 0.5", "relation: equivalent\n    baseline: b\n    margin: 0"),
     "needs a margin > 0"),
    (("    baseline: b\n", "    baseline: a\n"), "same rows"),
    (("id: solves", "id: beats_misweighted"), "duplicate id"),
    (("    source: paper §5.1\n", ""), "missing key 'source'"),
    (("where: {task: t}\n    relation: greater", "where: {method: t}\n    relation: greater"), "where: 'method'"),
    (("value: 5e0", "value: lots"), "value: expected a number"),
    (("    margin_source: a third of the paper's gain\n", ""), "margin_source"),
    (("    registered: post-hoc\n    post_hoc_reason: written after the first results\n", ""),
     "missing key 'registered'"),
    (("    post_hoc_reason: written after the first results\n", ""), "post_hoc_reason"),
    (("    registered: post-hoc\n", "    registered: later\n"), "registered: expected one of"),
    (("gates: [b_learns]", "gates: [nobody]"), "no gate or claim 'nobody'"),
    (("gates: [b_learns]", "gates: [b_learns]\n    paired: maybe"), "paired: expected true or false"),
])
def test_load_claims_errors_are_one_line(tmp_path, edit, needle):
    p = tmp_path / "claims.yaml"
    text = GOOD.replace(*edit, 1)
    assert text != GOOD
    p.write_text(text)
    with pytest.raises(ValueError) as e:
        load_claims(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and needle in msg
    assert "claim 'beats_misweighted'" in msg or "claim 'solves'" in msg


def test_load_claims_file_errors(tmp_path):
    p = tmp_path / "claims.yaml"
    p.write_text("- id: x\n")
    with pytest.raises(ValueError, match="expected a mapping with sections"):
        load_claims(p)
    p.write_text("claim: []\n")
    with pytest.raises(ValueError, match="unknown section 'claim'"):
        load_claims(p)
    p.write_text("- [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_claims(p)
    with pytest.raises(ValueError, match="file not found"):
        load_claims(tmp_path / "nope.yaml")
    p.write_text(GOOD.replace("last_verdict: reproduced", "last_verdict: maybe"))
    with pytest.raises(ValueError, match="last_verdict"):
        load_claims(p)


# --------------------------------------------------------------------------- registration


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", *args], cwd=repo, check=True,
                   capture_output=True)


def test_registration_check_reads_git(tmp_path):
    """A claim that says before-results must be unchanged since the paper's first results."""
    (tmp_path / "stages/p").mkdir(parents=True)
    (tmp_path / "reports/p").mkdir(parents=True)
    claims = tmp_path / "stages/p/claims.yaml"
    git(tmp_path, "init", "-q")
    claims.write_text(GOOD)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "claims")
    assert registration_problems("p", tmp_path) == []  # no results yet
    (tmp_path / "reports/p/metrics.json").write_text("{}")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "results")
    assert registration_problems("p", tmp_path) == []
    # text and margin_source may be reworded; the margin may not
    claims.write_text(GOOD.replace("HERON beats", "HERON clearly beats").replace("a third of", "one third of"))
    assert registration_problems("p", tmp_path) == []
    claims.write_text(GOOD.replace("margin: 0.5", "margin: 0.1"))
    (problem,) = registration_problems("p", tmp_path)
    assert "'beats_misweighted' says before-results but its margin changed" in problem
    claims.write_text(GOOD.replace("    gates: [b_learns]\n", ""))
    assert "its gates changed" in registration_problems("p", tmp_path)[0]
    claims.write_text(GOOD.replace("value: 1\n", "value: 0.5\n"))
    assert "gate 'b_learns'" in registration_problems("p", tmp_path)[0]
    late = GOOD.replace("retired:", "  - id: late\n    text: x\n    source: s\n    metric: ret\n    method: a\n"
                        "    relation: at_least\n    value: 1\n    registered: before-results\nretired:")
    claims.write_text(late)
    assert registration_problems("p", tmp_path) == []  # added after the first results, judged by none yet
    # results that judge it, committed together with it: not before them
    (tmp_path / "reports/p/metrics.json").write_text('{"claims": {"late": {}}}')
    claims.write_text(late.replace("margin: 0.5", "margin: 0.1"))  # keep the old claim's problem out
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "late claim and its results")
    problems = registration_problems("p", tmp_path)
    assert any("'late' says before-results but was not committed before" in line for line in problems)
    claims.write_text(late.replace("value: 1\n    registered: before-results\nretired",
                                   "value: 1\n    registered: post-hoc\n    post_hoc_reason: r\nretired"))
    assert [line for line in registration_problems("p", tmp_path) if "'late'" in line] == []


def write_lock(repo, train_md5, report_md5="r0", other_md5="o0"):
    """A dvc.lock with one training stage and the report stage of paper p, and another paper's."""
    (repo / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n"
        f"  p_train@a:\n    cmd: x\n    outs:\n    - path: data/p/a\n      hash: md5\n      md5: {train_md5}\n"
        f"  p_report:\n    cmd: y\n    outs:\n    - path: reports/p/metrics.json\n      hash: md5\n"
        f"      md5: {report_md5}\n"
        f"  q_train:\n    cmd: z\n    outs:\n    - path: data/q\n      hash: md5\n      md5: {other_md5}\n")


LATE = GOOD.replace("retired:", "  - id: late\n    text: x\n    source: s\n    metric: ret\n    method: a\n"
                    "    relation: at_least\n    value: 1\n    registered: before-results\nretired:")


def _first_results_then_late_claim(tmp_path):
    (tmp_path / "stages/p").mkdir(parents=True)
    (tmp_path / "reports/p").mkdir(parents=True)
    git(tmp_path, "init", "-q")
    (tmp_path / "stages/p/claims.yaml").write_text(GOOD)
    (tmp_path / "reports/p/metrics.json").write_text('{"claims": {"beats_misweighted": {}}}')
    write_lock(tmp_path, "t0")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "claims and first results")
    (tmp_path / "stages/p/claims.yaml").write_text(LATE)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "a new claim, written after seeing the first results' data")
    assert registration_problems("p", tmp_path) == []


def test_a_late_claim_judged_by_a_re_report_of_the_same_data_is_not_before_results(tmp_path):
    """Writing a claim after seeing the data, committing it, then committing a re-run report of
    the SAME training outputs must not pass as before-results: only the report's hash (and
    another paper's training) changed in dvc.lock."""
    _first_results_then_late_claim(tmp_path)
    (tmp_path / "reports/p/metrics.json").write_text('{"claims": {"beats_misweighted": {}, "late": {}}}')
    write_lock(tmp_path, "t0", report_md5="r1", other_md5="o1")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "re-run report of the same data")
    (problem,) = registration_problems("p", tmp_path)
    assert "'late' says before-results but" in problem and "re-report of data that predates" in problem
    # a later retraining does not launder it: the first results that judged it were a re-report
    write_lock(tmp_path, "t1", report_md5="r2")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "retrained later")
    assert len(registration_problems("p", tmp_path)) == 1


def test_a_late_claim_judged_by_training_run_after_it_is_before_results(tmp_path):
    _first_results_then_late_claim(tmp_path)
    (tmp_path / "reports/p/metrics.json").write_text('{"claims": {"beats_misweighted": {}, "late": {}}}')
    write_lock(tmp_path, "t1", report_md5="r1")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "retrained: the run that judges it")
    assert registration_problems("p", tmp_path) == []
    # without any dvc.lock at the judging commit there is no evidence of a new run
    git(tmp_path, "reset", "-q", "--hard", "HEAD~1")
    (tmp_path / "reports/p/metrics.json").write_text('{"claims": {"beats_misweighted": {}, "late": {}}}')
    (tmp_path / "dvc.lock").unlink()
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "results without a lock")
    assert "re-report of data that predates" in registration_problems("p", tmp_path)[0]


def test_registration_of_a_claim_added_after_the_first_results(tmp_path):
    """A new experiment of a paper that has results: its claim is before-results when it was
    committed before the first metrics.json that judges it, that run trained after it, and it
    stays so only unchanged."""
    (tmp_path / "stages/p").mkdir(parents=True)
    (tmp_path / "reports/p").mkdir(parents=True)
    claims = tmp_path / "stages/p/claims.yaml"
    git(tmp_path, "init", "-q")
    claims.write_text(GOOD)
    (tmp_path / "reports/p/metrics.json").write_text('{"claims": {"beats_misweighted": {}}}')
    write_lock(tmp_path, "t0")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "claims and first results")
    late = LATE
    claims.write_text(late)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "a new claim, before its run")
    assert registration_problems("p", tmp_path) == []
    (tmp_path / "reports/p/metrics.json").write_text('{"claims": {"beats_misweighted": {}, "late": {}}}')
    write_lock(tmp_path, "t1", report_md5="r1")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "the run that judges it")
    assert registration_problems("p", tmp_path) == []
    claims.write_text(late.replace("at_least\n    value: 1\n    registered: before-results\nretired",
                                   "at_least\n    value: 2\n    registered: before-results\nretired"))
    (problem,) = registration_problems("p", tmp_path)
    assert "'late' says before-results but its value changed after" in problem and "that judges it" in problem


def test_every_paper_registers_its_claims_honestly():
    """The committed claims files: no before-results claim was changed after its paper's first
    committed results (claims and gates changed later say post-hoc, with the reason)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    papers = sorted(p.parent.name for p in root.glob("stages/*/claims.yaml"))
    assert papers
    problems = [line for paper in papers for line in registration_problems(paper, root)]
    assert problems == []


# --------------------------------------------------------------------------- summarise


def test_summarise_shape():
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT, ("a", "u"): WIDE, ("b", "u"): TIGHT[:3]})
    t = t.with_columns(succ=pl.when(pl.col("task") == "u").then(None).otherwise(pl.lit(1.0)))
    s = summarise(t, by=["task", "method"], metrics=["ret", "succ"])
    assert s.columns == ["task", "method", "metric", "mean", "ci_low", "ci_high", "n"]
    assert s.height == 8
    assert s.select("task", "method").unique(maintain_order=True).rows() == [
        ("t", "a"), ("t", "b"), ("u", "a"), ("u", "b")]
    assert s["metric"].to_list()[:2] == ["ret", "succ"]
    row = s.filter(task="t", method="a", metric="ret").row(0, named=True)
    assert row["mean"] == pytest.approx(10) and row["n"] == 5
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(mean_ci(10 + TIGHT)[1:])
    assert s.filter(task="u", method="b", metric="ret")["n"].item() == 3
    empty = s.filter(task="u", metric="succ")
    assert empty["n"].to_list() == [0, 0] and empty["mean"].null_count() == 2
    with pytest.raises(ValueError, match="no column 'nope'"):
        summarise(t, by=["nope"], metrics=["ret"])
    overall = summarise(t, by=[], metrics=["ret"])
    assert overall.columns == ["metric", "mean", "ci_low", "ci_high", "n"] and overall["n"].item() == 18
