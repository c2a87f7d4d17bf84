"""A paper's claims as data, judged against our numbers by one shared set of rules.

The file
--------
Each paper lists its claims in `stages/<paper>/claims.yaml`, a mapping:

    metrics:                       # optional: the natural bounds of bounded metrics
      success_rate: {floor: 0, ceiling: 1, text: fraction of episodes that reach the goal}
    single_model:                  # optional: methods that are ONE trained model (or a fixed
      base: one SFT base shared by every RL seed    # reference) whatever their seed column says
    gates:                         # pre-registered conditions of the working regime
      - id: baseline_learns
        text: TD3 on the true reward swings the pendulum up.
        metric: return_true
        method: true_reward
        where: {task: pendulum}
        relation: at_least
        value: -400
        source: "spec A §1.5"
        registered: before-results
    claims:
      - id: heron_beats_misweighted
        text: On Pendulum, HERON earns more true return than a mis-weighted linear reward.
        source: paper §5.1, Figure 2
        metric: return_true        # a column of the results table
        method: heron              # rows with method == heron ...
        where: {task: pendulum}    # ... and task == pendulum
        relation: greater          # greater | less | not_less | not_greater | equivalent
        baseline: misweighted      #   ... against the rows of this method
        # baseline_where: {task: pendulum}   # default: the same `where` as the method
        margin: 50                 # the smallest effect of interest, in the metric's units
        margin_source: "a third of the paper's gain of 150 (Figure 2)"
        # paired: true             # default: inferred (paired when both sides have the same seeds)
        gates: [baseline_learns]   # gates (or other claims) this claim needs to hold
        registered: before-results # or: post-hoc, with post_hoc_reason
    retired:                       # claims no longer judged, kept for their history
      - id: old_claim
        text: ...
        last_verdict: reproduced
        why: it held by construction
        replaced_by: new_claim     # optional

`evaluate(claimset, table, seeds)` takes a polars table with one row per (method, seed,
condition columns...) and one column per metric, and gives every gate and claim a `Verdict`.

The rules
---------
Let d be the quantity a claim is about:

* comparative relations: d = mean(method rows) - mean(baseline rows), the rows picked by
  `method` + `where` and `baseline` + `baseline_where` (which defaults to `where`);
* threshold relations (at_least, at_most): d = mean(method rows) - value.

[lo, hi] is the 95% Student t interval of d from scipy.stats, which keeps its coverage at small
n where a percentile bootstrap does not (with 3 seeds the bootstrap interval of a mean is the
sample's [min, max] and covers about 76%):

* paired t (`ttest_rel`) when both sides have the same seeds: declared with `paired: true`, or
  inferred when `paired` is left out and the seed sets are equal. Seeds that share data and
  problem order make the difference of a seed the natural unit; the interval is valid whatever
  the correlation within a pair;
* Welch t (`ttest_ind(equal_var=False)`) otherwise, or with `paired: false`;
* one-sample t (`ttest_1samp`) for threshold claims, and for a comparison with a
  `single_model` side that has no row per seed to pair with (its mean is then a constant).

With m = margin (>= 0, the smallest effect of interest):

============  ==================  ====================  =====================
relation      claim               reproduced if         not reproduced if
============  ==================  ====================  =====================
greater       d > m               lo > m                hi <= m
less          d < -m              hi < -m               lo >= -m
not_less      d >= -m             lo >= -m              hi < -m
not_greater   d <= m              hi <= m               lo > m
equivalent    |d| <= m  (m > 0)   -m <= lo and hi <= m  hi < -m or lo > m
at_least      mean >= value - m   lo >= -m              hi < -m
at_most       mean <= value + m   hi <= m               lo > m
============  ==================  ====================  =====================

So with m > 0 a superiority claim is reproduced when the effect is shown to exceed the smallest
effect of interest, and not reproduced when it is shown to fall short of it; with m = 0 a true
null can never be "not reproduced", which is why margin 0 needs a written reason. `equivalent`
is the TOST idea with the interval at the same 95% as every other rule (stricter than TOST's
90%). Anything between is **inconclusive**: the interval straddles the boundary.

Around the interval:

1. **Data.** A missing column, no rows, several rows for one seed, a null or NaN/inf value on
   any seed, or a seed of `seeds` without a row: **inconclusive**, with the count of seeds
   missing. Nothing is dropped silently.
2. **Floors.** When every value of both sides sits at the metric's declared floor, or every
   value of both sides at its declared ceiling (success 0, accuracy 1...), the comparison has no
   sensitivity: **untestable** (comparative claims only).
3. **Seeds.** A decisive verdict needs at least MIN_SEEDS = 5 seeds per side; fewer gives
   **inconclusive** ("too few seeds"), with the interval still shown when n >= 2. A
   `single_model` side counts as n = 1 and needs no seeds of its own: the comparison is then
   about the other side's seeds against that one model. A threshold claim (or gate) about a
   single model is a property of that model and is judged over its evaluation samples.
4. **Gates.** A claim lists the gates (or other claims) it depends on; they are judged first, by
   the same rules (a gate cannot have gates). If one of them failed (not reproduced, or itself
   untestable) the claim is **untestable**; if one is inconclusive, the claim is untestable too,
   unless it already lacks seeds itself (then it stays inconclusive, "too few seeds", and says
   the gate is inconclusive too). The verdict keeps the claim's own numbers and names the gate.

Registration
------------
Every claim and gate says `registered: before-results` or `registered: post-hoc` with a
`post_hoc_reason`. `registration_problems(paper)` reads git: a claim that says before-results
must have had its judged form (metric, method, where, baseline, baseline_where, relation, value,
margin, paired, gates) at the first commit of `reports/<paper>/metrics.json`; the test suite runs
it for every paper. A claim added after that first commit (a new experiment of a paper that
already has results) must have been committed, in its judged form, before the first committed
metrics.json that judges it (that lists its id): at the parent of that commit, not in it. And
the results that first judge it must come from training run after it was committed, not from a
re-report of data that already existed: at least one output hash of the paper's non-report
stages (stages named `<paper>_...` with an output outside `reports/`) in `dvc.lock` at the
judging commit differs from (or is absent in) `dvc.lock` at the commit that gave the claim its
judged form. A re-run report of the same data, however late, leaves those hashes unchanged and
the check reports the claim.

A claim that does not reproduce is reported as such: never tune the claim to pass it.
"""

from __future__ import annotations

import math
import subprocess
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

RELATIONS = ("greater", "less", "not_less", "not_greater", "equivalent", "at_least", "at_most")
COMPARATIVE = ("greater", "less", "not_less", "not_greater", "equivalent")
THRESHOLD = ("at_least", "at_most")
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "untestable")
REGISTRATIONS = ("before-results", "post-hoc")
METHOD_COLUMN = "method"
SEED_COLUMN = "seed"
MIN_SEEDS = 5
LEVEL = 0.95
PAIRED, WELCH, ONE_SAMPLE = "paired t", "Welch t", "one-sample t"
JUDGED = ("metric", "method", "where", "baseline", "baseline_where", "relation", "value", "margin",
          "paired", "gates")
"""The fields that decide a verdict: changing one after the results is a post-hoc change."""


# --------------------------------------------------------------------------- claims


@dataclass
class Claim:
    """One claim (or gate) of a paper, as data. Validated on construction (ValueError, one line)."""

    id: str
    """Short unique name, a key in metrics.json (no spaces, dots or slashes)."""
    text: str
    """The paper's claim in one sentence."""
    metric: str
    """Column of the results table the claim is about."""
    method: str
    """Value of the `method` column for the rows the claim is about."""
    relation: str
    """greater | less | not_less | not_greater | equivalent | at_least | at_most."""
    source: str
    """Where the claim comes from: "paper §5.1, Fig. 2", "spec A §1.5"."""
    where: dict[str, str] = field(default_factory=dict)
    """Filter on condition columns, e.g. {"task": "pendulum"}."""
    baseline: str | None = None
    """Method compared against (comparative relations)."""
    baseline_where: dict[str, str] | None = None
    """Filter for the baseline rows; None = the same as `where`."""
    value: float | None = None
    """Fixed threshold (at_least / at_most)."""
    margin: float = 0.0
    """>= 0: the smallest effect of interest (superiority, non-inferiority or equivalence
    margin), in the metric's units."""
    margin_source: str | None = None
    """Where the margin comes from (the paper's numbers), or why it is 0. Required for
    comparative relations."""
    paired: bool | None = None
    """True: paired t over matching seeds; False: Welch t; None: paired iff the seeds match."""
    gates: list[str] = field(default_factory=list)
    """Ids of the gates (or other claims) that must be reproduced for this claim to be testable."""
    registered: str | None = None
    """before-results | post-hoc: when the claim was written, relative to its paper's results."""
    post_hoc_reason: str | None = None
    """Why a post-hoc claim was added or changed after the results (required for post-hoc)."""
    kind: str = "claim"
    """claim | gate (set by the file's section, not written in it)."""

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"{self.kind} '{self.id}': {problem}")

    def _problem(self) -> str | None:
        for name in ("id", "text", "metric", "method", "source"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                return f"{name}: expected a non-empty string, got {v!r}"
        if any(c.isspace() or c in "./\\" for c in self.id):
            return "id: expected no spaces, dots or slashes (it is a key in metrics.json)"
        if self.relation not in RELATIONS:
            return f"relation: {self.relation!r} is not one of {', '.join(RELATIONS)}"
        if self.kind not in ("claim", "gate"):
            return f"kind: expected claim or gate, got {self.kind!r}"
        try:
            self.where = _as_filter(self.where, "where")
            if self.baseline_where is not None:
                self.baseline_where = _as_filter(self.baseline_where, "baseline_where")
            self.margin = _as_float(self.margin, "margin")
            if self.value is not None:
                self.value = _as_float(self.value, "value")
        except ValueError as e:
            return str(e)
        for name, filt in (("where", self.where), ("baseline_where", self.baseline_where or {})):
            if METHOD_COLUMN in filt:
                return f"{name}: '{METHOD_COLUMN}' is set by method/baseline, not by a filter"
        if not math.isfinite(self.margin) or self.margin < 0:
            return f"margin: expected a finite number >= 0, got {self.margin!r}"
        if self.paired is not None and not isinstance(self.paired, bool):
            return f"paired: expected true or false, got {self.paired!r}"
        if not isinstance(self.gates, list) or not all(isinstance(g, str) and g for g in self.gates):
            return f"gates: expected a list of gate or claim ids, got {self.gates!r}"
        if self.kind == "gate" and self.gates:
            return "gates: a gate cannot depend on other gates"
        if self.id in self.gates:
            return "gates: a claim cannot depend on itself"
        if self.registered not in REGISTRATIONS:
            return f"registered: expected one of {', '.join(REGISTRATIONS)}, got {self.registered!r}"
        reason = self.post_hoc_reason
        if self.registered == "post-hoc" and not (isinstance(reason, str) and reason.strip()):
            return "post_hoc_reason: a post-hoc claim says why it was added or changed after the results"
        if self.registered == "before-results" and reason is not None:
            return "post_hoc_reason: only a post-hoc claim has one"
        if self.relation in COMPARATIVE:
            if not isinstance(self.baseline, str) or not self.baseline.strip():
                return f"relation '{self.relation}' needs a baseline (a method name)"
            if self.value is not None:
                return f"relation '{self.relation}' compares with a baseline: drop `value`"
            if self.baseline == self.method and self.baseline_rows_where == self.where:
                return "baseline and method pick the same rows (set baseline_where)"
            if self.relation == "equivalent" and self.margin <= 0:
                return "relation 'equivalent' needs a margin > 0"
            if not (isinstance(self.margin_source, str) and self.margin_source.strip()):
                return ("margin_source: a comparative claim says where its smallest effect comes "
                        "from (or, for margin 0, why there is none)")
        else:
            if self.value is None:
                return f"relation '{self.relation}' needs a value (the threshold)"
            if not math.isfinite(self.value):
                return f"value: expected a finite number, got {self.value!r}"
            if self.baseline is not None or self.baseline_where is not None:
                return f"relation '{self.relation}' compares with a fixed value: drop baseline"
            if self.paired is not None:
                return f"paired: relation '{self.relation}' has one side"
        return None

    @property
    def baseline_rows_where(self) -> dict[str, str]:
        """The filter of the baseline rows (`baseline_where`, else `where`)."""
        return dict(self.where if self.baseline_where is None else self.baseline_where)

    @property
    def is_threshold(self) -> bool:
        return self.relation in THRESHOLD

    def judged_form(self) -> dict[str, Any]:
        """The fields that decide the verdict (see JUDGED), normalised for comparison."""
        return _judged({f: getattr(self, f) for f in JUDGED})

    def describe(self) -> str:
        """ "heron vs misweighted", "heron (task=a) vs heron (task=b)", "heron vs 150"."""
        if self.is_threshold:
            return f"{self.method} vs {short_num(self.value)}"
        a, b = side_labels(self)
        return f"{a} vs {b}"


@dataclass
class Metric:
    """The declared bounds of a metric: a comparison where both sides sit at one of them on
    every seed is untestable."""

    name: str
    floor: float | None = None
    ceiling: float | None = None
    text: str = ""


@dataclass
class Retired:
    """A claim no longer judged, kept so the report can show its history."""

    id: str
    text: str
    last_verdict: str
    why: str
    replaced_by: str | None = None


@dataclass
class ClaimSet:
    """Everything a paper's claims file declares."""

    claims: list[Claim] = field(default_factory=list)
    gates: list[Claim] = field(default_factory=list)
    metrics: dict[str, Metric] = field(default_factory=dict)
    single_model: dict[str, str] = field(default_factory=dict)
    """method -> why its rows are one model (they count as n = 1)."""
    retired: list[Retired] = field(default_factory=list)

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str | None:
        seen: set[str] = set()
        for c in [*self.gates, *self.claims]:
            if c.id in seen:
                return f"{c.kind} '{c.id}': duplicate id"
            seen.add(c.id)
        for c in self.claims:
            for g in c.gates:
                if g not in seen:
                    return f"claim '{c.id}': gates: no gate or claim '{g}'"
        by_id = {c.id: c for c in self.claims}
        for c in self.claims:  # a claim used as a gate must not lead back to itself
            stack, path = list(c.gates), {c.id}
            while stack:
                g = stack.pop()
                if g == c.id:
                    return f"claim '{c.id}': gates: a cycle leads back to it"
                if g in by_id and g not in path:
                    path.add(g)
                    stack.extend(by_id[g].gates)
        for r in self.retired:
            if r.id in seen:
                return f"retired '{r.id}': the id is still a claim or gate"
        return None

    def __iter__(self):
        return iter([*self.gates, *self.claims])


_CLAIM_KEYS = tuple(f.name for f in fields(Claim) if f.name != "kind")
_REQUIRED = ("id", "text", "metric", "method", "relation", "source", "registered")
_SECTIONS = ("metrics", "single_model", "gates", "claims", "retired")


def _judged(d: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise a claim's judged fields (from a Claim or from a raw YAML mapping)."""
    out = {}
    for k in JUDGED:
        v = d.get(k)
        if k in ("where", "baseline_where"):
            v = None if v is None and k == "baseline_where" else {str(a): _as_scalar_str(b)
                                                                  for a, b in (v or {}).items()}
        elif k in ("value", "margin"):
            v = None if v is None else float(v)
            if k == "margin" and v is None:
                v = 0.0
        elif k == "gates":
            v = sorted(v or [])
        out[k] = v
    if out["baseline_where"] is not None and out["baseline_where"] == out["where"]:
        out["baseline_where"] = None
    return out


def _as_float(v: Any, name: str) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{name}: expected a number, got {v!r}")
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    if isinstance(v, str):  # YAML 1.1 reads `1e3` as a string
        try:
            return float(v)
        except ValueError:
            pass
    raise ValueError(f"{name}: expected a number, got {v!r}")


def _as_scalar_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"  # how polars casts a Boolean column to String
    return str(v)


def _as_filter(d: Any, name: str) -> dict[str, str]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValueError(f"{name}: expected a mapping column -> value, got {d!r}")
    out = {}
    for k, v in d.items():
        if not isinstance(k, str) or isinstance(v, (dict, list, tuple, set)) or v is None:
            raise ValueError(f"{name}: expected column -> scalar value, got {k!r}: {v!r}")
        out[k] = _as_scalar_str(v)
    return out


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None


def _entries(items: Any, path: Path, section: str) -> Iterable[tuple[str, dict]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ValueError(f"{path}: {section}: expected a list, got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        name = item["id"] if isinstance(item, dict) and isinstance(item.get("id"), str) else f"#{i + 1}"
        where = f"{path}: {section[:-1]} '{name}'"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(item).__name__}")
        out.append((where, item))
    return out


def _claim_from(item: dict, where: str, kind: str) -> Claim:
    unknown = [k for k in item if k not in _CLAIM_KEYS]
    if unknown:
        raise ValueError(f"{where}: unknown key '{unknown[0]}' (expected one of {', '.join(_CLAIM_KEYS)})")
    missing = [k for k in _REQUIRED if k not in item]
    if missing:
        raise ValueError(f"{where}: missing key '{missing[0]}'")
    try:
        return Claim(**item, kind=kind)
    except TypeError as e:
        raise ValueError(f"{where}: {e}") from None
    except ValueError as e:
        msg = str(e)
        prefix = f"{kind} '{item.get('id')}': "
        raise ValueError(f"{where}: {msg[len(prefix):] if msg.startswith(prefix) else msg}") from None


def load_claims(path: str | Path) -> ClaimSet:
    """Read and validate a paper's claims file (the mapping of the module docstring).

    Any problem raises ValueError with one line: "<file>: claim '<id>': <problem>".
    """
    path = Path(path)
    raw = _read_yaml(path)
    if raw is None:
        return ClaimSet()
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping with sections {', '.join(_SECTIONS)}, "
                         f"got {type(raw).__name__}")
    unknown = [k for k in raw if k not in _SECTIONS]
    if unknown:
        raise ValueError(f"{path}: unknown section '{unknown[0]}' (expected {', '.join(_SECTIONS)})")
    metrics = {}
    for name, spec in (raw.get("metrics") or {}).items():
        spec = spec or {}
        bad = [k for k in spec if k not in ("floor", "ceiling", "text")] if isinstance(spec, dict) else ["?"]
        if bad:
            raise ValueError(f"{path}: metric '{name}': expected a mapping of floor, ceiling, text")
        try:
            bounds = {k: _as_float(spec[k], k) for k in ("floor", "ceiling") if spec.get(k) is not None}
        except ValueError as e:
            raise ValueError(f"{path}: metric '{name}': {e}") from None
        metrics[str(name)] = Metric(str(name), **bounds, text=str(spec.get("text", "")))
    single = raw.get("single_model") or {}
    if not isinstance(single, dict) or not all(isinstance(v, str) and v.strip() for v in single.values()):
        raise ValueError(f"{path}: single_model: expected a mapping method -> why it is one model")
    gates = [_claim_from(item, where, "gate") for where, item in _entries(raw.get("gates"), path, "gates")]
    claims = [_claim_from(item, where, "claim") for where, item in _entries(raw.get("claims"), path, "claims")]
    retired = []
    for where, item in _entries(raw.get("retired"), path, "retired"):
        try:
            retired.append(Retired(**item))
        except TypeError as e:
            raise ValueError(f"{where}: {e}") from None
        if retired[-1].last_verdict not in VERDICTS:
            raise ValueError(f"{where}: last_verdict: expected one of {', '.join(VERDICTS)}")
    try:
        return ClaimSet(claims, gates, metrics, {str(k): v for k, v in single.items()}, retired)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


# --------------------------------------------------------------------------- intervals


def t_interval(a: np.ndarray, b: np.ndarray | float | None = None, paired: bool = False,
               level: float = LEVEL, axis: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(estimate, lo, hi, method) of mean(a) - mean(b) along `axis` (scipy.stats t tests):

    * b None or a number: one-sample t of a against b (0 when None);
    * paired: paired t of a - b (same shape);
    * else Welch t.

    Works on batches (e.g. replications x seeds) so the coverage test uses this very code.
    A sample without spread gives a zero-width interval at its estimate.
    """
    import scipy.stats as st

    if not 0 < level < 1:
        raise ValueError(f"level: expected 0 < level < 1, got {level}")
    a = np.asarray(a, dtype=np.float64)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if b is None or np.ndim(b) == 0:
            ref = 0.0 if b is None else float(b)
            est = a.mean(axis=axis) - ref
            res = st.ttest_1samp(a, ref, axis=axis).confidence_interval(level)
            ci = type(res)(res.low - ref, res.high - ref)  # scipy's interval is of the mean itself
            method, spread = ONE_SAMPLE, a.std(axis=axis)
        elif paired:
            b = np.asarray(b, dtype=np.float64)
            if a.shape != b.shape:
                raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
            est = (a - b).mean(axis=axis)
            ci = st.ttest_rel(a, b, axis=axis).confidence_interval(level)
            method, spread = PAIRED, (a - b).std(axis=axis)
        else:
            b = np.asarray(b, dtype=np.float64)
            est = a.mean(axis=axis) - b.mean(axis=axis)
            ci = st.ttest_ind(a, b, equal_var=False, axis=axis).confidence_interval(level)
            method, spread = WELCH, a.std(axis=axis) + b.std(axis=axis)
    flat = np.asarray(spread) == 0  # scipy gives NaN (or a rounding-sized band) without spread
    lo = np.where(flat, est, ci.low)
    hi = np.where(flat, est, ci.high)
    return est, lo, hi, method


def mean_ci(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float | None, float | None]:
    """(mean, lo, hi): the one-sample t interval of the mean; lo = hi = None for one value."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("interval of an empty sample")
    if x.size == 1:
        return float(x[0]), None, None
    est, lo, hi, _ = t_interval(x, level=level)
    return float(est), float(lo), float(hi)


# --------------------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """The outcome of one claim or gate. For thresholds, mean_baseline is the claim's value."""

    claim: Claim
    n_method: int
    n_baseline: int
    """Seeds of the baseline side (1 for a single model; 0 for a threshold)."""
    mean_method: float
    mean_baseline: float
    diff: float
    """mean_method - mean_baseline (or - value): the estimate."""
    ci_low: float
    """95% t interval of `diff` (NaN where none could be computed)."""
    ci_high: float
    verdict: str
    """reproduced | not reproduced | inconclusive | untestable."""
    reason: str
    """One sentence saying why."""
    interval: str = ""
    """paired t | Welch t | one-sample t | "" (none computed)."""
    paired: bool = False
    few_seeds: bool = False
    """True when the verdict is inconclusive because a side has fewer than MIN_SEEDS seeds."""

    @property
    def id(self) -> str:
        return self.claim.id

    @property
    def holds(self) -> bool:
        return self.verdict == "reproduced"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "claim"}
        d["claim"] = asdict(self.claim)
        return d

    def metrics_entry(self) -> dict[str, Any]:
        """What metrics.json holds per claim: the verdict and everything behind it."""
        c = self.claim
        return {"verdict": self.verdict, "diff": self.diff, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "n_method": self.n_method, "n_baseline": self.n_baseline, "paired": self.paired,
                "interval": self.interval, "margin": c.margin, "margin_source": c.margin_source or "",
                "gates": list(c.gates), "registered": c.registered, "reason": self.reason}


_NAN = float("nan")


def short_num(x: float | None) -> str:
    """Short human number for reasons: 4 significant digits, no exponent for usual sizes."""
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    digits = max(0, min(6, 3 - math.floor(math.log10(abs(x)))))
    text = f"{x:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt_where(where: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in where.items())


def side_labels(claim: Claim) -> tuple[str, str]:
    a, b = claim.method, claim.baseline or ""
    bw = claim.baseline_rows_where
    if bw != claim.where:  # same method on two conditions: say which is which
        diff_keys = [k for k in dict.fromkeys([*claim.where, *bw]) if claim.where.get(k) != bw.get(k)]
        a += " (" + ", ".join(f"{k}={claim.where.get(k, '*')}" for k in diff_keys) + ")"
        b += " (" + ", ".join(f"{k}={bw.get(k, '*')}" for k in diff_keys) + ")"
    return a, b


@dataclass
class _Side:
    seeds: np.ndarray | None
    """Seed of each value (None when the table has no seed column)."""
    values: np.ndarray
    single: bool
    label: str

    @property
    def n(self) -> int:
        return 1 if self.single else int(self.values.size)


def _select(table: pl.DataFrame, claim: Claim, method: str, where: dict[str, str],
            seeds: Sequence[int] | None, single_model: Mapping[str, str]) -> tuple[_Side | None, str]:
    """One side's values by seed, or (None, the reason the claim is inconclusive)."""
    what = f"{METHOD_COLUMN}={method}" + (f", {_fmt_where(where)}" if where else "")
    for col in (METHOD_COLUMN, claim.metric, *where):
        if col not in table.columns:
            return None, f"missing data: the table has no column '{col}'"
    expr = pl.col(METHOD_COLUMN).cast(pl.String) == method
    for k, v in where.items():
        expr = expr & (pl.col(k).cast(pl.String) == v)
    rows = table.filter(expr)
    if rows.height == 0:
        return None, f"missing data: no rows for {what}"
    if not rows[claim.metric].dtype.is_numeric() and rows[claim.metric].dtype != pl.Null:
        return None, f"bad data: column '{claim.metric}' is not numeric ({rows[claim.metric].dtype})"
    has_seed = SEED_COLUMN in rows.columns
    if has_seed and rows[SEED_COLUMN].n_unique() < rows.height:
        varying = [c for c in rows.columns
                   if c not in (SEED_COLUMN, METHOD_COLUMN) and not rows[c].dtype.is_float()
                   and rows[c].n_unique() > 1]
        hint = f" (they differ in {', '.join(varying)}: add it to `where`)" if varying else ""
        n_seeds = rows[SEED_COLUMN].n_unique()
        return None, f"ambiguous rows: {rows.height} rows for {n_seeds} seeds of {what}{hint}"
    if has_seed:
        rows = rows.sort(SEED_COLUMN)
    raw = rows[claim.metric].cast(pl.Float64)
    nulls = int(raw.null_count())
    values = raw.fill_null(_NAN).to_numpy()
    single = method in single_model
    absent = 0
    if seeds is not None and has_seed and not single:
        absent = len(set(seeds) - set(rows[SEED_COLUMN].to_list()))
    if nulls or absent:
        total = (len(seeds) if seeds is not None and has_seed and not single else rows.height)
        return None, (f"missing data: {nulls + absent} of {total} seeds have no '{claim.metric}' "
                      f"for {what}")
    bad = int((~np.isfinite(values)).sum())
    if bad:
        return None, f"bad data: {bad} NaN/inf value(s) of '{claim.metric}' for {what}"
    seed_ids = rows[SEED_COLUMN].to_numpy() if has_seed else None
    return _Side(seed_ids, values, single, what), what


def _decide(relation: str, lo: float, hi: float, m: float) -> tuple[str, str, tuple[float, ...]]:
    """(verdict, where the CI lies in words, the boundary or band those words refer to)."""
    R, N, I, _ = VERDICTS
    if relation == "greater":
        return (R, "lies above", (m,)) if lo > m else \
               (N, "lies at or below", (m,)) if hi <= m else (I, "straddles", (m,))
    if relation == "less":
        return (R, "lies below", (-m,)) if hi < -m else \
               (N, "lies at or above", (-m,)) if lo >= -m else (I, "straddles", (-m,))
    if relation in ("not_less", "at_least"):
        return (R, "lies at or above", (-m,)) if lo >= -m else \
               (N, "lies below", (-m,)) if hi < -m else (I, "straddles", (-m,))
    if relation in ("not_greater", "at_most"):
        return (R, "lies at or below", (m,)) if hi <= m else \
               (N, "lies above", (m,)) if lo > m else (I, "straddles", (m,))
    if relation == "equivalent":
        band = (-m, m)
        if -m <= lo and hi <= m:
            return R, "lies inside the equivalence band", band
        if hi < -m or lo > m:
            return N, "lies outside the equivalence band", band
        return I, "crosses an edge of the equivalence band", band
    raise ValueError(f"unknown relation {relation!r}")


def _bounds(b: tuple[float, ...]) -> str:
    return short_num(b[0]) if len(b) == 1 else "[" + ", ".join(short_num(x) for x in b) + "]"


def _at_bound(sides: Sequence[_Side], metric: Metric | None) -> str | None:
    """'floor 0' / 'ceiling 1' when every value of every side sits at that bound."""
    if metric is None:
        return None
    for name, bound in (("floor", metric.floor), ("ceiling", metric.ceiling)):
        if bound is not None and all(np.all(s.values == bound) for s in sides):
            return f"{name} {short_num(bound)}"
    return None


def evaluate_one(claim: Claim, table: pl.DataFrame, claimset: ClaimSet | None = None,
                 seeds: Sequence[int] | None = None, level: float = LEVEL,
                 gate_verdicts: Mapping[str, "Verdict"] | None = None) -> Verdict:
    """The verdict of one claim (see the module docstring for the rules). Never raises on data.

    Gates are read after the claim's own numbers, which the verdict keeps: a gate that failed
    (not reproduced, untestable) makes the claim untestable; an inconclusive gate too, unless
    the claim itself has too few seeds, which is then the reason it is inconclusive."""
    core = _judge(claim, table, claimset or ClaimSet(), seeds, level)
    gv = {g: gate_verdicts[g] for g in claim.gates if gate_verdicts and g in gate_verdicts}
    hard = [(g, v.verdict) for g, v in gv.items() if v.verdict in ("not reproduced", "untestable")]
    soft = [(g, v.verdict) for g, v in gv.items() if v.verdict == "inconclusive"]
    if hard or (soft and not core.few_seeds):
        why = "gate not met: " + "; ".join(f"{g} is {v}" for g, v in hard + soft)
        return replace(core, verdict="untestable", reason=f"{why} (without the gate: {core.verdict}, {core.reason})")
    if soft:
        return replace(core, reason=core.reason + "; gate " + ", ".join(g for g, _ in soft) + " is inconclusive too")
    return core


def _judge(claim: Claim, table: pl.DataFrame, cs: ClaimSet, seeds: Sequence[int] | None,
           level: float) -> Verdict:
    """The verdict of one claim before its gates are read."""
    pct = f"{level * 100:g}%"
    a: _Side | None = None
    b: _Side | None = None

    def verdict(kind: str, reason: str, est: float = _NAN, lo: float = _NAN, hi: float = _NAN,
                interval: str = "", paired: bool = False, few: bool = False, n_a: int | None = None) -> Verdict:
        mean_a = float(a.values.mean()) if a is not None else _NAN
        mean_b = float(claim.value) if claim.is_threshold else \
            (float(b.values.mean()) if b is not None else _NAN)
        if math.isnan(est) and math.isfinite(mean_a) and math.isfinite(mean_b):
            est = mean_a - mean_b
        return Verdict(claim, n_a if n_a is not None else (a.n if a else 0), b.n if b else 0, mean_a, mean_b,
                       est, lo, hi, kind, reason, interval, paired, few)

    a, why = _select(table, claim, claim.method, claim.where, seeds, cs.single_model)
    if a is None:
        return verdict("inconclusive", why)
    if not claim.is_threshold:
        b, why = _select(table, claim, claim.baseline, claim.baseline_rows_where, seeds, cs.single_model)
        if b is None:
            return verdict("inconclusive", why)
        bound = _at_bound([a, b], cs.metrics.get(claim.metric))
        if bound:
            return verdict("untestable", f"no sensitivity: every seed of both sides sits at the "
                                         f"{claim.metric} {bound}")
    la, lb = side_labels(claim) if b is not None else (claim.method, "")

    # what is compared, and over which replications
    paired = False
    if b is None:  # threshold: the method's seeds, or one model's evaluation samples
        x, ref, n, how = a.values, float(claim.value), a.values.size, ONE_SAMPLE
        if a.single:
            how = f"{ONE_SAMPLE} over evaluation samples of one model"
    elif a.single and b.single:
        return verdict("inconclusive", f"too few seeds: both sides are single models (n = 1)", few=True)
    elif a.single or b.single:  # the trained side's seeds against the one model
        trained, model = (b, a) if a.single else (a, b)
        paired = claim.paired is not False and _same_seeds(a, b)
        sign = 1.0 if model is b else -1.0
        x = sign * (trained.values - (model.values if paired else model.values.mean()))
        ref, n, how = 0.0, trained.values.size, PAIRED if paired else ONE_SAMPLE
    else:
        same = _same_seeds(a, b)
        if claim.paired and not same:
            return verdict("inconclusive", "paired claim but the two sides do not have the same seeds")
        paired = same if claim.paired is None else claim.paired
        x, ref, n, how = None, None, min(a.n, b.n), PAIRED if paired else WELCH
    counted = ([(la, a.values.size)] if b is None else
               [(name, s.n) for name, s in ((la, a), (lb, b)) if not s.single])
    few = any(k < MIN_SEEDS for _, k in counted)
    seeds_text = ", ".join(f"{name}: {k}" for name, k in counted)
    if n < 2:
        return verdict("inconclusive", f"too few seeds ({seeds_text}; a verdict needs >= {MIN_SEEDS} per side)",
                       few=True, n_a=a.values.size if b is None else None)
    if x is not None:
        est, lo, hi, _ = t_interval(x, ref, level=level)
    else:
        est, lo, hi, _ = t_interval(a.values, b.values, paired=paired, level=level)
    est, lo, hi = float(est), float(lo), float(hi)
    kind, words, bnds = _decide(claim.relation, lo, hi, claim.margin)
    if b is None:  # said in the metric's own units: the interval of the mean against value -/+ margin
        v = claim.value
        text = (f"{pct} {how} interval of {claim.method} {claim.metric} = [{short_num(lo + v)}, "
                f"{short_num(hi + v)}] {words} {_bounds(tuple(t + v for t in bnds))}")
    else:
        text = f"{pct} {how} interval of {la} - {lb} = [{short_num(lo)}, {short_num(hi)}] {words} {_bounds(bnds)}"
    n_a = a.values.size if b is None else None
    if few:
        return verdict("inconclusive", f"too few seeds ({seeds_text}; a verdict needs >= {MIN_SEEDS} per side); "
                                       f"the {text}", est, lo, hi, how, paired, True, n_a)
    return verdict(kind, text, est, lo, hi, how, paired, False, n_a)


def _same_seeds(a: _Side, b: _Side) -> bool:
    return (a.seeds is not None and b.seeds is not None and a.values.size == b.values.size
            and bool(np.array_equal(a.seeds, b.seeds)))


def evaluate(claims: ClaimSet | Iterable[Claim], table: pl.DataFrame, seeds: Sequence[int] | None = None,
             level: float = LEVEL) -> list[Verdict]:
    """Verdicts of every gate, then every claim, in file order, on `table` (one row per
    method x seed x conditions). `seeds`: the seeds every trained side must have."""
    if isinstance(claims, ClaimSet):
        cs = claims
    else:
        items = list(claims)
        cs = ClaimSet([c for c in items if c.kind == "claim"], [c for c in items if c.kind == "gate"])
    done: dict[str, Verdict] = {}
    for g in cs.gates:
        done[g.id] = evaluate_one(g, table, cs, seeds, level)
    pending = list(cs.claims)
    while pending:  # claims that gate other claims are judged first (ClaimSet rejects cycles)
        for c in pending:
            if all(g in done for g in c.gates):
                done[c.id] = evaluate_one(c, table, cs, seeds, level, done)
                pending.remove(c)
                break
    return [done[c.id] for c in cs]


def count_verdicts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """{"reproduced": n, "not_reproduced": n, "inconclusive": n, "untestable": n} over claims
    (gates are not counted)."""
    out = {v.replace(" ", "_"): 0 for v in VERDICTS}
    for v in verdicts:
        if v.claim.kind == "claim":
            out[v.verdict.replace(" ", "_")] += 1
    return out


# --------------------------------------------------------------------------- registration


def _git(root: Path, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=root, text=True, capture_output=True)
    if res.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def _raw_judged_forms(raw: Any) -> dict[str, dict[str, Any]]:
    """id -> judged form of every claim and gate in a claims file's YAML, old (a list of
    claims) or new (a mapping with gates and claims), without validating anything else."""
    items = raw if isinstance(raw, list) else [*((raw or {}).get("gates") or []),
                                                *((raw or {}).get("claims") or [])]
    return {str(it["id"]): _judged(it) for it in items if isinstance(it, dict) and "id" in it}


def _training_outputs(root: Path, commit: str, paper: str) -> dict[tuple[str, str], str]:
    """(stage, path) -> hash of every output outside reports/ of `paper`'s stages in dvc.lock at
    `commit` (empty where dvc.lock or such stages do not exist there)."""
    import yaml

    try:
        lock = yaml.safe_load(_git(root, "show", f"{commit}:dvc.lock")) or {}
    except RuntimeError:
        return {}
    outs: dict[tuple[str, str], str] = {}
    for name, stage in (lock.get("stages") or {}).items():
        if not str(name).startswith(f"{paper}_") or not isinstance(stage, dict):
            continue
        for out in stage.get("outs") or []:
            path = str(out.get("path", ""))
            if path and not path.startswith("reports/"):
                outs[(str(name), path)] = str(out.get("md5") or out.get("hash") or out.get("etag") or "")
    return outs


def _form_since(root: Path, claims_path: str, upto: str, cid: str, form: dict[str, Any]) -> str:
    """The oldest commit, at or before `upto`, from which claim `cid` has had judged form `form`
    without interruption: the commit that gave it that form."""
    import yaml

    since = upto
    for commit in _git(root, "log", "--format=%H", upto, "--", claims_path).split():
        try:
            forms = _raw_judged_forms(yaml.safe_load(_git(root, "show", f"{commit}:{claims_path}")))
        except RuntimeError:
            break
        if forms.get(cid) != form:
            break
        since = commit
    return since


def registration_problems(paper: str, root: str | Path = ".") -> list[str]:
    """Claims and gates of `paper` that say `before-results` although their judged form was
    added or changed after the first commit of reports/<paper>/metrics.json (one line each)."""
    import yaml

    root = Path(root)
    claims_path = f"stages/{paper}/claims.yaml"
    metrics_path = f"reports/{paper}/metrics.json"
    if _git(root, "rev-parse", "--is-shallow-repository").strip() == "true":
        raise RuntimeError("the registration check needs the full git history (this clone is shallow)")
    first = _git(root, "log", "--format=%H", "--reverse", "--", metrics_path).split()
    cs = load_claims(root / claims_path)
    if not first:
        return []  # no results committed yet: everything written so far is before them
    try:
        then = _raw_judged_forms(yaml.safe_load(_git(root, "show", f"{first[0]}:{claims_path}")))
    except RuntimeError:
        then = {}
    problems = []
    judged_by: dict[str, str | None] = {}  # claim id -> first metrics commit that lists it (added claims)

    def first_judging(cid: str) -> str | None:
        if not judged_by:
            for commit in first:
                try:
                    text = _git(root, "show", f"{commit}:{metrics_path}")
                except RuntimeError:
                    continue
                for other in cs:
                    if other.id not in judged_by and f'"{other.id}"' in text:
                        judged_by[other.id] = commit
            judged_by.setdefault("", None)  # computed
        return judged_by.get(cid)

    for c in cs:
        if c.registered != "before-results":
            continue
        old = then.get(c.id)
        if old is None:
            # added after the first results: it must precede the first results that judge it
            commit = first_judging(c.id)
            if commit is None:
                continue  # no committed results judge it yet
            try:
                before = _raw_judged_forms(yaml.safe_load(_git(root, "show", f"{commit}^:{claims_path}")))
            except RuntimeError:
                before = {}
            if c.id not in before:
                problems.append(f"{claims_path}: {c.kind} '{c.id}' says before-results but was not committed "
                                f"before {commit[:9]}, the first commit of {metrics_path} that judges it")
            elif before[c.id] != c.judged_form():
                changed = [k for k in JUDGED if before[c.id][k] != c.judged_form()[k]]
                problems.append(f"{claims_path}: {c.kind} '{c.id}' says before-results but its "
                                f"{', '.join(changed)} changed after {commit[:9]}, the first commit of "
                                f"{metrics_path} that judges it")
            else:
                added = _form_since(root, claims_path, f"{commit}^", c.id, before[c.id])
                then_outs = _training_outputs(root, added, paper)
                now_outs = _training_outputs(root, commit, paper)
                if not any(then_outs.get(k) != h for k, h in now_outs.items()):
                    problems.append(f"{claims_path}: {c.kind} '{c.id}' says before-results but "
                                    f"{commit[:9]}, the first commit of {metrics_path} that judges it, "
                                    f"has no {paper} training output in dvc.lock changed since {added[:9]}, "
                                    f"the commit that added it: a re-report of data that predates the claim")
        elif old != c.judged_form():
            changed = [k for k in JUDGED if old[k] != c.judged_form()[k]]
            problems.append(f"{claims_path}: {c.kind} '{c.id}' says before-results but its "
                            f"{', '.join(changed)} changed after {first[0][:9]}, the first commit of "
                            f"{metrics_path}")
    return problems


# --------------------------------------------------------------------------- summaries


def summarise(table: pl.DataFrame, by: Sequence[str], metrics: Sequence[str], level: float = LEVEL,
              single_model: Mapping[str, str] | None = None) -> pl.DataFrame:
    """Mean and one-sample t interval of each metric per group: columns by..., metric, mean,
    ci_low, ci_high, n. Rows sorted by the `by` columns, metrics in the order given. Null values
    are left out (n counts the rest); a group with none gets null mean and interval, n = 0.
    Rows of a `single_model` method (a `method` column in `by`) are one model: n = 1 and no
    interval, whatever their seed column holds.
    """
    by, metrics = list(by), list(metrics)
    single_model = single_model or {}
    missing = [c for c in (*by, *metrics) if c not in table.columns]
    if missing:
        raise ValueError(f"summarise: no column '{missing[0]}' in the table "
                         f"(columns: {', '.join(table.columns)})")
    rows: list[dict[str, Any]] = []
    groups = (table.sort(by, maintain_order=True).partition_by(by, maintain_order=True, as_dict=True)
              if by else {(): table})
    for key, part in groups.items():
        row0 = dict(zip(by, key))
        single = str(row0.get(METHOD_COLUMN)) in single_model
        for metric in metrics:
            values = part[metric].drop_nulls().cast(pl.Float64).to_numpy()
            row = dict(row0, metric=metric)
            if values.size == 0:
                mean = lo = hi = None
            elif single:
                mean, lo, hi = float(values.mean()), None, None
            else:
                mean, lo, hi = mean_ci(values, level)
            row.update(mean=mean, ci_low=lo, ci_high=hi, n=min(int(values.size), 1) if single else int(values.size))
            rows.append(row)
    schema = {c: table.schema[c] for c in by}
    schema.update(metric=pl.String, mean=pl.Float64, ci_low=pl.Float64, ci_high=pl.Float64,
                  n=pl.Int64)
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
