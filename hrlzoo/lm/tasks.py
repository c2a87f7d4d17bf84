"""Verifiable synthetic reasoning tasks: integer arithmetic expressions, their step-by-step
solutions in several styles and templates, and an exact verifier.

    spec = ADDSUB_LEVELS[3]                                  # 4 numbers x 3 digits, + and -
    probs = make_problems(spec, n=100, seed=0)               # deterministic from the seed
    p = probs[0]; p.expr, p.answer                           # "684+921+553-645", 1513
    direct_prompt(p, budget=64)                              # "Q:684+921+553-645<think><b64>"
    solution(p, "standard")                                  # "c0 4+1+3-5+0=3 w3 k0;...</think>#### 1513"
    verify(solution(p, "verbose", rng), p.answer).correct    # True

Text layout (every piece is a string; `hrlzoo.lm.tokenizer` turns markers into single tokens):

    prompt      Q:<expr>[sections]<think>[<bN>]      (BOS is added by the encoder)
    completion  <step>;<step>;...;</think>#### <answer>   (EOS is added by the encoder)

Two solution methods (a `TaskSpec` picks one):
- "columns" (HBPO's substrate, spec_B 1.5): + and - only, answer >= 0; one line per digit
  column over ALL operands at once with the carry, `c0 2+8-7-6+0=-3 w7 k-1` = column 0: signed
  digits plus carry-in = value, written digit w = value mod 10, carry k = floor(value / 10);
  the answer is the final carry followed by the written digits.
- "ops" (Cog-Rethinker's substrate, spec_B 6.5): + - * with the usual precedence; one binary
  operation per line, all products first (left to right), then sums/differences left to right:
  `3*4=12;12+12=24;24-30=-6`. `chain_level(k)` is its + / - special case that tiny models
  learn in minutes: a two-digit number and k one-digit steps, every value two-digit
  (`37+4=41;41-8=33;33+2=35`).

Styles of the direct/standard template (HBPO 1.5):
- "standard": every step line;
- "verbose":  the standard lines plus `chk <line>` re-checks of random earlier lines (the
  over-thinking an SFT base should show and HBPO should remove);
- "direct":   no reasoning at all, `</think>#### <answer>`.

Cog-Rethinker templates (spec_B 6.5; the prompts are our reading, the paper's are unknown):
- decomposition: `Q:<expr><demo>..<demo>..<plan><think>` -> one named sub-result per line,
  `s1=3*4=12;s2=5*6=30;s3=12+s1=24;s4=s3-s2=-6;</think>#### -6`; demonstrations are
  `demonstration(problem)` strings (retrieved by the caller, e.g. BM25 over `keywords`);
- reflection: `Q:<expr><wrong><previous wrong solution><fix><think>` -> the standard solution;
  `corrupt_solution` makes wrong solutions for its SFT data (one step off, errors propagate);
- `rewrite_to_direct` turns a (correct) decomposition solution back into the standard
  one-op-per-line text, the target of Cog-Rethinker's SFT term.

Verifier: `parse_answer` reads the integer after the last `####`, which must close the text
(`0|-?[1-9][0-9]*`, nothing after it), and by default needs `</think>` before it. Anything
else is malformed (None). `correctness_reward` is the 0/1 reward callable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hrlzoo.lm.tokenizer import DEMO, END_THINK, EOS, FIX, PAD, PLAN, THINK, WRONG, budget_token

STYLES = ("standard", "verbose", "direct")
METHODS = ("columns", "ops")
ANSWER_MARK = "####"


@dataclass(frozen=True)
class TaskSpec:
    """One difficulty level: how problems of that level are drawn and solved."""

    n_operands: int           # numbers in the expression (= operations + 1)
    digits: int               # every operand of + and - has exactly this many digits
    ops: str = "+-"           # operators drawn uniformly from these characters
    method: str = "columns"   # solution method of the standard trace: "columns" | "ops"
    mul_digits: int = 1       # digits of the right factor of a "*" (never 0 or 1)
    first_digits: int | None = None   # digits of the first operand (None: `digits`)
    operand_low: int = 0      # smallest + / - operand after the first (1: no "+0")
    value_range: tuple[int, int] | None = None  # first operand and every step value inside, else redrawn

    def __post_init__(self):
        if (self.n_operands < 2 or self.digits < 1 or self.mul_digits < 1
                or (self.first_digits is not None and self.first_digits < 1)
                or not 0 <= self.operand_low < 10 ** self.digits
                or (self.value_range is not None and self.value_range[0] > self.value_range[1])):
            raise ValueError(f"bad TaskSpec {self}")
        if not self.ops or set(self.ops) - set("+-*"):
            raise ValueError(f"ops must be a non-empty subset of '+-*', got {self.ops!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.method == "columns" and "*" in self.ops:
            raise ValueError("the columns method solves + and - only")


# HBPO (spec_B 1.5): four levels, L1 = 2 numbers x 2 digits ... L4 = 4 numbers x 4 digits.
ADDSUB_LEVELS = {1: TaskSpec(2, 2), 2: TaskSpec(3, 3), 3: TaskSpec(4, 3), 4: TaskSpec(4, 4)}


def chain_level(k: int, value_range: tuple[int, int] = (10, 99)) -> TaskSpec:
    """A left-to-right chain of k additions/subtractions of one digit (1-9) to a two-digit
    number, every step value inside `value_range`: `37+4-8+2` -> `37+4=41;41-8=33;33+2=35`.
    With the default range every step line has the same width, so step i sits at a fixed
    place: the substrate a sub-million-parameter GPT learns in a few CPU minutes (a measured
    choice, see the LM papers' reports; the specs' multi-digit column sums it did not)."""
    return TaskSpec(k + 1, 1, "+-", "ops", first_digits=2, operand_low=1, value_range=value_range)


def mixed_level(k: int, digits: int = 2) -> TaskSpec:
    """Cog-Rethinker (spec_B 6.5): k operations (+ - *) on `digits`-digit numbers; level = k."""
    return TaskSpec(k + 1, digits, "+-*", "ops")


@dataclass(frozen=True)
class Problem:
    """An expression `operands[0] ops[0] operands[1] ...` and its solution method."""

    operands: tuple[int, ...]
    ops: tuple[str, ...]
    level: int = 0
    method: str = "columns"

    @property
    def expr(self) -> str:
        out = [str(self.operands[0])]
        for op, x in zip(self.ops, self.operands[1:]):
            out += [op, str(x)]
        return "".join(out)

    @property
    def answer(self) -> int:
        return op_steps(self)[-1].value if self.ops else self.operands[0]


# ---------------------------------------------------------------------------------- problems
def _draw(rng: np.random.Generator, digits: int, low: int = 0) -> int:
    """A number with exactly `digits` digits (any of 0-9 for one digit), at least `low`."""
    return int(rng.integers(max(low, 10 ** (digits - 1) if digits > 1 else 0), 10 ** digits))


def _in_range(p: Problem, value_range: tuple[int, int] | None) -> bool:
    if value_range is None:
        return True
    lo, hi = value_range
    return lo <= p.operands[0] <= hi and all(lo <= s.value <= hi for s in op_steps(p))


def make_problem(spec: TaskSpec, rng: np.random.Generator, level: int = 0) -> Problem:
    """One problem of `spec`. The columns method redraws until the answer is >= 0; a
    `value_range` redraws until the first operand and every step value lie inside it."""
    first = spec.digits if spec.first_digits is None else spec.first_digits
    while True:
        ops = tuple(str(rng.choice(list(spec.ops))) for _ in range(spec.n_operands - 1))
        nums = [_draw(rng, first)]
        for op in ops:
            nums.append(_draw(rng, spec.mul_digits, 2) if op == "*"
                        else _draw(rng, spec.digits, spec.operand_low))
        p = Problem(tuple(nums), ops, level, spec.method)
        if (spec.method == "ops" or p.answer >= 0) and _in_range(p, spec.value_range):
            return p


def make_problems(spec: TaskSpec, n: int, seed: int, level: int = 0) -> list[Problem]:
    """`n` problems of `spec`, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return [make_problem(spec, rng, level) for _ in range(n)]


def make_level_mix(levels: dict[int, TaskSpec], n_per_level: int, seed: int) -> list[Problem]:
    """`n_per_level` problems of every level (level k drawn from seed + k), levels in order."""
    return [p for k, spec in sorted(levels.items()) for p in make_problems(spec, n_per_level, seed + k, k)]


# ---------------------------------------------------------------------------------- steps
@dataclass(frozen=True)
class OpStep:
    """One binary operation `left op right = value`; `left_ref`/`right_ref` name an earlier
    sub-result (1-based, as in `s2`) or are 0 for an operand of the problem."""

    left: int
    op: str
    right: int
    value: int
    left_ref: int = 0
    right_ref: int = 0


def _apply(a: int, op: str, b: int) -> int:
    return a * b if op == "*" else a + b if op == "+" else a - b


def op_steps(problem: Problem, perturb: tuple[int, int] | None = None) -> list[OpStep]:
    """The operations of `problem` in evaluation order: every `*` left to right, then `+`/`-`
    left to right. `perturb=(i, delta)` adds `delta` to the value of step i and lets the
    error propagate (a wrong solution, as a model would write it)."""
    terms = [(x, 0) for x in problem.operands]  # (value, ref of the step that produced it)
    ops = list(problem.ops)
    steps: list[OpStep] = []
    for pass_ops in ("*", "+-"):
        i = 0
        while i < len(ops):
            if ops[i] not in pass_ops:
                i += 1
                continue
            (a, ra), (b, rb) = terms[i], terms[i + 1]
            v = _apply(a, ops[i], b)
            if perturb is not None and perturb[0] == len(steps):
                v += perturb[1]
            steps.append(OpStep(a, ops[i], b, v, ra, rb))
            terms[i: i + 2] = [(v, len(steps))]
            del ops[i]
    return steps


@dataclass(frozen=True)
class ColumnStep:
    """Column `index` of the signed column sum: sum_j signs[j] * digits[j] + carry_in = value;
    written digit value mod 10, carry out floor(value / 10)."""

    index: int
    digits: tuple[int, ...]
    signs: tuple[int, ...]
    carry_in: int
    value: int

    @property
    def digit(self) -> int:
        return self.value % 10

    @property
    def carry(self) -> int:
        return self.value // 10


def column_steps(problem: Problem, perturb: tuple[int, int] | None = None) -> list[ColumnStep]:
    """The column-by-column sum of `problem` (+ and - only), least significant column first.
    `perturb=(i, delta)` adds `delta` to the value of column i (the carry propagates it)."""
    if set(problem.ops) - set("+-"):
        raise ValueError(f"columns method: + and - only, got {problem.expr}")
    signs = (1,) + tuple(1 if op == "+" else -1 for op in problem.ops)
    n_cols = max(len(str(x)) for x in problem.operands)
    steps, carry = [], 0
    for i in range(n_cols):
        digits = tuple((x // 10 ** i) % 10 for x in problem.operands)
        v = sum(s * d for s, d in zip(signs, digits)) + carry
        if perturb is not None and perturb[0] == i:
            v += perturb[1]
        steps.append(ColumnStep(i, digits, signs, carry, v))
        carry = v // 10
    return steps


def _signed(x: int) -> str:
    return f"+{x}" if x >= 0 else str(x)


def _column_line(s: ColumnStep) -> str:
    terms = str(s.digits[0]) + "".join(("+" if g > 0 else "-") + str(d)
                                       for g, d in zip(s.signs[1:], s.digits[1:]))
    return f"c{s.index} {terms}{_signed(s.carry_in)}={s.value} w{s.digit} k{s.carry}"


def _column_answer(steps: list[ColumnStep]) -> int:
    """The number the written digits and the final carry spell (the carry may be negative
    for a perturbed solution: then the number is what the digits mean arithmetically)."""
    return sum(s.digit * 10 ** s.index for s in steps) + steps[-1].carry * 10 ** len(steps)


def _op_line(s: OpStep) -> str:
    return f"{s.left}{s.op}{s.right}={s.value}"


def standard_lines(problem: Problem, perturb: tuple[int, int] | None = None) -> tuple[list[str], int]:
    """The step lines of the standard trace (no separators) and the answer they reach."""
    if problem.method == "columns":
        cols = column_steps(problem, perturb)
        return [_column_line(s) for s in cols], _column_answer(cols)
    steps = op_steps(problem, perturb)
    return [_op_line(s) for s in steps], steps[-1].value


def n_steps(problem: Problem) -> int:
    """Steps of the standard trace (columns or operations)."""
    if problem.method == "columns":
        return max(len(str(x)) for x in problem.operands)
    return len(problem.ops)


def _finish(lines: Sequence[str], answer: int) -> str:
    body = "".join(f"{line};" for line in lines)
    return f"{body}{END_THINK}{ANSWER_MARK} {answer}"


# ---------------------------------------------------------------------------------- templates
def direct_prompt(problem: Problem, budget: int | None = None) -> str:
    """The standard ("direct") template; `budget` prefills HBPO's budget token after <think>."""
    return f"Q:{problem.expr}{THINK}" + (budget_token(budget) if budget is not None else "")


def solution(problem: Problem, style: str = "standard", rng: np.random.Generator | None = None,
             *, min_checks: int = 1, max_checks: int = 3, checks_at: str = "inline") -> str:
    """The completion of the direct template in `style` (see the module docstring). "verbose"
    draws its number of re-checks (min_checks..max_checks) and the lines they repeat from
    `rng`; `checks_at="inline"` writes each re-check right after its line, `"end"` writes them
    all after the last step (re-verifying finished work; the step lines keep their places)."""
    lines, answer = standard_lines(problem)
    if style == "standard":
        return _finish(lines, answer)
    if style == "direct":
        return _finish([], answer)
    if style != "verbose":
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if rng is None:
        raise ValueError("the verbose style draws its re-checks: pass an np.random.Generator")
    if checks_at not in ("inline", "end"):
        raise ValueError(f"checks_at must be 'inline' or 'end', got {checks_at!r}")
    n = int(rng.integers(min_checks, max_checks + 1))
    where = np.bincount(rng.integers(0, len(lines), size=n), minlength=len(lines))
    if checks_at == "end":
        return _finish(lines + [f"chk {line}" for line, k in zip(lines, where) for _ in range(int(k))], answer)
    out = []
    for line, k in zip(lines, where):
        out += [line] + [f"chk {line}"] * int(k)
    return _finish(out, answer)


def _ref(value: int, ref: int) -> str:
    return f"s{ref}" if ref else str(value)


def decomposition_solution(problem: Problem) -> str:
    """`s1=3*4=12;s2=s1+5=17;</think>#### 17`: every operation a named sub-problem, solved in
    order; a sub-problem names the earlier sub-results it uses."""
    steps = op_steps(problem)
    lines = [f"s{i}={_ref(s.left, s.left_ref)}{s.op}{_ref(s.right, s.right_ref)}={s.value}"
             for i, s in enumerate(steps, 1)]
    return _finish(lines, steps[-1].value)


def demonstration(problem: Problem, solution_text: str | None = None) -> str:
    """A worked example for the decomposition prompt: `Q:<expr> <lines>#### <answer>`."""
    text = decomposition_solution(problem) if solution_text is None else solution_text
    return f"Q:{problem.expr} " + text.replace(END_THINK, "")


def decomposition_prompt(problem: Problem, demos: Sequence[str] = ()) -> str:
    """`Q:<expr><demo>d1<demo>d2<plan><think>`: the decomposition template with retrieved
    demonstrations (zero or more) in their slots."""
    return f"Q:{problem.expr}" + "".join(f"{DEMO}{d}" for d in demos) + f"{PLAN}{THINK}"


def _clean(text: str) -> str:
    for tok in (THINK, END_THINK, EOS, PAD):
        text = text.replace(tok, "")
    return text


def reflection_prompt(problem: Problem, wrong_solution: str) -> str:
    """`Q:<expr><wrong><previous solution><fix><think>`; markers inside the previous
    solution are removed so each appears once."""
    return f"Q:{problem.expr}{WRONG}{_clean(wrong_solution)}{FIX}{THINK}"


def corrupt_solution(problem: Problem, rng: np.random.Generator) -> str:
    """A wrong standard solution: one step's value off by 1-3 (up for columns, so the answer
    stays >= 0), later steps computed correctly from the wrong value."""
    i = int(rng.integers(0, n_steps(problem)))
    delta = int(rng.integers(1, 4))
    if problem.method == "ops" and rng.random() < 0.5:
        delta = -delta
    lines, answer = standard_lines(problem, perturb=(i, delta))
    return _finish(lines, answer)


def keywords(problem: Problem) -> list[str]:
    """Retrieval terms of a problem (for BM25 over the demonstration buffer): its operators in
    order, operator bigrams, and its size."""
    ops = list(problem.ops)
    return ops + [a + b for a, b in zip(ops, ops[1:])] + [f"n{len(problem.operands)}"]


_DECOMP_LINE = re.compile(r"s(\d+)=(s\d+|-?\d+)([+\-*])(s\d+|-?\d+)=(-?\d+)")


def rewrite_to_direct(text: str) -> str | None:
    """A decomposition solution rewritten into the standard one-op-per-line text (the target
    of Cog-Rethinker's SFT term): sub-result names are replaced by their values. Text that is
    already in the standard style comes back unchanged; an unreadable one gives None."""
    if ANSWER_MARK not in text:
        return None
    head, _, tail = text.partition(END_THINK)
    if not head.startswith("s"):
        return text
    values: dict[str, str] = {}
    lines = []
    for part in filter(None, head.split(";")):
        m = _DECOMP_LINE.fullmatch(part)
        if m is None:
            return None
        name, a, op, b, v = m.groups()
        try:
            a, b = (values[x] if x.startswith("s") else x for x in (a, b))
        except KeyError:
            return None
        values[f"s{name}"] = v
        lines.append(f"{a}{op}{b}={v}")
    return "".join(f"{line};" for line in lines) + END_THINK + tail


# ---------------------------------------------------------------------------------- verifier
_ANSWER = re.compile(r"0|-?[1-9][0-9]*")


@dataclass(frozen=True)
class Verdict:
    answer: int | None   # the parsed final answer, None when malformed
    correct: bool

    @property
    def well_formed(self) -> bool:
        return self.answer is not None


def parse_answer(completion: str, *, require_think_end: bool = True) -> int | None:
    """The integer after the last `####` if it ends the text (spaces around it allowed) and,
    with `require_think_end`, `</think>` comes before the mark; otherwise None."""
    head, mark, tail = completion.rpartition(ANSWER_MARK)
    if not mark or (require_think_end and END_THINK not in head):
        return None
    tail = tail.strip()
    return int(tail) if _ANSWER.fullmatch(tail) else None


def verify(completion: str, answer: int, *, require_think_end: bool = True) -> Verdict:
    got = parse_answer(completion, require_think_end=require_think_end)
    return Verdict(got, got is not None and got == answer)


def correctness_reward(sample, *, format_penalty: float = 0.0) -> float:
    """0/1 reward of a `hrlzoo.algos.grpo.Sample` whose `item` has an `.answer`: 1 if the
    completion ended with a stop token and its answer is right; `format_penalty` (e.g. -1,
    as HBPO's code) if it is malformed or was cut at max_new_tokens; else 0."""
    v = verify(sample.text, sample.item.answer)
    if not sample.finished or not v.well_formed:
        return format_penalty
    return 1.0 if v.correct else 0.0
