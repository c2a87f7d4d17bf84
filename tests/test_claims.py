"""Claims as data: validation, bootstrap CIs, and the verdict rules on synthetic tables."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hrlzoo.pipeline.claims import (RELATIONS, Claim, bootstrap_ci, count_verdicts, diff_ci,
                                    evaluate, load_claims, summarise)

TIGHT = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])  # five seeds, small spread
WIDE = np.array([-10.0, -5.0, 0.0, 5.0, 10.0])  # five seeds, large spread


def table(groups: dict[tuple[str, str], np.ndarray], metric: str = "ret") -> pl.DataFrame:
    """One row per (method, task, seed) from {(method, task): values}."""
    rows = [{"method": m, "task": t, "seed": s, metric: float(v)}
            for (m, t), vals in groups.items() for s, v in enumerate(vals)]
    return pl.DataFrame(rows)


def claim(relation: str, **kw) -> Claim:
    base = dict(id="c", text="A claim.", metric="ret", method="a", relation=relation,
                source="test", where={"task": "t"})
    if relation in ("at_least", "at_most"):
        base["value"] = kw.pop("value", 0.0)
    else:
        base["baseline"] = kw.pop("baseline", "b")
    base.update(kw)
    return Claim(**base)


def verdict_of(relation: str, a: np.ndarray, b: np.ndarray | None = None, **kw):
    groups = {("a", "t"): a}
    if b is not None:
        groups[("b", "t")] = b
    (v,) = evaluate([claim(relation, **kw)], table(groups), n_boot=2000)
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
    assert v.reason.startswith("95% CI of ")
    assert v.n_method == 5 and v.n_baseline == (0 if b is None else 5)


def test_every_relation_is_covered():
    assert {c[0] for c in CASES} == set(RELATIONS)
    for r in RELATIONS:
        assert {c[4] for c in CASES if c[0] == r} == {"reproduced", "not reproduced", "inconclusive"}


def test_identical_deterministic_results():
    """CI = [0, 0]: refutes a strict claim, supports a non-strict one."""
    same = np.array([3.0, 3.0, 3.0])
    assert verdict_of("greater", same, same).verdict == "not reproduced"
    assert verdict_of("not_less", same, same).verdict == "reproduced"
    assert verdict_of("not_greater", same, same).verdict == "reproduced"
    assert verdict_of("equivalent", same, same, margin=0.1).verdict == "reproduced"


def test_fields_and_reason():
    v = verdict_of("greater", 10 + TIGHT, TIGHT)
    assert v.mean_method == pytest.approx(10) and v.mean_baseline == pytest.approx(0, abs=1e-12)
    assert v.diff == pytest.approx(10)
    assert v.reason.endswith("lies above 0") and "a - b" in v.reason
    t = verdict_of("at_least", 10 + TIGHT, None, value=5.0)
    assert t.mean_baseline == 5.0 and t.diff == pytest.approx(5.0)
    assert "at or above 5" in t.reason
    assert count_verdicts([v, t]) == {"reproduced": 2, "not_reproduced": 0, "inconclusive": 0}


def test_baseline_where_compares_one_method_on_two_tasks():
    t = table({("heron", "x1"): 100 + TIGHT, ("heron", "x100"): 100.2 + TIGHT,
               ("rlhf", "x1"): TIGHT})
    c = Claim(id="scale_inv", text="Scale invariance.", metric="ret", method="heron",
              where={"task": "x100"}, relation="equivalent", baseline="heron",
              baseline_where={"task": "x1"}, margin=5.0, source="paper §5.3")
    (v,) = evaluate([c], t, n_boot=1000)
    assert v.verdict == "reproduced"
    assert v.diff == pytest.approx(0.2)
    assert "heron (task=x100) - heron (task=x1)" in v.reason


def test_where_matches_non_string_columns():
    rows = [{"method": m, "level": lvl, "seed": s, "ret": float(10 * (m == "a") + s * 0.1)}
            for m in ("a", "b") for lvl in (1, 2) for s in range(4)]
    c = Claim(id="x", text="t", metric="ret", method="a", baseline="b", relation="greater",
              where={"level": 2}, source="s")
    (v,) = evaluate([c], pl.DataFrame(rows), n_boot=500)
    assert v.verdict == "reproduced" and v.n_method == 4


# --------------------------------------------------------------------------- inconclusive data


def test_fewer_than_two_seeds():
    v = verdict_of("greater", np.array([10.0]), TIGHT)
    assert v.verdict == "inconclusive" and v.reason.startswith("fewer than 2 seeds")
    assert v.n_method == 1 and v.diff == pytest.approx(10.0) and math.isnan(v.ci_low)
    v = verdict_of("at_least", np.array([10.0]), None, value=0.0)
    assert v.verdict == "inconclusive" and v.reason.startswith("fewer than 2 seeds")


@pytest.mark.parametrize("kw,needle", [
    ({"baseline": "nobody"}, "no rows for method=nobody, task=t"),
    ({"where": {"task": "elsewhere"}}, "no rows for method=a, task=elsewhere"),
    ({"metric": "success"}, "no column 'success'"),
    ({"where": {"env": "t"}}, "no column 'env'"),
])
def test_missing_rows_are_inconclusive(kw, needle):
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT})
    (v,) = evaluate([claim("greater", **kw)], t, n_boot=100)
    assert v.verdict == "inconclusive"
    assert v.reason.startswith("missing data") and needle in v.reason
    assert math.isnan(v.ci_low) and math.isnan(v.ci_high)


def test_bad_rows_are_inconclusive_not_errors():
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT, ("a", "u"): TIGHT, ("b", "u"): TIGHT})
    (v,) = evaluate([claim("greater", where={})], t, n_boot=100)
    assert v.verdict == "inconclusive" and "ambiguous rows" in v.reason and "task" in v.reason
    nan = table({("a", "t"): np.array([1.0, np.nan, 2.0]), ("b", "t"): TIGHT})
    (v,) = evaluate([claim("greater")], nan, n_boot=100)
    assert v.verdict == "inconclusive" and "NaN" in v.reason
    nulls = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT}).with_columns(
        pl.when(pl.col("seed") == 0).then(None).otherwise(pl.col("ret")).alias("ret"))
    (v,) = evaluate([claim("greater")], nulls, n_boot=100)
    assert v.verdict == "reproduced" and v.n_method == 4 and v.n_baseline == 4
    (v,) = evaluate([claim("greater")], pl.DataFrame({"x": [1.0]}), n_boot=100)
    assert v.verdict == "inconclusive" and "no column 'method'" in v.reason


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic():
    x = np.random.default_rng(3).normal(size=20)
    assert bootstrap_ci(x, seed=7) == bootstrap_ci(x, seed=7)
    assert bootstrap_ci(x, seed=7) != bootstrap_ci(x, seed=8)
    assert diff_ci(x, x[:7] + 1, seed=1) == diff_ci(x, x[:7] + 1, seed=1)
    t = table({("a", "t"): 10 + WIDE, ("b", "t"): WIDE})
    c = [claim("greater")]
    assert evaluate(c, t)[0].to_dict() == evaluate(c, t)[0].to_dict()


def test_single_value_and_errors():
    assert bootstrap_ci([4.5]) == (4.5, 4.5, 4.5)
    assert diff_ci([4.0], [1.0]) == (3.0, 3.0, 3.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], level=1.5)


def test_ci_contains_true_mean_on_large_sample():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=2000)
    mean, lo, hi = bootstrap_ci(x)
    assert lo < 3.0 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * 2.0 / math.sqrt(2000), rel=0.1)
    d, lo, hi = diff_ci(x, np.random.default_rng(1).normal(1.0, 1.0, size=3000))
    assert lo < 2.0 < hi


def test_ci_coverage_near_nominal():
    rng = np.random.default_rng(42)
    hits = 0
    for i in range(200):
        _, lo, hi = bootstrap_ci(rng.normal(0.0, 1.0, size=40), n_boot=1000, seed=i)
        hits += lo < 0.0 < hi
    assert 0.88 <= hits / 200 <= 0.99


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=30))
def test_ci_brackets_the_mean(values):
    mean, lo, hi = bootstrap_ci(values, n_boot=200)
    assert lo <= mean <= hi
    assert mean == pytest.approx(float(np.mean(values)), abs=1e-6)


# --------------------------------------------------------------------------- YAML


GOOD = """\
- id: beats_misweighted
  text: HERON beats a mis-weighted reward.
  source: paper §5.1
  metric: ret
  method: a
  where: {task: t}
  relation: greater
  baseline: b
- id: solves
  text: A reaches 5.
  source: spec A §1.5
  metric: ret
  method: a
  where: {task: t, level: 2}
  relation: at_least
  value: 5e0
"""


def test_load_claims(tmp_path):
    p = tmp_path / "claims.yaml"
    p.write_text(GOOD)
    c1, c2 = load_claims(p)
    assert c1.id == "beats_misweighted" and c1.baseline == "b" and c1.margin == 0.0
    assert c1.baseline_rows_where == {"task": "t"}
    assert c2.value == 5.0 and c2.where == {"task": "t", "level": "2"}
    (tmp_path / "empty.yaml").write_text("")
    assert load_claims(tmp_path / "empty.yaml") == []


@pytest.mark.parametrize("edit,needle", [
    (("  baseline: b\n", "  baseline: b\n  colour: red\n"), "unknown key 'colour'"),
    (("relation: greater", "relation: bigger"), "relation: 'bigger' is not one of"),
    (("  baseline: b\n", ""), "needs a baseline"),
    (("  value: 5e0\n", ""), "needs a value"),
    (("  value: 5e0\n", "  value: 5e0\n  baseline: b\n"), "drop baseline"),
    (("  baseline: b\n", "  baseline: b\n  margin: -1\n"), "margin"),
    (("relation: greater", "relation: equivalent"), "needs a margin > 0"),
    (("  baseline: b\n", "  baseline: a\n"), "same rows"),
    (("id: solves", "id: beats_misweighted"), "duplicate id"),
    (("  source: paper §5.1\n", ""), "missing key 'source'"),
    (("where: {task: t}", "where: {method: t}"), "where: 'method'"),
    (("value: 5e0", "value: lots"), "value: expected a number"),
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
    p.write_text("id: x\n")
    with pytest.raises(ValueError, match="expected a YAML list"):
        load_claims(p)
    p.write_text("- [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_claims(p)
    with pytest.raises(ValueError, match="file not found"):
        load_claims(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- summarise


def test_summarise_shape():
    t = table({("a", "t"): 10 + TIGHT, ("b", "t"): TIGHT, ("a", "u"): WIDE, ("b", "u"): TIGHT[:3]})
    t = t.with_columns(succ=pl.when(pl.col("task") == "u").then(None).otherwise(pl.lit(1.0)))
    s = summarise(t, by=["task", "method"], metrics=["ret", "succ"], n_boot=500)
    assert s.columns == ["task", "method", "metric", "mean", "ci_low", "ci_high", "n"]
    assert s.height == 8
    assert s.select("task", "method").unique(maintain_order=True).rows() == [
        ("t", "a"), ("t", "b"), ("u", "a"), ("u", "b")]
    assert s["metric"].to_list()[:2] == ["ret", "succ"]
    row = s.filter(task="t", method="a", metric="ret").row(0, named=True)
    assert row["mean"] == pytest.approx(10) and row["ci_low"] <= 10 <= row["ci_high"] and row["n"] == 5
    assert s.filter(task="u", method="b", metric="ret")["n"].item() == 3
    empty = s.filter(task="u", metric="succ")
    assert empty["n"].to_list() == [0, 0] and empty["mean"].null_count() == 2
    assert summarise(t, by=["task", "method"], metrics=["ret"], n_boot=500).equals(
        summarise(t, by=["task", "method"], metrics=["ret"], n_boot=500))
    with pytest.raises(ValueError, match="no column 'nope'"):
        summarise(t, by=["nope"], metrics=["ret"])
    overall = summarise(t, by=[], metrics=["ret"], n_boot=100)
    assert overall.columns == ["metric", "mean", "ci_low", "ci_high", "n"] and overall["n"].item() == 18
