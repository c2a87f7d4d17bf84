"""Stage mashost_report: accuracy, cost and size per method, family and difficulty; the Pareto
plot; learning curves; the claims (OUR READING of MasHost: see stages/mashost/hrpo.py, sim.py).

    python -m stages.mashost.report

Reads data/mashost/baselines/ and data/mashost/runs/<method>/, writes reports/mashost/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.mashost import common, sim
from stages.mashost.params import MasHostParams, sizes

OUT = common.REPORT_DIR
CLAIMS = Path("stages/mashost/claims.yaml")
TITLE = "MasHost: autonomous multi-agent system construction directed by RL (our reading, simulated agents)"
TRAINED = ("mashost", "grpo_only", "reinforce", "no_exemption", "separate")
ORDER = ("oracle", "best_fixed", *sim.FIXED, *TRAINED)

OUR_READING = [
    "No official code exists (the arXiv version promises it on acceptance) and the paper's body could not be read: "
    "the MDP, JPSS, HRPO's reward and advantage, the exemption schedule and DELETE are our reading of the abstract "
    "and the public ICLR reviews (spec B §3.2-3.3). Nothing here is the paper's number or its exact method.",
    "Agents are simulated (no LLM): a role agent is right with a pre-registered probability per family and "
    "difficulty (params `roles`, written before any result), else it gives one of the family's distractor "
    "answers; decomposers lower the difficulty for their successors, verifiers check the majority of their inputs "
    "and re-solve what they catch, aggregators vote. So this reproduces the construction-policy learning problem, "
    "not LLM collaboration (spec B §3.6). The six families generate real instances with exact answers "
    "(queries.parquet), but the simulator reads only their family and difficulty.",
    "The policy reads the query as its family and difficulty (one-hot), not its text; the messages as the "
    "system's current answer agreement and the agents' roles.",
    "Rewards: outcome 1[correct] - 0.2 tokens / 500 - 0.1 irrational agents; action-wise: the change of the "
    "system's correctness after the action minus the new agent's cost and duplication (DELETE: plus the removed "
    "duplicate); HRPO advantage = group-normalised outcome + 0.5 x group-normalised action-wise return-to-go; PPO "
    "clip 0.2, 2 epochs, entropy 0.01. Exemption: no cost and rationality terms in the first 30% of the "
    "iterations. DELETE removes the most recently added agent; EXIT is forced after 6 construction steps.",
    "Baselines: single solver; self-consistency = 5 solvers and a majority vote; chain / star / complete over "
    "the team solver, math, programmer, retriever and a verifier (star: the four experts into the verifier); a "
    "random graph of 5 random roles; `best_fixed` = the fixed topology with the best validation accuracy. The "
    "oracle is the most accurate graph of at most `oracle_nodes` agents per (family, difficulty) cell on "
    "validation queries (brute force, Monte Carlo), evaluated on the test queries like everything else.",
    "Seeds: the trained methods have one policy per seed; fixed graphs and the oracle are single models whose "
    "rows are evaluation-sampling seeds (n = 1 in the claims).",
]


def table(p: MasHostParams):
    import polars as pl

    base = pl.read_parquet(common.BASE_DIR / "eval.parquet")
    choice = json.loads((common.BASE_DIR / "choice.json").read_text())
    runs = [pl.read_parquet(common.RUN_ROOT / m / "eval.parquet") for m in p.methods]
    ev = pl.concat([base, base.filter(pl.col("method") == choice["best_fixed"]).with_columns(method=pl.lit("best_fixed")),
                    *runs], how="diagonal_relaxed")
    agg = [pl.col("correct").cast(pl.Float64).mean().alias("accuracy"), pl.col("tokens").mean(),
           pl.col("agents").cast(pl.Float64).mean(), pl.col("edges").cast(pl.Float64).mean(),
           pl.col("irrational").cast(pl.Float64).mean()]
    ev = ev.with_columns(pl.col("difficulty").cast(pl.String))
    parts = []
    for by_f in (True, False):
        for by_d in (True, False):
            keys = ["method", "seed"] + (["family"] if by_f else []) + (["difficulty"] if by_d else [])
            g = ev.group_by(keys).agg(agg)
            if not by_f:
                g = g.with_columns(family=pl.lit("all"))
            if not by_d:
                g = g.with_columns(difficulty=pl.lit("all"))
            parts.append(g.select("method", "seed", "family", "difficulty", "accuracy", "tokens", "agents", "edges",
                                  "irrational"))
    t = pl.concat(parts)
    curve = pl.concat([pl.read_parquet(common.RUN_ROOT / m / "curve.parquet") for m in p.methods])
    auc = curve.group_by("method", "seed").agg(train_auc=pl.col("accuracy").mean())
    overall = t.filter((pl.col("family") == "all") & (pl.col("difficulty") == "all"))
    bf = overall.filter(pl.col("method") == "best_fixed").select("seed", bf_acc="accuracy")
    gap = (overall.filter(pl.col("method") == "oracle").join(bf, on="seed")
           .select("method", "seed", oracle_gap=pl.col("accuracy") - pl.col("bf_acc"))
           .with_columns(distinct_best_fixed=pl.lit(float(len(set(choice["best_fixed_per_family"].values()))))))
    extra = auc.join(gap, on=["method", "seed"], how="full", coalesce=True).with_columns(
        family=pl.lit("all"), difficulty=pl.lit("all"))
    t = t.join(extra, on=["method", "seed", "family", "difficulty"], how="left")
    return t.sort("method", "seed", "family", "difficulty"), curve, choice


def order(df):
    import polars as pl

    rank = {m: i for i, m in enumerate(ORDER)}
    return df.with_columns(_o=pl.col("method").replace_strict(rank, default=99)).sort("_o").drop("_o")


def figures(summary, curve, folder: Path) -> list[str]:
    import numpy as np
    import polars as pl

    from hrlzoo.pipeline.report import new_figure, plot_curves, save_figure

    folder.mkdir(parents=True)
    plot_curves(curve, x="episodes", y="accuracy", group="method", path=folder / "train_accuracy.png",
                title="Accuracy of the sampled training graphs", xlabel="episodes (graphs built)", ylabel="accuracy")
    plot_curves(curve, x="episodes", y="agents", group="method", path=folder / "train_agents.png",
                title="Agents per sampled training graph", xlabel="episodes (graphs built)", ylabel="agents")
    overall = summary.filter((pl.col("family") == "all") & (pl.col("difficulty") == "all"))
    fig, axes = new_figure(1, 1, size=(6.5, 4.2))
    ax = axes[0][0]
    acc = overall.filter(pl.col("metric") == "accuracy")
    tok = overall.filter(pl.col("metric") == "tokens")
    for m in [m for m in ORDER if m in acc["method"].to_list() and m != "best_fixed"]:
        a = acc.filter(pl.col("method") == m).row(0, named=True)
        c = tok.filter(pl.col("method") == m).row(0, named=True)
        ya = [[a["mean"] - (a["ci_low"] if a["ci_low"] is not None else a["mean"])],
              [(a["ci_high"] if a["ci_high"] is not None else a["mean"]) - a["mean"]]]
        xa = [[c["mean"] - (c["ci_low"] if c["ci_low"] is not None else c["mean"])],
              [(c["ci_high"] if c["ci_high"] is not None else c["mean"]) - c["mean"]]]
        trained = m in TRAINED
        ax.errorbar([c["mean"]], [a["mean"]], xerr=xa, yerr=ya, fmt="o" if trained else "s", capsize=3,
                    mfc=None if trained else "none", label=m)
    ax.set_xlabel("tokens per query")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Accuracy against cost (Pareto plot): mean with 95% t interval over seeds\n"
                 "(hollow squares: fixed graphs and the oracle, single models)", fontsize=10)
    save_figure(fig, folder / "pareto.png")
    fig, axes = new_figure(1, 1, size=(5.0, 3.5))
    ax = axes[0][0]
    ag = summary.filter((pl.col("family") == "all") & (pl.col("difficulty") != "all") & (pl.col("metric") == "agents"))
    for m in [m for m in TRAINED if m in ag["method"].to_list()]:
        r = ag.filter(pl.col("method") == m).sort("difficulty")
        x = r["difficulty"].cast(pl.Int64).to_numpy()
        y = r["mean"].to_numpy()
        lo, hi = r["ci_low"].fill_null(r["mean"]).to_numpy(), r["ci_high"].fill_null(r["mean"]).to_numpy()
        ax.errorbar(x, y, yerr=[y - lo, hi - y], marker="o", capsize=3, label=m)
    ax.set_xlabel("difficulty")
    ax.set_ylabel("agents in the built graph")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle("Graph size against difficulty (test queries, greedy construction)", fontsize=10)
    save_figure(fig, folder / "size_vs_difficulty.png")
    return ["train_accuracy.png", "train_agents.png", "pareto.png", "size_vs_difficulty.png"]


def body(ctx: Stage) -> None:
    """Gather the baselines and the trained methods, judge the claims, write the report."""
    import polars as pl

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, markdown_table, metrics_dict, report_md_text,
                                        summary_md, write_seeds_csv)

    p: MasHostParams = ctx.params
    s = sizes(p)
    t, curve, choice = table(p)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, t, seeds=p.seeds)
    metrics = ["accuracy", "tokens", "agents", "edges", "irrational", "train_auc", "oracle_gap", "distinct_best_fixed"]
    summary = order(summarise(t, by=["family", "difficulty", "method"], metrics=metrics,
                              single_model=claims.single_model).filter(pl.col("n") > 0))
    overall = summary.filter((pl.col("family") == "all") & (pl.col("difficulty") == "all")).drop("family", "difficulty")
    fam = summary.filter((pl.col("family") != "all") & (pl.col("difficulty") == "all") &
                         (pl.col("metric") == "accuracy")).drop("difficulty")
    fam_wide = (fam.with_columns(v=pl.col("mean").round(3)).pivot("family", index="method", values="v")
                .select("method", *sim.FAMILIES))
    curves = ctx.out(OUT / "curves")
    curves.mkdir(parents=True)
    (curve.group_by("method", "episodes").agg(pl.col("accuracy").mean()).pivot("method", index="episodes",
                                                                                values="accuracy", sort_columns=True)
     .sort("episodes").write_csv(curves / "train_accuracy.csv", float_precision=4))
    figs = figures(summary, curve, ctx.out(OUT / "figures"))
    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict("mashost", p.scale, summary, verdicts,
                                                                     {"title": TITLE, "best_fixed": choice["best_fixed"]})))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), t)
    oracle_lines = "\n".join(f"- `{k}`: {' + '.join(v['roles'])}, edges {v['edges']} (validation accuracy "
                             f"{v['accuracy']:.2f})" for k, v in sorted(choice["oracle_graphs"].items()))
    setup = (f"Scale `{p.scale}`, seeds {p.seeds}. {len(sim.FAMILIES)} families x {p.difficulties} difficulties, "
             f"{s.test_per_cell} test queries per cell, {s.eval_repeats} executions each. Roles: "
             f"{', '.join(f'{k} ({v.kind})' for k, v in p.roles.items())}. Training: {s.iterations} iterations x "
             f"{s.queries} queries x G = {s.group} graphs, at most {p.policy.max_nodes} construction steps; methods "
             f"{', '.join(p.methods)}. Best fixed topology on validation: `{choice['best_fixed']}`; best fixed per "
             f"family: {choice['best_fixed_per_family']}; validation accuracy of the oracle "
             f"{choice['validation_oracle']:.3f} (graphs of at most {s.oracle_nodes} agents). Every number is the mean "
             f"over seeds with its 95% t interval; fixed graphs and the oracle are single models (n = 1).")
    sections = [
        ("Setup", setup),
        ("Results (all test queries)", summary_md(overall, single_model=claims.single_model)),
        ("Accuracy per family (mean over seeds)", markdown_table(fam_wide)),
        *claims_sections(claims, verdicts, ""),
        ("Figures", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("The oracle's graph per cell", oracle_lines),
        ("Deviations (Our reading: everything here, there is no official code)", "\n".join(f"- {d}" for d in OUR_READING)),
        ("Rebuild time (dated, of the committed run)", REBUILD_TIME),
        ("Reproduce", "```\nmake repro PAPER=mashost            # or: dvc repro mashost_report\n"
         "snakemake --cores 2 reports/mashost/metrics.json\n```"),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


REBUILD_TIME = (
    "2026-12-07, the committed `cpu` run (`snakemake --cores 2`): 2 min 16 s wall, 197 s CPU, on an "
    "otherwise idle machine, not under the team's heavy lock (its holder was waiting on itself).")


def main(argv: list[str] | None = None) -> int:
    return run_stage("mashost_report", "mashost", MasHostParams, body, argv, outputs=lambda a, p: [
        str(OUT / "curves"), str(OUT / "figures"), str(OUT / "metrics.json"), str(OUT / "report.md"),
        str(OUT / "seeds.csv")])


if __name__ == "__main__":
    sys.exit(main())
