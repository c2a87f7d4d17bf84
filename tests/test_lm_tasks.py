"""hrlzoo.lm.tasks: problems, traces in every style and template, the exact verifier."""

import numpy as np
import pytest

from hrlzoo.lm.tasks import (ADDSUB_LEVELS, STYLES, Problem, TaskSpec, column_steps, corrupt_solution,
                             correctness_reward, decomposition_prompt, decomposition_solution,
                             chain_level, demonstration, direct_prompt, make_level_mix, make_problems, mixed_level,
                             parse_answer, reflection_prompt, rewrite_to_direct, solution, verify)
from hrlzoo.lm.tokenizer import CharTokenizer

ALL_LEVELS = (list(ADDSUB_LEVELS.items()) + [(k, mixed_level(k)) for k in (2, 5, 8)]
              + [(10 + k, chain_level(k)) for k in (1, 4, 8)])


@pytest.mark.parametrize("level,spec", ALL_LEVELS)
def test_every_style_solves_the_problem(level, spec):
    rng = np.random.default_rng(1)
    tok = CharTokenizer()
    for p in make_problems(spec, 40, seed=level, level=level):
        assert p.answer == eval(p.expr)  # precedence of * over + and -
        assert len(p.operands) == spec.n_operands
        if spec.method == "columns":
            assert p.answer >= 0
        for style in STYLES:
            text = solution(p, style, rng)
            assert verify(text, p.answer).correct, (p.expr, style, text)
            assert tok.decode(tok.encode(text)) == text
        assert verify(decomposition_solution(p), p.answer).correct
        if p.method == "ops":  # the SFT target of Cog-Rethinker is the standard trace
            assert rewrite_to_direct(decomposition_solution(p)) == solution(p)


def test_styles_differ_as_specified():
    p = make_problems(ADDSUB_LEVELS[4], 1, seed=0)[0]
    rng = np.random.default_rng(0)
    std, verbose, direct = solution(p, "standard"), solution(p, "verbose", rng), solution(p, "direct")
    assert std.count(";") == 4  # one line per column of 4-digit operands
    assert std.startswith("c0 ") and "w" in std and "k" in std
    assert 5 <= verbose.count(";") <= 7 and verbose.count("chk ") == verbose.count(";") - 4
    assert direct == f"</think>#### {p.answer}"
    assert direct_prompt(p, budget=64) == f"Q:{p.expr}<think><b64>"
    assert direct_prompt(p) == f"Q:{p.expr}<think>"


def test_chain_levels_keep_every_step_line_the_same_width():
    for k in (1, 3, 8):
        for p in make_problems(chain_level(k), 200, seed=k, level=k):
            assert 10 <= p.operands[0] <= 99 and all(1 <= x <= 9 for x in p.operands[1:])
            assert set(p.ops) <= {"+", "-"} and len(p.ops) == k
            lines = solution(p).partition("</think>")[0].split(";")[:-1]
            assert len(lines) == k and all(len(x) == 7 for x in lines), lines  # "37+4=41"
            assert all(10 <= int(x.split("=")[1]) <= 99 for x in lines)
    p = Problem((37, 4, 8, 2), ("+", "-", "+"), 3, "ops")
    assert solution(p) == "37+4=41;41-8=33;33+2=35;</think>#### 35"
    # a narrow range keeps only problems whose every value stays inside
    for p in make_problems(chain_level(3, (40, 60)), 50, seed=0):
        assert all(40 <= int(x.split("=")[1]) <= 60 for x in solution(p).split(";")[:-1])
    with pytest.raises(ValueError):
        chain_level(2, (50, 40))


def test_verbose_checks_at_the_end_leave_the_steps_in_place():
    p = Problem((37, 4, 8, 2), ("+", "-", "+"), 3, "ops")
    end = solution(p, "verbose", np.random.default_rng(3), min_checks=2, max_checks=2, checks_at="end")
    head = "37+4=41;41-8=33;33+2=35;"
    assert end.startswith(head) and end.endswith("</think>#### 35")
    checks = end[len(head):].partition("</think>")[0].split(";")[:-1]
    assert len(checks) == 2 and all(c.startswith("chk ") and c[4:] + ";" in head for c in checks)
    inline = solution(p, "verbose", np.random.default_rng(3), min_checks=2, max_checks=2)
    assert sorted(inline.split(";")) == sorted(end.split(";"))  # same lines, other places
    with pytest.raises(ValueError):
        solution(p, "verbose", np.random.default_rng(0), checks_at="middle")


def test_column_trace_by_hand():
    p = Problem((57, 68, 9), ("+", "-"), method="columns")  # 57 + 68 - 09 = 116
    assert solution(p) == "c0 7+8-9+0=6 w6 k0;c1 5+6-0+0=11 w1 k1;</think>#### 116"
    neg = Problem((21, 19), ("-",), method="columns")
    assert [s.carry for s in column_steps(neg)] == [-1, 0]
    assert solution(neg) == "c0 1-9+0=-8 w2 k-1;c1 2-1-1=0 w0 k0;</think>#### 2"


def test_ops_trace_and_decomposition_by_hand():
    p = Problem((12, 3, 5, 4), ("+", "*", "-"), method="ops")  # 12 + 3*5 - 4 = 23
    assert solution(p) == "3*5=15;12+15=27;27-4=23;</think>#### 23"
    d = decomposition_solution(p)
    assert d == "s1=3*5=15;s2=12+s1=27;s3=s2-4=23;</think>#### 23"
    assert rewrite_to_direct(d) == solution(p)
    assert rewrite_to_direct(solution(p)) == solution(p)
    assert rewrite_to_direct("s1=3*5=15;s2=12+s7=27;</think>#### 27") is None   # unknown sub-result
    assert rewrite_to_direct("s1=3*5=15;garbage;</think>#### 27") is None
    assert rewrite_to_direct("no answer") is None
    assert demonstration(p) == "Q:12+3*5-4 s1=3*5=15;s2=12+s1=27;s3=s2-4=23;#### 23"
    assert decomposition_prompt(p, ["D1", "D2"]) == "Q:12+3*5-4<demo>D1<demo>D2<plan><think>"
    assert decomposition_prompt(p) == "Q:12+3*5-4<plan><think>"
    assert reflection_prompt(p, "3*5=16;</think>#### 24<eos>") == "Q:12+3*5-4<wrong>3*5=16;#### 24<fix><think>"


def test_problems_are_deterministic_from_the_seed():
    a = make_problems(mixed_level(4), 20, seed=7)
    assert a == make_problems(mixed_level(4), 20, seed=7)
    assert a != make_problems(mixed_level(4), 20, seed=8)
    mix = make_level_mix(ADDSUB_LEVELS, 5, seed=0)
    assert [p.level for p in mix] == [1] * 5 + [2] * 5 + [3] * 5 + [4] * 5
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    assert [solution(p, "verbose", rng1) for p in a] == [solution(p, "verbose", rng2) for p in a]


@pytest.mark.parametrize("spec", [ADDSUB_LEVELS[3], mixed_level(6)])
def test_corrupted_solutions_are_wrong_but_well_formed(spec):
    rng = np.random.default_rng(0)
    for p in make_problems(spec, 50, seed=3):
        bad = corrupt_solution(p, rng)
        v = verify(bad, p.answer)
        assert v.well_formed and not v.correct, (p.expr, bad)
        assert bad.count(";") == solution(p).count(";")


@pytest.mark.parametrize("text,expected", [
    ("</think>#### 42", 42),
    ("c0 1+1=2;</think>#### -17", -17),
    ("</think>#### 0", 0),
    ("</think>####42 ", 42),                 # spaces around the number are fine
    ("#### 1;</think>#### 7", 7),            # the last mark counts
    ("</think>#### 42x", None),              # trailing junk
    ("</think>#### 4 2", None),
    ("</think>#### 042", None),              # leading zero
    ("</think>#### -0", None),
    ("</think>#### +5", None),
    ("</think>#### ", None),                 # no number
    ("</think>### 42", None),                # no mark
    ("#### 42", None),                       # reasoning never closed
    ("", None),
    ("</think>#### 99999999999999999999", 99999999999999999999),
])
def test_parse_answer_is_exact(text, expected):
    assert parse_answer(text) == expected


def test_verify_and_reward():
    class S:  # what a reward function sees (hrlzoo.algos.grpo.Sample)
        def __init__(self, text, finished=True):
            self.item, self.text, self.finished = Problem((2, 3), ("+",)), text, finished

    assert parse_answer("#### 42", require_think_end=False) == 42
    assert verify("</think>#### 5", 5).correct and not verify("</think>#### 6", 5).correct
    assert not verify("</think>#### 5!", 5).well_formed
    assert correctness_reward(S("</think>#### 5")) == 1.0
    assert correctness_reward(S("</think>#### 6")) == 0.0
    assert correctness_reward(S("</think>#### 5", finished=False)) == 0.0  # cut at max tokens
    assert correctness_reward(S("#### 5"), format_penalty=-1.0) == -1.0
    assert correctness_reward(S("</think>#### 6"), format_penalty=-1.0) == 0.0


def test_bad_specs_are_refused():
    with pytest.raises(ValueError):
        TaskSpec(2, 2, "+*", "columns")
    with pytest.raises(ValueError):
        TaskSpec(1, 2)
    with pytest.raises(ValueError):
        solution(Problem((1, 2), ("+",)), "verbose")  # needs a generator
