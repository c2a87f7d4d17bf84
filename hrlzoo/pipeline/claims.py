"""A paper's claims as data, checked against our numbers by one shared set of rules.

Each paper lists its claims in a YAML file (a list of mappings, one per claim):

    - id: heron_beats_misweighted
      text: On Pendulum, HERON earns more true return than a mis-weighted linear reward.
      source: paper §5.1, Figure 2
      metric: true_return          # a column of the results table
      method: heron                # rows with method == heron ...
      where: {task: pendulum}      # ... and task == pendulum
      relation: greater            # greater | less | not_less | not_greater | equivalent
      baseline: misweighted        #   ... against the rows of this method
      # baseline_where: {task: pendulum}   # default: the same `where` as the method
      # margin: 0.0
    - id: scale_invariance
      text: Scaling one reward factor by 100 leaves HERON's return unchanged.
      source: paper §5.3
      metric: true_return
      method: heron
      where: {task: pendulum_x100}
      relation: equivalent
      baseline: heron
      baseline_where: {task: pendulum}
      margin: 50.0
    - id: solves_pendulum
      text: HERON reaches a return of at least -200.
      source: spec A §1.5
      metric: true_return
      method: heron
      where: {task: pendulum}
      relation: at_least           # at_least | at_most: against a fixed `value`
      value: -200.0

`evaluate(claims, table)` takes a polars table with one row per (method, seed, condition
columns...) and one column per metric, and gives each claim a `Verdict`.

The rules
---------
Let d be the quantity a claim is about:

* comparative relations: d = mean(metric of the method rows) - mean(metric of the baseline
  rows), the rows picked by `method`+`where` and `baseline`+`baseline_where` (which defaults
  to `where`);
* threshold relations (at_least, at_most): d = mean(metric of the method rows) - value.

[lo, hi] is the 95% percentile-bootstrap CI of d (10 000 resamples, each group resampled on
its own, seeds treated as independent; numpy's PCG64 seeded from `seed`, so the same table
gives the same verdicts). With m = margin (>= 0, default 0):

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

Anything else is **inconclusive**: the CI straddles the boundary, so our seeds cannot tell.
The boundary is inclusive on the side of a non-strict claim (so two identical deterministic
results do satisfy `not_less` and do refute `greater`). `equivalent` is the TOST idea with the
CI at the same 95% level as every other rule (stricter than TOST's 90%); it needs m > 0.

A claim is also **inconclusive**, with the reason saying why, and never raises, when:
its metric, `method` or a `where` column is not in the table; no rows match; a side has
fewer than 2 seeds ("fewer than 2 seeds"); a side has several rows for one seed (the
`where` filter does not pin down every condition column); or a metric value is NaN/inf.
Null metric values are dropped (not measured); the n in the verdict counts what remains.

A claim that does not reproduce is reported as such: never tune the claim to pass it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import polars as pl

RELATIONS = ("greater", "less", "not_less", "not_greater", "equivalent", "at_least", "at_most")
COMPARATIVE = ("greater", "less", "not_less", "not_greater", "equivalent")
THRESHOLD = ("at_least", "at_most")
VERDICTS = ("reproduced", "not reproduced", "inconclusive")
METHOD_COLUMN = "method"
SEED_COLUMN = "seed"


# --------------------------------------------------------------------------- claims


@dataclass
class Claim:
    """One claim of a paper, as data. Validated on construction (ValueError, one line)."""

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
    """>= 0: superiority / non-inferiority / equivalence margin, in the metric's units."""

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"claim '{self.id}': {problem}")

    def _problem(self) -> str | None:
        for name in ("id", "text", "metric", "method", "source"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v.strip():
                return f"{name}: expected a non-empty string, got {v!r}"
        if any(c.isspace() or c in "./\\" for c in self.id):
            return "id: expected no spaces, dots or slashes (it is a key in metrics.json)"
        if self.relation not in RELATIONS:
            return f"relation: {self.relation!r} is not one of {', '.join(RELATIONS)}"
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
        if self.relation in COMPARATIVE:
            if not isinstance(self.baseline, str) or not self.baseline.strip():
                return f"relation '{self.relation}' needs a baseline (a method name)"
            if self.value is not None:
                return f"relation '{self.relation}' compares with a baseline: drop `value`"
            if self.baseline == self.method and self.baseline_rows_where == self.where:
                return "baseline and method pick the same rows (set baseline_where)"
            if self.relation == "equivalent" and self.margin <= 0:
                return "relation 'equivalent' needs a margin > 0"
        else:
            if self.value is None:
                return f"relation '{self.relation}' needs a value (the threshold)"
            if not math.isfinite(self.value):
                return f"value: expected a finite number, got {self.value!r}"
            if self.baseline is not None or self.baseline_where is not None:
                return f"relation '{self.relation}' compares with a fixed value: drop baseline"
        return None

    @property
    def baseline_rows_where(self) -> dict[str, str]:
        """The filter of the baseline rows (`baseline_where`, else `where`)."""
        return dict(self.where if self.baseline_where is None else self.baseline_where)

    @property
    def is_threshold(self) -> bool:
        return self.relation in THRESHOLD

    def describe(self) -> str:
        """ "heron vs misweighted", "heron (task=a) vs heron (task=b)", "heron vs 150"."""
        if self.is_threshold:
            return f"{self.method} vs {short_num(self.value)}"
        a, b = side_labels(self)
        return f"{a} vs {b}"


_CLAIM_KEYS = tuple(f.name for f in fields(Claim))
_REQUIRED = ("id", "text", "metric", "method", "relation", "source")


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


def load_claims(path: str | Path) -> list[Claim]:
    """Read a paper's claims file (a YAML list of claim mappings) and validate every claim.

    Any problem raises ValueError with one line: "<file>: claim '<id>': <problem>".
    """
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a YAML list of claims, got {type(raw).__name__}")
    claims: list[Claim] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        name = f"#{i + 1}"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            name = item["id"]
        where = f"{path}: claim '{name}'"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(item).__name__}")
        unknown = [k for k in item if k not in _CLAIM_KEYS]
        if unknown:
            raise ValueError(f"{where}: unknown key '{unknown[0]}' (expected one of "
                             f"{', '.join(_CLAIM_KEYS)})")
        missing = [k for k in _REQUIRED if k not in item]
        if missing:
            raise ValueError(f"{where}: missing key '{missing[0]}'")
        try:
            claim = Claim(**{k: item[k] for k in item})
        except ValueError as e:
            msg = str(e)
            prefix = f"claim '{item.get('id')}': "
            raise ValueError(f"{where}: {msg[len(prefix):] if msg.startswith(prefix) else msg}") from None
        if claim.id in seen:
            raise ValueError(f"{where}: duplicate id")
        seen.add(claim.id)
        claims.append(claim)
    return claims


# --------------------------------------------------------------------------- bootstrap


def _clean(values: Any) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap of an empty sample")
    return x


def _boot_means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` means of resamples (with replacement) of `x`, in chunks of bounded memory."""
    n = x.size
    if n == 1:
        return np.full(n_boot, x[0])
    chunk = max(1, min(n_boot, 4_000_000 // n))
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def _interval(boot: np.ndarray, level: float, point: float) -> tuple[float, float]:
    alpha = 1.0 - level
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    # the percentile CI of a mean always brackets the sample mean up to rounding: clamp that
    return float(min(lo, point)), float(max(hi, point))


def _check_args(n_boot: int, level: float) -> None:
    if int(n_boot) < 1:
        raise ValueError(f"n_boot: expected >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level: expected 0 < level < 1, got {level}")


def bootstrap_ci(values: Sequence[float] | np.ndarray, n_boot: int = 10_000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): percentile bootstrap CI of the mean. One value: lo = hi = mean."""
    _check_args(n_boot, level)
    x = _clean(values)
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    boot = _boot_means(x, int(n_boot), np.random.default_rng(seed))
    lo, hi = _interval(boot, level, mean)
    return mean, lo, hi


def diff_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
            n_boot: int = 10_000, seed: int = 0,
            level: float = 0.95) -> tuple[float, float, float]:
    """(mean(a) - mean(b), lo, hi): percentile bootstrap, each group resampled on its own."""
    _check_args(n_boot, level)
    xa, xb = _clean(a), _clean(b)
    d = float(xa.mean() - xb.mean())
    if xa.size == 1 and xb.size == 1:
        return d, d, d
    rng = np.random.default_rng(seed)
    boot = _boot_means(xa, int(n_boot), rng) - _boot_means(xb, int(n_boot), rng)
    lo, hi = _interval(boot, level, d)
    return d, lo, hi


# --------------------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """The outcome of one claim. For thresholds, mean_baseline is the claim's value."""

    claim: Claim
    n_method: int
    n_baseline: int
    mean_method: float
    mean_baseline: float
    diff: float
    """mean_method - mean_baseline (or - value)."""
    ci_low: float
    """95% bootstrap CI of `diff`."""
    ci_high: float
    verdict: str
    """reproduced | not reproduced | inconclusive."""
    reason: str
    """One sentence saying why."""

    @property
    def id(self) -> str:
        return self.claim.id

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "claim"}
        d["claim"] = asdict(self.claim)
        return d


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


def _select(table: pl.DataFrame, claim: Claim, method: str, where: dict[str, str],
            ) -> tuple[np.ndarray | None, str]:
    """The metric values of one side, or (None, the reason the claim is inconclusive)."""
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
    if not rows[claim.metric].dtype.is_numeric():
        return None, f"bad data: column '{claim.metric}' is not numeric ({rows[claim.metric].dtype})"
    if SEED_COLUMN in rows.columns and rows[SEED_COLUMN].n_unique() < rows.height:
        varying = [c for c in rows.columns
                   if c not in (SEED_COLUMN, METHOD_COLUMN) and not rows[c].dtype.is_float()
                   and rows[c].n_unique() > 1]
        hint = f" (they differ in {', '.join(varying)}: add it to `where`)" if varying else ""
        n_seeds = rows[SEED_COLUMN].n_unique()
        return None, f"ambiguous rows: {rows.height} rows for {n_seeds} seeds of {what}{hint}"
    values = rows[claim.metric].drop_nulls().cast(pl.Float64).to_numpy()
    bad = int((~np.isfinite(values)).sum())
    if bad:
        return None, f"bad data: {bad} NaN/inf value(s) of '{claim.metric}' for {what}"
    if values.size == 0:
        return None, f"missing data: no non-null '{claim.metric}' for {what}"
    return values, what


def _decide(relation: str, lo: float, hi: float, m: float) -> tuple[str, str, tuple[float, ...]]:
    """(verdict, where the CI lies in words, the boundary or band those words refer to)."""
    R, N, I = VERDICTS
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


def evaluate_one(claim: Claim, table: pl.DataFrame, n_boot: int = 10_000, seed: int = 0,
                 level: float = 0.95) -> Verdict:
    """The verdict of one claim (see the module docstring for the rules). Never raises on data."""

    def inconclusive(reason: str, n_a: int = 0, n_b: int = 0, mean_a: float = _NAN,
                     mean_b: float = _NAN) -> Verdict:
        d = mean_a - mean_b if math.isfinite(mean_a) and math.isfinite(mean_b) else _NAN
        return Verdict(claim, n_a, n_b, mean_a, mean_b, d, _NAN, _NAN, "inconclusive", reason)

    a, why_a = _select(table, claim, claim.method, claim.where)
    if a is None:
        return inconclusive(why_a, mean_b=claim.value if claim.is_threshold else _NAN)
    pct = f"{level * 100:g}%"
    if claim.is_threshold:
        mean_a = float(a.mean())
        if a.size < 2:
            return inconclusive(f"fewer than 2 seeds ({claim.method}: {a.size})", a.size, 0,
                                mean_a, claim.value)
        _, lo, hi = bootstrap_ci(a, n_boot, seed, level)
        d = mean_a - claim.value
        lo, hi = lo - claim.value, hi - claim.value
        verdict, words, bounds = _decide(claim.relation, lo, hi, claim.margin)
        # said in the metric's own units: the CI of the mean against value (- or + margin)
        v = claim.value
        reason = (f"{pct} CI of {claim.method} {claim.metric} = [{short_num(lo + v)}, {short_num(hi + v)}] "
                  f"{words} {_bounds(tuple(x + v for x in bounds))}")
        return Verdict(claim, a.size, 0, mean_a, float(claim.value), d, lo, hi, verdict, reason)

    b, why_b = _select(table, claim, claim.baseline, claim.baseline_rows_where)
    if b is None:
        return inconclusive(why_b, a.size, 0, float(a.mean()))
    mean_a, mean_b = float(a.mean()), float(b.mean())
    if a.size < 2 or b.size < 2:
        la, lb = side_labels(claim)
        return inconclusive(f"fewer than 2 seeds ({la}: {a.size}, {lb}: {b.size})",
                            a.size, b.size, mean_a, mean_b)
    d, lo, hi = diff_ci(a, b, n_boot, seed, level)
    verdict, words, bounds = _decide(claim.relation, lo, hi, claim.margin)
    la, lb = side_labels(claim)
    reason = f"{pct} CI of {la} - {lb} = [{short_num(lo)}, {short_num(hi)}] {words} {_bounds(bounds)}"
    return Verdict(claim, a.size, b.size, mean_a, mean_b, d, lo, hi, verdict, reason)


def evaluate(claims: Iterable[Claim], table: pl.DataFrame, n_boot: int = 10_000,
             seed: int = 0, level: float = 0.95) -> list[Verdict]:
    """Verdicts of `claims` on `table` (one row per method x seed x conditions), in order."""
    return [evaluate_one(c, table, n_boot, seed, level) for c in claims]


def count_verdicts(verdicts: Iterable[Verdict]) -> dict[str, int]:
    """{"reproduced": n, "not_reproduced": n, "inconclusive": n}."""
    out = {v.replace(" ", "_"): 0 for v in VERDICTS}
    for v in verdicts:
        out[v.verdict.replace(" ", "_")] += 1
    return out


# --------------------------------------------------------------------------- summaries


def summarise(table: pl.DataFrame, by: Sequence[str], metrics: Sequence[str],
              n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> pl.DataFrame:
    """Mean and bootstrap CI of each metric per group: columns by..., metric, mean, ci_low,
    ci_high, n. Rows sorted by the `by` columns, metrics in the order given. Null values are
    dropped (n counts the rest); a group with none gets null mean and CI, n = 0.
    """
    by, metrics = list(by), list(metrics)
    missing = [c for c in (*by, *metrics) if c not in table.columns]
    if missing:
        raise ValueError(f"summarise: no column '{missing[0]}' in the table "
                         f"(columns: {', '.join(table.columns)})")
    rows: list[dict[str, Any]] = []
    groups = (table.sort(by, maintain_order=True).partition_by(by, maintain_order=True, as_dict=True)
              if by else {(): table})
    for key, part in groups.items():
        for metric in metrics:
            values = part[metric].drop_nulls().cast(pl.Float64).to_numpy()
            row = dict(zip(by, key))
            row["metric"] = metric
            if values.size:
                mean, lo, hi = bootstrap_ci(values, n_boot, seed, level)
            else:
                mean = lo = hi = None
            row.update(mean=mean, ci_low=lo, ci_high=hi, n=int(values.size))
            rows.append(row)
    schema = {c: table.schema[c] for c in by}
    schema.update(metric=pl.String, mean=pl.Float64, ci_low=pl.Float64, ci_high=pl.Float64,
                  n=pl.Int64)
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
