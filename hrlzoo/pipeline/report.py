"""Write a paper's results: `metrics.json` (DVC metrics), `report.md`, PNG figures.

Every writer here is atomic (temp file in the same folder, then `os.replace`) and gives the
same bytes for the same inputs, so DVC hashes stay put when nothing changed:

* JSON: sorted keys, indent 2, floats rounded to 6 significant digits, NaN/inf as null;
* PNG: Agg, fixed dpi, no "Software" metadata (matplotlib's version would leak in);
* Markdown: plain text built from sorted tables, no dates.

A paper's evaluation stage typically does:

    table = pl.read_parquet(...)                       # one row per method x seed x task
    summary = summarise(table, by=["task", "method"], metrics=["return"])
    verdicts = evaluate(load_claims("stages/heron/claims.yaml"), table)
    write_json_atomic("reports/heron/metrics.json",
                      metrics_dict("heron", p.scale, summary, verdicts, extra={"title": TITLE}))
    write_report_md("reports/heron/report.md", title=TITLE, sections=[
        ("What was run", text), ("Results", summary_md(summary)),
        ("Claims", claims_md(verdicts)), ("Published numbers", published_md(rows))])
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from hrlzoo.pipeline.claims import MIN_SEEDS, Claim, Verdict, count_verdicts

if TYPE_CHECKING:  # matplotlib is imported inside the plotting functions
    from matplotlib.figure import Figure

    from hrlzoo.pipeline.claims import ClaimSet

MINUS = "\u2212"  # typographic minus for human-facing numbers
STAT_COLUMNS = ("metric", "mean", "ci_low", "ci_high", "n")
RESERVED_KEYS = ("paper", "scale", "results", "gates", "claims", "verdicts")

# --------------------------------------------------------------------------- atomic files


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temp file in the same folder and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text, atomically; ends with exactly one newline."""
    return write_bytes_atomic(path, (text.rstrip("\n") + "\n").encode("utf-8"))


def _jsonable(obj: Any, digits: int = 6) -> Any:
    """Plain JSON types: floats rounded to `digits` significant digits, NaN/inf -> None."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            return None
        x = float(f"{x:.{digits}g}")
        return 0.0 if x == 0 else x  # no "-0.0"
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v, digits) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON: {obj!r}")


def dumps_json(obj: Any) -> str:
    """The exact text `write_json_atomic` writes."""
    return json.dumps(_jsonable(obj), sort_keys=True, indent=2, ensure_ascii=False,
                      allow_nan=False) + "\n"


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """Deterministic JSON (sorted keys, indent 2, 6 significant digits, NaN -> null)."""
    return write_bytes_atomic(path, dumps_json(obj).encode("utf-8"))


# --------------------------------------------------------------------------- metrics.json


def metrics_dict(paper: str, scale: str, summary_df: pl.DataFrame | None,
                 verdicts: Sequence[Verdict], extra: Mapping[str, Any] | None = None,
                 ) -> dict[str, Any]:
    """The content of `reports/<paper>/metrics.json`:

        {"paper": str, "scale": str,
         "results": {<by_1>: ... {<by_k>: {<metric>: {"mean", "ci_low", "ci_high", "n"}}}},
         "gates": {<id>: <entry>}, "claims": {<id>: <entry>},
         "verdicts": {"reproduced": int, "not_reproduced": int, "inconclusive": int,
                      "untestable": int},
         ...extra}

    An entry is `Verdict.metrics_entry()`: the verdict, the estimate `diff` and its interval,
    n per side, paired or not, the interval method, the margin and its source, the gates, the
    registration and the reason.
    The `results` levels are the non-statistics columns of `summary_df` (the `by` of
    `summarise`) in their order, e.g. by=["task", "method"] gives results.pendulum.heron.return.
    Leaves are numbers (null where undefined), so `dvc metrics show/diff` shows them all.
    `extra` adds top-level keys (e.g. "title", "published"); it may not override the above.
    """
    results: dict[str, Any] = {}
    if summary_df is not None and summary_df.height:
        missing = [c for c in STAT_COLUMNS if c not in summary_df.columns]
        if missing:
            raise ValueError(f"metrics_dict: summary_df lacks column '{missing[0]}' "
                             "(expected the output of summarise)")
        levels = [c for c in summary_df.columns if c not in STAT_COLUMNS]
        for row in summary_df.iter_rows(named=True):
            node = results
            for key in [*(str(row[c]) for c in levels), str(row["metric"])][:-1]:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ValueError(f"metrics_dict: key '{key}' is both a value and a level")
            leaf = str(row["metric"])
            if leaf in node:
                path = ".".join([*(str(row[c]) for c in levels), leaf])
                raise ValueError(f"metrics_dict: two summary rows for results.{path}")
            node[leaf] = {"mean": row["mean"], "ci_low": row["ci_low"],
                          "ci_high": row["ci_high"], "n": row["n"]}
    judged: dict[str, dict[str, Any]] = {"gate": {}, "claim": {}}
    for v in verdicts:
        if v.id in judged["gate"] or v.id in judged["claim"]:
            raise ValueError(f"metrics_dict: two verdicts for '{v.id}'")
        judged[v.claim.kind][v.id] = v.metrics_entry()
    out: dict[str, Any] = {"paper": paper, "scale": scale, "results": results,
                           "gates": judged["gate"], "claims": judged["claim"],
                           "verdicts": count_verdicts(verdicts)}
    for k, val in (extra or {}).items():
        if k in RESERVED_KEYS:
            raise ValueError(f"metrics_dict: extra key '{k}' would override a standard key")
        out[k] = val
    return _jsonable(out)


# --------------------------------------------------------------------------- markdown


def fmt_num(x: Any, decimals: int | None = None) -> str:
    """A number for people: about 4 significant digits (or `decimals`), typographic minus."""
    if x is None:
        return "—"
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        return str(x)
    if isinstance(x, (int, np.integer)):
        return str(int(x)).replace("-", MINUS)
    x = float(x)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return ("−∞" if x < 0 else "∞")
    if decimals is None:
        decimals = _auto_decimals(abs(x))
    text = f"{x:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", MINUS)


def _auto_decimals(a: float) -> int:
    if a == 0 or not math.isfinite(a):
        return 1
    return max(0, min(6, 3 - math.floor(math.log10(a))))


def format_ci(mean: Any, lo: Any = None, hi: Any = None, decimals: int | None = None) -> str:
    """ "−512.3 [−600.1, −430.0]": one precision for all three, from the largest magnitude."""
    vals = [float(v) for v in (mean, lo, hi)
            if v is not None and isinstance(v, (int, float, np.number)) and math.isfinite(float(v))]
    if decimals is None:
        decimals = _auto_decimals(max((abs(v) for v in vals), default=0.0))
    m = fmt_num(mean, decimals)
    ok = [v is not None and isinstance(v, (int, float, np.number)) and math.isfinite(float(v))
          for v in (lo, hi)]
    if not all(ok):
        return m
    return f"{m} [{fmt_num(lo, decimals)}, {fmt_num(hi, decimals)}]"


def _cell(value: Any, float_fmt: str | Callable[[float], str] | None) -> str:
    if isinstance(value, float) and float_fmt is not None and math.isfinite(value):
        text = float_fmt(value) if callable(float_fmt) else format(value, float_fmt)
    elif value is None:
        text = ""
    else:
        text = fmt_num(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
            else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def markdown_table(df: pl.DataFrame, float_fmt: str | Callable[[float], str] | None = None,
                   ) -> str:
    """A GitHub-flavoured Markdown table of `df`, rows in df order.

    Floats: `float_fmt` as a format spec (".2f") or a callable, else ~4 significant digits
    with a typographic minus. Nulls are empty cells; `|` in text is escaped.
    """
    cols = list(df.columns)
    if not cols:
        return ""
    numeric = [df.schema[c].is_numeric() for c in cols]
    lines = ["| " + " | ".join(_cell(c, None) for c in cols) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    for row in df.iter_rows():
        lines.append("| " + " | ".join(_cell(v, float_fmt) for v in row) + " |")
    return "\n".join(lines)


def summary_md(summary_df: pl.DataFrame, decimals: int | None = None,
               single_model: Mapping[str, str] | None = None) -> str:
    """The results table of a report: one row per group (the `by` columns of `summarise`),
    one column per metric holding "mean [95% t interval]", and the number of seeds. Rows of
    a `single_model` method say "1 (one model)" there."""
    if summary_df.height == 0:
        return "_No results._"
    single_model = single_model or {}
    levels = [c for c in summary_df.columns if c not in STAT_COLUMNS]
    metrics = list(dict.fromkeys(summary_df["metric"].to_list()))
    rows: dict[tuple, dict[str, Any]] = {}
    for r in summary_df.iter_rows(named=True):
        key = tuple(r[c] for c in levels)
        row = rows.setdefault(key, {**{c: r[c] for c in levels}, **{m: "" for m in metrics},
                                    "_n": set()})
        row[r["metric"]] = format_ci(r["mean"], r["ci_low"], r["ci_high"], decimals)
        row["_n"].add(int(r["n"]))
    out = []
    for row in rows.values():
        ns = sorted(row.pop("_n"))
        row["seeds"] = str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
        if str(row.get("method")) in single_model:
            row["seeds"] = "1 (one model)"
        out.append(row)
    header = {m: f"{m} [95% CI]" for m in metrics}
    df = pl.DataFrame(out, schema={**{c: summary_df.schema[c] for c in levels},
                                   **{m: pl.String for m in metrics}, "seeds": pl.String})
    return markdown_table(df.rename(header))


_SYMBOL = {"greater": ">", "less": "<", "not_less": "≥", "not_greater": "≤",
           "at_least": "≥", "at_most": "≤"}


def claim_formula(claim: Claim) -> str:
    """The claim as a formula: "return, task=pendulum: heron > misweighted + 5"."""
    from hrlzoo.pipeline.claims import short_num, side_labels  # the same labels as the reasons

    def num(x: float) -> str:  # a declared constant: shortest form, typographic minus
        return short_num(x).replace("-", MINUS)

    m = claim.margin
    if claim.is_threshold:
        a, b = claim.method, num(claim.value)
    else:
        a, b = side_labels(claim)
    if claim.relation == "equivalent":
        formula = f"|{a} {MINUS} {b}| ≤ {num(m)}"
    else:
        formula = f"{a} {_SYMBOL[claim.relation]} {b}"
        if m:
            sign = "+" if claim.relation in ("greater", "not_greater", "at_most") else MINUS
            formula += f" {sign} {num(m)}"
    bw = claim.baseline_rows_where  # conditions shared by both sides; the rest are in labels
    common = {k: v for k, v in claim.where.items() if claim.is_threshold or bw.get(k) == v}
    scope = ", ".join([claim.metric, *(f"{k}={v}" for k, v in common.items())])
    return f"{scope}: {formula}"


def _n_cell(v: Verdict, single_model: Mapping[str, str]) -> str:
    if v.claim.is_threshold:
        return str(v.n_method)
    def side(name: str, n: int) -> str:
        return "1 (one model)" if name in single_model else str(n)
    return f"{side(v.claim.method, v.n_method)} vs {side(v.claim.baseline or '', v.n_baseline)}"


def verdicts_table(verdicts: Sequence[Verdict], single_model: Mapping[str, str] | None = None) -> str:
    """id, test, n per side, estimate [95% CI] (the difference; for a threshold claim the mean
    itself), interval method, verdict, reason."""
    single_model = single_model or {}
    def estimate(v: Verdict) -> str:  # a threshold claim shows its mean in the metric's units
        if v.claim.is_threshold:
            return format_ci(v.mean_method, v.ci_low + v.claim.value, v.ci_high + v.claim.value)
        return format_ci(v.diff, v.ci_low, v.ci_high)

    rows = [{"id": v.id, "test": claim_formula(v.claim), "n": _n_cell(v, single_model),
             "estimate [95% CI]": estimate(v),
             "interval": v.interval or "—", "verdict": f"**{v.verdict}**", "reason": v.reason}
            for v in verdicts]
    return markdown_table(pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}))


def claims_md(verdicts: Sequence[Verdict], single_model: Mapping[str, str] | None = None) -> str:
    """The claims' verdicts (gates left out), then the tally."""
    claims = [v for v in verdicts if v.claim.kind == "claim"]
    if not claims:
        return "_No claims declared._"
    counts = count_verdicts(claims)
    tally = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
    return verdicts_table(claims, single_model) + f"\n\n{len(claims)} claims: {tally}."


def gates_md(verdicts: Sequence[Verdict], single_model: Mapping[str, str] | None = None) -> str:
    """The gates' verdicts: a claim that names a gate which is not reproduced is untestable."""
    gates = [v for v in verdicts if v.claim.kind == "gate"]
    if not gates:
        return ("_No gates declared: no condition of the working regime is checked before the "
                "claims are read._")
    return ("A gate is a pre-registered condition of the working regime, judged by the same rules "
            "as a claim; every claim that names a gate which is not reproduced is **untestable**."
            "\n\n" + verdicts_table(gates, single_model))


def declarations_md(verdicts: Sequence[Verdict]) -> str:
    """How every gate and claim was declared: its text, margin with the margin's source, gates,
    registration, source."""
    from hrlzoo.pipeline.claims import short_num

    if not verdicts:
        return ""
    rows = []
    for v in verdicts:
        c = v.claim
        reg = c.registered if c.registered != "post-hoc" else f"post-hoc: {c.post_hoc_reason}"
        rows.append({"id": c.id, "kind": c.kind, "claim": c.text,
                     "margin": short_num(c.margin) + (f" ({c.margin_source})" if c.margin_source else ""),
                     "gates": ", ".join(c.gates) or "—", "registered": reg, "source": c.source})
    return markdown_table(pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}))


def retired_md(claimset: "ClaimSet") -> str:
    """Claims that are no longer judged, with their last verdict and why."""
    if not claimset.retired:
        return ""
    rows = [{"id": r.id, "claim": r.text, "last verdict": r.last_verdict, "why retired": r.why,
             "replaced by": r.replaced_by or "—"} for r in claimset.retired]
    return markdown_table(pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}))


def claims_sections(claimset: "ClaimSet", verdicts: Sequence[Verdict], diagnosis: str = "",
                    ) -> list[tuple[str, str]]:
    """A report's sections on its verdicts: gates, claims (+ diagnosis), declarations, retired."""
    legend = (f"Each verdict uses the 95% t interval named in its row (paired t over matching seeds, "
              f"Welch t otherwise, one-sample t against a fixed value or a single model); a decisive "
              f"verdict needs at least {MIN_SEEDS} seeds per side. **untestable**: a gate is not met, "
              f"or both sides sit at the metric's floor or ceiling on every seed.")
    return [("Gates", gates_md(verdicts, claimset.single_model)),
            ("Claims", legend + "\n\n" + claims_md(verdicts, claimset.single_model)
             + (f"\n\n{diagnosis}" if diagnosis else "")),
            ("How the gates and claims were declared", declarations_md(verdicts)),
            ("Retired claims", retired_md(claimset))]


def published_md(rows: Iterable[Mapping[str, Any]]) -> str:
    """The paper's own numbers beside ours, each with its source ("paper Table 2").

    `rows`: mappings with any columns (e.g. task, method, metric, paper, ours) and a
    non-empty "source"; columns keep first-seen order, "source" last. Returns "" when no
    rows are given, so a report shows this section only where published numbers are known.
    """
    rows = [dict(r) for r in rows]
    if not rows:
        return ""
    for i, r in enumerate(rows):
        if not str(r.get("source") or "").strip():
            raise ValueError(f"published_md: row {i + 1} has no source: {r!r}")
    cols = [c for c in dict.fromkeys(k for r in rows for k in r) if c != "source"] + ["source"]
    lines = ["| " + " | ".join(_cell(c, None) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c), None) for c in cols) + " |")
    return "\n".join(lines)


def report_md_text(*, title: str, sections: Sequence[tuple[str, str]]) -> str:
    """ "# title" then "## heading" + body per section; empty bodies are left out."""
    parts = [f"# {title.strip()}"]
    for heading, body in sections:
        if body and body.strip():
            parts.append(f"## {heading.strip()}\n\n{body.strip()}")
    return "\n\n".join(parts) + "\n"


def write_report_md(path: str | os.PathLike, *, title: str,
                    sections: Sequence[tuple[str, str]]) -> Path:
    """Write `report.md` atomically (see `report_md_text`)."""
    return write_bytes_atomic(path, report_md_text(title=title, sections=sections).encode("utf-8"))


# --------------------------------------------------------------------------- figures


def new_figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] = (5.0, 3.5)):
    """(fig, axes 2-D array): a matplotlib Figure outside pyplot (no global state, no GUI);
    `size` is one panel's (width, height) in inches."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: "Figure", path: str | os.PathLike, dpi: int = 100) -> Path:
    """PNG with deterministic bytes (Agg, fixed dpi, no Software metadata), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # render with Agg whatever backend pyplot was set to
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return write_bytes_atomic(path, buf.getvalue())


BANDS = {"ci": "95% t interval of the mean over seeds", "none": ""}


def curve_stats(df: pl.DataFrame, x: str, y: str, group: str, facet: str | None = None,
                band: str = "ci", level: float = 0.95) -> pl.DataFrame:
    """Per (facet, group, x): mean of y over rows (seeds), n, and the band's lo/hi (the
    one-sample t interval the verdicts use; lo = hi = mean where n = 1)."""
    if band not in BANDS:
        raise ValueError(f"band: expected one of {', '.join(BANDS)}, got {band!r}")
    keys = ([facet] if facet else []) + [group, x]
    missing = [c for c in (*keys, y) if c not in df.columns]
    if missing:
        raise ValueError(f"plot_curves: no column '{missing[0]}' (columns: {', '.join(df.columns)})")
    st = (df.filter(pl.col(y).is_not_null())
          .group_by(keys).agg(mean=pl.col(y).mean(), std=pl.col(y).std(), n=pl.len())
          .sort(keys))
    mean = st["mean"].to_numpy()
    if band == "ci" and st.height:
        from scipy.stats import t as student_t

        n = st["n"].to_numpy().astype(np.float64)
        sd = st["std"].fill_null(0.0).to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            half = np.where(n > 1, student_t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n), 0.0)
        return st.with_columns(lo=pl.Series(mean - half), hi=pl.Series(mean + half))
    return st.with_columns(lo=pl.col("mean"), hi=pl.col("mean"))


def _legend_right(fig: "Figure", labels: Sequence[str], colors: Sequence, title: str) -> None:
    """One legend outside the panels, on the right, below the suptitle (never over a panel)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[j % len(colors)], lw=1.5, label=str(g)) for j, g in enumerate(labels)]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, title=title)


def plot_curves(df: pl.DataFrame, x: str, y: str, group: str, facet: str | None = None,
                path: str | os.PathLike | None = None, title: str = "", band: str = "ci",
                xlabel: str | None = None, ylabel: str | None = None, ncols: int = 3,
                dpi: int = 100) -> "Figure":
    """Training curves: mean of `y` over seeds against `x`, one line per `group` value with
    its 95% t interval as a shaded band (`band`: ci | none), one panel per `facet` value.

    Saved as a deterministic PNG when `path` is given; returns the Figure either way.
    """
    st = curve_stats(df, x, y, group, facet, band)
    facets = st[facet].unique(maintain_order=True).to_list() if facet else [None]
    groups = sorted(st[group].unique().to_list(), key=lambda g: (str(type(g)), g))
    nc = max(1, min(ncols, len(facets)))
    nr = math.ceil(len(facets) / nc)
    fig, axes = new_figure(nr, nc)
    from matplotlib import colormaps

    colors = colormaps["tab10"].colors
    for i, fv in enumerate(facets):
        ax = axes[i // nc][i % nc]
        part = st.filter(pl.col(facet) == fv) if facet else st
        for j, g in enumerate(groups):
            c = part.filter(pl.col(group) == g)
            if c.height == 0:
                continue
            color = colors[j % len(colors)]
            xs = c[x].to_numpy()
            ax.plot(xs, c["mean"].to_numpy(), color=color, lw=1.5, label=str(g))
            if band != "none":
                ax.fill_between(xs, c["lo"].to_numpy(), c["hi"].to_numpy(), color=color,
                                alpha=0.2, lw=0)
        if facet:
            ax.set_title(f"{facet} = {fv}", fontsize=10)
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(ylabel or y)
        ax.grid(alpha=0.3)
    for k in range(len(facets), nr * nc):
        axes[k // nc][k % nc].set_visible(False)
    _legend_right(fig, [str(g) for g in groups], colors, group)
    ns = st["n"].unique().sort().to_list()
    seeds = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"
    note = f"mean over seeds ({seeds}); band: {BANDS[band]}" if band != "none" else f"mean over seeds ({seeds})"
    fig.suptitle(f"{title}\n{note}" if title else note, fontsize=10)
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


def plot_intervals(summary_df: pl.DataFrame, x: str, group: str, metric: str | None = None,
                   facet: str | None = None, path: str | os.PathLike | None = None, title: str = "",
                   ylabel: str | None = None, order: Sequence[Any] | None = None, ncols: int = 3,
                   points: pl.DataFrame | None = None, ylim: tuple[float, float] | None = None,
                   facet_order: Sequence[Any] | None = None, dpi: int = 100) -> "Figure":
    """Final results as points with their 95% t interval (the output of `summarise`, so the
    same interval as the tables and verdicts): `x` on the axis, one colour per `group`, one panel
    per `facet`; rows with n = 1 are drawn as hollow points without a bar. `points`: the
    per-seed table (columns x, group, facet, and `metric`, or `value` when metric is None and
    the facet is the summary's metric column), drawn as small dots beside them. When `x` is
    `group`, each panel shows only the groups it has (a colour stays with its group); panels
    follow `facet_order` where given."""
    from matplotlib import colormaps

    df = summary_df.filter(pl.col("metric") == metric) if metric else summary_df
    facets = df[facet].unique(maintain_order=True).to_list() if facet else [None]
    if facet_order is not None:
        facets = [f for f in facet_order if f in facets] + [f for f in facets if f not in facet_order]
    groups = list(order) if order is not None else df[group].unique(maintain_order=True).to_list()
    groups = [g for g in groups if g in df[group].to_list()]
    all_xs = df[x].unique(maintain_order=True).to_list()
    if x == group:
        all_xs = groups

    def panel_xs(part: pl.DataFrame) -> list:
        if x != group:
            return all_xs
        present = set(part.filter(pl.col("mean").is_not_null())[x].to_list())
        return [g for g in groups if g in present]

    parts = [df.filter(pl.col(facet) == fv) if facet else df for fv in facets]
    widest = max((len(panel_xs(p)) for p in parts), default=1)
    per_x = 0.55 if x == group else 0.45 * max(1, len(groups)) ** 0.5
    nc = max(1, min(ncols, len(facets)))
    nr = math.ceil(len(facets) / nc)
    fig, axes = new_figure(nr, nc, size=(max(3.2, per_x * widest + 1.6), 3.4))
    colors = colormaps["tab10"].colors
    width = 0.8 / max(1, len(groups))
    for i, (fv, part) in enumerate(zip(facets, parts)):
        ax = axes[i // nc][i % nc]
        xs = panel_xs(part)
        for j, g in enumerate(groups):
            rows = part.filter(pl.col(group) == g)
            for r in rows.iter_rows(named=True):
                if r["mean"] is None or r[x] not in xs:
                    continue
                pos = xs.index(r[x]) + (0 if x == group else (j - (len(groups) - 1) / 2) * width)
                color = colors[j % len(colors)]
                if points is not None:
                    sel = (pl.col(x) == r[x]) & (pl.col(group) == g)
                    if facet:
                        sel = sel & (pl.col(facet) == fv)
                    ys = points.filter(sel)[metric or "value"].drop_nulls().to_numpy()
                    ax.scatter(np.full(ys.size, pos - 0.12), ys, s=10, color="gray", alpha=0.7, zorder=2)
                if r["ci_low"] is None or r["n"] < 2:
                    ax.plot([pos], [r["mean"]], "o", mfc="none", color=color)
                else:
                    ax.errorbar([pos], [r["mean"]], yerr=[[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]],
                                fmt="o", color=color, capsize=3, lw=1.2)
        ax.set_xticks(range(len(xs)), [str(v) for v in xs], rotation=30 if len(xs) > 4 else 0, fontsize=8)
        ax.set_xlim(-0.6, max(len(xs), 1) - 0.4)
        ax.set_xlabel(x)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_ylabel(ylabel or metric or "")
        if facet:
            ax.set_title(f"{facet} = {fv}", fontsize=10)
        ax.grid(alpha=0.3)
    for k in range(len(facets), nr * nc):
        axes[k // nc][k % nc].set_visible(False)
    if group != x:
        _legend_right(fig, [str(g) for g in groups], colors, group)
    ns = df["n"].unique().sort().to_list()
    seeds = f"n = {ns[0]}" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]}"
    note = (f"mean over seeds ({seeds}) with its 95% t interval; hollow: one model or one seed"
            + ("; gray dots: single seeds" if points is not None else ""))
    fig.suptitle(f"{title}\n{note}" if title else note, fontsize=10)
    if path is not None:
        save_figure(fig, path, dpi=dpi)
    return fig


def write_seeds_csv(path: str | os.PathLike, table: pl.DataFrame) -> Path:
    """`reports/<paper>/seeds.csv`: the per-seed table the claims were judged on (rows sorted,
    floats with 6 decimals), so the verdicts can be checked, or re-judged under new rules,
    without the trained artifacts."""
    keys = [c for c in table.columns if not table.schema[c].is_float()]
    buf = io.BytesIO()
    table.sort(keys, nulls_last=True).write_csv(buf, float_precision=6)
    return write_bytes_atomic(path, buf.getvalue())
