"""Report writers (metrics.json, Markdown, PNG) and the `summary` stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hrlzoo.pipeline.claims import Claim, ClaimSet, Retired, evaluate, summarise
from hrlzoo.pipeline.report import (claims_md, claims_sections, curve_stats, dumps_json, format_ci,
                                    markdown_table, metrics_dict, plot_curves, plot_intervals,
                                    published_md, save_figure, summary_md, write_json_atomic,
                                    write_report_md, write_seeds_csv)
from stages import summary

ROOT = Path(__file__).resolve().parents[1]


def results_table() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for task in ("pendulum", "mountain"):
        for method, mu in (("heron", -150.0), ("misweighted", -300.0)):
            for seed in range(5):
                rows.append({"task": task, "method": method, "seed": seed,
                             "return": mu + rng.normal() * 5, "success": float(rng.random() > 0.5)})
    return pl.DataFrame(rows)


REG = {"registered": "before-results"}
GATE = Claim(id="learns", text="misweighted learns.", metric="return", method="misweighted",
             where={"task": "pendulum"}, relation="at_least", value=-1000, source="spec", kind="gate", **REG)
CLAIMS = [
    Claim(id="beats", text="HERON beats misweighted.", metric="return", method="heron",
          where={"task": "pendulum"}, relation="greater", baseline="misweighted", margin=50.0,
          margin_source="a third of the paper's gain", gates=["learns"], source="paper §5.1", **REG),
    Claim(id="ghost", text="HERON beats RLHF.", metric="return", method="heron",
          where={"task": "pendulum"}, relation="greater", baseline="rlhf", source="paper §5.2",
          margin_source="no number in the paper", registered="post-hoc", post_hoc_reason="added late"),
]
CLAIMSET = ClaimSet(CLAIMS, [GATE], retired=[Retired("old", "An old claim.", "reproduced", "by construction")])


@pytest.fixture(scope="module")
def evaluated():
    t = results_table()
    return (summarise(t, by=["task", "method"], metrics=["return", "success"]),
            evaluate(CLAIMSET, t, seeds=range(5)))


# --------------------------------------------------------------------------- JSON


def test_json_bytes_are_deterministic(tmp_path):
    obj = {"b": [1, 2.123456789, float("nan")], "a": {"z": np.float32(0.1), "y": np.int64(3)},
           "c": -0.0, "d": 123456789.0, "e": float("inf"), "f": True, "g": "héron"}
    p1, p2 = tmp_path / "one.json", tmp_path / "sub" / "two.json"
    write_json_atomic(p1, obj)
    write_json_atomic(p2, dict(reversed(list(obj.items()))))
    assert p1.read_bytes() == p2.read_bytes()
    data = json.loads(p1.read_text())
    assert list(data) == sorted(data)
    assert data["b"] == [1, 2.12346, None] and data["a"] == {"y": 3, "z": 0.1}
    assert data["c"] == 0.0 and data["d"] == 123457000.0 and data["e"] is None
    assert data["f"] is True and data["g"] == "héron"
    assert p1.read_text().startswith('{\n  "a"') and p1.read_text().endswith("}\n")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["one.json", "sub"]  # no temp files
    with pytest.raises(TypeError):
        dumps_json({"x": object()})


def _leaves(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            assert isinstance(k, str) and k and "." not in k, f"bad key {path}.{k}"
            yield from _leaves(v, f"{path}.{k}")
    else:
        yield path, node


def test_metrics_dict_structure(evaluated, tmp_path):
    summary_df, verdicts = evaluated
    m = metrics_dict("heron", "cpu", summary_df, verdicts, extra={"title": "HERON"})
    assert set(m) == {"paper", "scale", "results", "gates", "claims", "verdicts", "title"}
    assert m["scale"] == "cpu" and m["paper"] == "heron"
    leaf = m["results"]["pendulum"]["heron"]["return"]
    assert set(leaf) == {"mean", "ci_low", "ci_high", "n"} and leaf["n"] == 5
    assert leaf["ci_low"] <= leaf["mean"] <= leaf["ci_high"]
    assert set(m["results"]) == {"pendulum", "mountain"}
    assert set(m["results"]["mountain"]["misweighted"]) == {"return", "success"}
    beats = m["claims"]["beats"]
    assert beats["verdict"] == "reproduced" and beats["diff"] > 100
    assert beats["n_method"] == 5 and beats["n_baseline"] == 5 and beats["paired"] is True
    assert beats["interval"] == "paired t" and beats["margin"] == 50.0 and beats["gates"] == ["learns"]
    assert beats["margin_source"] == "a third of the paper's gain" and beats["registered"] == "before-results"
    ghost = m["claims"]["ghost"]
    assert ghost["verdict"] == "inconclusive" and ghost["diff"] is None and ghost["ci_low"] is None
    assert ghost["registered"] == "post-hoc" and "missing data" in ghost["reason"]
    assert m["gates"]["learns"]["verdict"] == "reproduced" and m["gates"]["learns"]["interval"] == "one-sample t"
    assert m["verdicts"] == {"reproduced": 1, "not_reproduced": 0, "inconclusive": 1, "untestable": 0}
    # what `dvc metrics show` flattens: every leaf a number, a string or null
    for path, value in _leaves(m):
        assert value is None or isinstance(value, (int, float, str, list)), path
    write_json_atomic(tmp_path / "metrics.json", m)
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    with pytest.raises(ValueError, match="override"):
        metrics_dict("heron", "cpu", summary_df, verdicts, extra={"claims": {}})
    with pytest.raises(ValueError, match="two summary rows"):
        metrics_dict("heron", "cpu", pl.concat([summary_df, summary_df]), verdicts)
    assert metrics_dict("x", "smoke", None, [])["results"] == {}


# --------------------------------------------------------------------------- Markdown


def test_format_ci():
    assert format_ci(-512.31, -600.12, -430.0) == "−512.3 [−600.1, −430.0]"
    assert format_ci(0.5, 0.25, 0.75) == "0.5000 [0.2500, 0.7500]"
    assert format_ci(3.0, None, None) == "3.000"
    assert format_ci(float("nan"), float("nan"), float("nan")) == "—"
    assert format_ci(12.0, 10.0, 14.0, decimals=0) == "12 [10, 14]"


def test_markdown_table():
    df = pl.DataFrame({"method": ["a|b", "c"], "ret": [-1.5, None], "n": [3, 4]})
    md = markdown_table(df)
    assert md.splitlines() == ["| method | ret | n |", "|---|---:|---:|",
                               "| a\\|b | −1.500 | 3 |", "| c |  | 4 |"]
    assert "| a\\|b | -1.50 | 3 |" in markdown_table(df, float_fmt=".2f")


def test_report_md(evaluated, tmp_path):
    summary_df, verdicts = evaluated
    table = summary_md(summary_df)
    assert table.splitlines()[0] == "| task | method | return [95% CI] | success [95% CI] | seeds |"
    assert len(table.splitlines()) == 2 + 4
    cm = claims_md(verdicts)
    assert "| beats | return, task=pendulum: heron > misweighted + 50 | 5 vs 5 |" in cm and "**reproduced**" in cm
    assert "| paired t |" in cm and "missing data: no rows for method=rlhf" in cm and "learns" not in cm
    assert cm.endswith("2 claims: 1 reproduced, 0 not reproduced, 1 inconclusive, 0 untestable.")
    sections = dict(claims_sections(CLAIMSET, verdicts, diagnosis="Our reading."))
    assert list(sections) == ["Gates", "Claims", "How the gates and claims were declared", "Retired claims"]
    assert "| learns | return, task=pendulum: misweighted ≥ −1000 | 5 |" in sections["Gates"]
    assert sections["Claims"].endswith("Our reading.") and "at least 5 seeds per side" in sections["Claims"]
    decl = sections["How the gates and claims were declared"]
    assert "50 (a third of the paper's gain)" in decl and "post-hoc: added late" in decl and "paper §5.2" in decl
    assert "| old | An old claim. | reproduced | by construction | — |" in sections["Retired claims"]
    assert "_No gates declared" in dict(claims_sections(ClaimSet(CLAIMS[1:]), verdicts[2:]))["Gates"]
    assert published_md([]) == ""
    pub = published_md([{"task": "pendulum", "method": "heron", "return": -140.2,
                         "source": "paper Table 2"}])
    assert pub.splitlines()[0] == "| task | method | return | source |"
    with pytest.raises(ValueError, match="no source"):
        published_md([{"return": 1.0}])
    path = tmp_path / "report.md"
    write_report_md(path, title="HERON", sections=[("Results", table), ("Claims", cm),
                                                   ("Published numbers", published_md([]))])
    text = path.read_text()
    assert text.startswith("# HERON\n\n## Results\n\n| task")
    assert "## Claims" in text and "Published numbers" not in text and text.endswith(".\n")


# --------------------------------------------------------------------------- figures


def test_save_figure_bytes_are_deterministic(tmp_path):
    from matplotlib.figure import Figure

    def make():
        fig = Figure(figsize=(3, 2))
        ax = fig.subplots()
        ax.plot([0, 1, 2], [1, 3, 2], label="a")
        ax.legend()
        ax.set_title("deterministic")
        return fig

    fig = make()
    save_figure(fig, tmp_path / "a.png")
    save_figure(fig, tmp_path / "b.png")
    save_figure(make(), tmp_path / "c.png")
    a = (tmp_path / "a.png").read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n"
    assert a == (tmp_path / "b.png").read_bytes() == (tmp_path / "c.png").read_bytes()
    assert b"Software" not in a and b"matplotlib" not in a.lower()


def test_curve_bands_are_t_intervals():
    df = pl.DataFrame({"step": [0] * 3 + [1] * 3 + [2], "method": ["a"] * 7, "ret": [1.0, 2, 3, 5, 5, 5, 7]})
    st = curve_stats(df, "step", "ret", "method")
    half = 4.302652729911275 / 3 ** 0.5  # t(0.975, 2) * sd 1 / sqrt(3)
    assert st["lo"].to_list() == pytest.approx([2 - half, 5.0, 7.0])
    assert st["hi"].to_list() == pytest.approx([2 + half, 5.0, 7.0]) and st["n"].to_list() == [3, 3, 1]
    with pytest.raises(ValueError, match="band"):
        curve_stats(df, "step", "ret", "method", band="minmax")


def test_plot_intervals_and_seeds_csv(tmp_path):
    t = results_table()
    s = summarise(t, by=["task", "method"], metrics=["return"], single_model={"misweighted": "one model"})
    fig = plot_intervals(s, x="method", group="method", metric="return", facet="task", points=t,
                         path=tmp_path / "i.png", title="Final")
    assert (tmp_path / "i.png").stat().st_size > 1000 and "95% t interval" in fig._suptitle.get_text()
    write_seeds_csv(tmp_path / "a.csv", t)
    write_seeds_csv(tmp_path / "b.csv", t.reverse())
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert pl.read_csv(tmp_path / "a.csv").height == t.height


@pytest.mark.parametrize("band", ["ci", "none"])
def test_plot_curves(tmp_path, band):
    rows = [{"step": s * 100, "seed": seed, "method": m, "task": t,
             "ret": float(s * (2 if m == "heron" else 1) + seed)}
            for t in ("pendulum", "mountain") for m in ("heron", "rlhf")
            for seed in range(3) for s in range(10)]
    df = pl.DataFrame(rows)
    fig = plot_curves(df, "step", "ret", "method", "task", tmp_path / "c1.png", "Curves", band=band)
    plot_curves(df.reverse(), "step", "ret", "method", "task", tmp_path / "c2.png", "Curves", band=band)
    assert (tmp_path / "c1.png").read_bytes() == (tmp_path / "c2.png").read_bytes()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    plot_curves(df.filter(task="pendulum"), "step", "ret", "method", None, tmp_path / "c3.png")
    assert (tmp_path / "c3.png").stat().st_size > 1000


# --------------------------------------------------------------------------- summary stage


def fake_paper(root: Path, paper: str, verdicts: list[str], title: str | None = None) -> None:
    t = pl.DataFrame({"method": ["a"] * 5 + ["b"] * 5, "seed": [0, 1, 2, 3, 4] * 2,
                      "ret": [10.0, 11.0, 12.0, 12.5, 13.0, 0.0, 1.0, 2.0, 1.5, 0.5]})
    rel = {"reproduced": "greater", "not reproduced": "less", "inconclusive": "greater"}
    claims = [Claim(id=f"c{i}", text="t", metric="ret" if v != "inconclusive" else "nope",
                    method="a", baseline="b", relation=rel[v], source="s", margin=1.0 if i == 0 else 0.0,
                    margin_source="m", registered="post-hoc" if i == 1 else "before-results",
                    post_hoc_reason="late" if i == 1 else None)
              for i, v in enumerate(verdicts)]
    vs = evaluate(claims, t)
    assert [v.verdict for v in vs] == verdicts
    extra = {"title": title} if title else None
    write_json_atomic(root / "reports" / paper / "metrics.json",
                      metrics_dict(paper, "smoke", summarise(t, ["method"], ["ret"]), vs, extra))


def test_summary_stage(tmp_path, capsys):
    fake_paper(tmp_path, "ota", ["reproduced", "inconclusive"])
    fake_paper(tmp_path, "heron", ["reproduced", "not reproduced", "reproduced"], title="HERON")
    (tmp_path / "reports" / "notyet").mkdir()  # a paper without a report yet
    assert summary.main(["--root", str(tmp_path)]) == 0
    readme = tmp_path / "reports" / "README.md"
    text = readme.read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    assert lines[0] == ("| paper | title | scale | claims | reproduced | not reproduced | inconclusive | untestable "
                        "| seeds per side | with margin | post-hoc |")
    assert lines[1] == "| [heron](heron/report.md) | HERON | smoke | 3 | 2 | 1 | 0 | 0 | 5 | 1 | 1 |"
    assert lines[2] == "| [ota](ota/report.md) |  | smoke | 2 | 1 | 0 | 1 | 0 | 5 | 1 | 1 |"
    assert lines[3] == "| **total** | 2 papers |  | 5 | 3 | 1 | 1 | 0 |  | 2 | 2 |"
    assert "not of equal strength" in text and "paired t" in text
    first = readme.read_bytes()
    assert summary.main(["--root", str(tmp_path)]) == 0
    assert readme.read_bytes() == first
    assert "2 papers" in capsys.readouterr().out


def test_summary_stage_edge_cases(tmp_path, capsys):
    assert summary.main(["--root", str(tmp_path)]) == 0  # no reports at all
    assert "No paper has a report yet" in (tmp_path / "reports" / "README.md").read_text()
    bad = tmp_path / "reports" / "broken" / "metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    assert summary.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "broken/metrics.json" in err


def test_summary_stage_runs_as_module_in_cwd(tmp_path):
    fake_paper(tmp_path, "heron", ["reproduced"])
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    res = subprocess.run([sys.executable, "-m", "stages.summary"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "[heron](heron/report.md)" in (tmp_path / "reports" / "README.md").read_text()
