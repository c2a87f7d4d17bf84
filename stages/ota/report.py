"""Stage ota_report: success tables, value diagnostics, the n sweep, the claims' verdicts.

    python -m stages.ota.report <maze>...

Reads data/ota/eval/<maze>/ and writes reports/ota/ (metrics.json, report.md, curves/*.csv for
`dvc plots`, figures/*.png).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hrlzoo.envs.pointmaze import MAZES
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.ota import common
from stages.ota.params import OTAParams, ota_methods, sizes

OUT = Path("reports/ota")
CLAIMS = Path("stages/ota/claims.yaml")
TITLE = "OTA: Option-aware Temporally Abstracted Value for Offline Goal-Conditioned RL"
METHOD_ORDER = ("gcbc", "gcivl", "hiql", "ota_n3", "ota_n5", "ota_n10", "hiql_oracle")
MAIN_OTA = "ota_n5"  # the OTA of the claims: the official default abstraction factor

DEVIATIONS = [
    "Framework: PyTorch re-implementation of OGBench's JAX agents (same losses, layer layout, "
    "initialisation, AWR clipping at 100, EMA target, length-normalised phi); exact GELU instead "
    "of flax's tanh approximation (differs by < 1e-3, 2.5x faster on this CPU).",
    "Training in phases: each value is trained first, then the actors against the frozen value "
    "(OGBench trains value and actors jointly on one summed loss). The released OTA agent's "
    "value-only `total_loss` suggests the same split (spec A §2.3); this is our reading.",
    "OTA's value goals use HIQL's sampling (p_cur 0.2, p_traj 0.5, p_rand 0.3) for both values; "
    "ota.py's defaults are 0 / 0.5 / 0.5 (its README: keep HIQL's settings, tune n).",
    "OTA's high value has its own twin heads, phi and EMA target; its phi is not the subgoal "
    "space (the high actor's targets stay in V^l's phi, which the low actor reads).",
    "The abstraction-factor sweep (n = 3, 5, 10) runs on the giant maze only; n = 1 is HIQL "
    "itself (the reduction is exact, so it is not trained twice). The claims use n = 5, "
    "ota.py's default, fixed before any result was seen.",
    "Datasets: generated here by our re-implementation of OGBench's point generator "
    "(`hrlzoo/envs/pointmaze.py`; same oracle, noise 0.5, episode lengths, goal resampling, "
    "validation = 10% extra episodes, at least one), with our own random streams: the bytes "
    "differ from OGBench's downloads, the distribution does not.",
    "Only the navigate datasets are learned from (`dataset: stitch` switches every agent to the "
    "stitch datasets, which are generated too).",
    "Oracle-subgoal mode: the subgoal is the BFS oracle's next cell centre (the goal itself in "
    "the goal's cell), encoded by V^l's phi for HIQL's low actor.",
]


def option_rule_line(p: OTAParams) -> str:
    """How OTA's option targets were built in this run (`agent.option_rule`)."""
    if p.agent.option_rule == "official":
        return ("OTA's option targets (`agent.option_rule: official`, the default): an option that reaches "
                "its goal succeeds (r = 0, mask 0, no bootstrap), any other pays -1 and bootstraps from "
                "V^h(s_o, g) with the same gamma; a random goal's option ends at min(t + n, T), the "
                "trajectory's last state (length 0 at t = T), so V^h = -(1 - gamma^(ceil(d/n) - 1))/(1 - gamma). "
                "Source: spec A §2.3's reading of ota-v/ota-v's sampler in a derivative; the official "
                "repository could not be fetched here, so this is our reading of it. Also our reading: "
                "a current-state goal runs its option to min(t + n, T) and takes g := s_o; a random "
                "goal that the option happens to reach counts as success (o == g).")
    return ("Deviation (`agent.option_rule: hiql_reward`, our earlier reading): OTA's options pay HIQL's "
            "reward (r = 0 only when s_t is the goal) and random-goal options end at T + 1 (the "
            "trajectory's final recorded state); ota-v's sampler gives r = 0, mask 0 when the option "
            "reaches its goal and ends random-goal options at T. Its effect on the results has not "
            "been measured in this run.")


def size_deviation(p: OTAParams) -> str:
    """This run's sizes against OGBench's, from the params (never hard-coded)."""
    s = sizes(p)
    data = ", ".join(f"{m} {d.episodes}" for m, d in s.data.items())
    return (f"Sizes (`{p.scale}` scale): MLPs {'x'.join(map(str, s.train.hidden))} (OGBench: 512x512x512), "
            f"batch {s.train.batch_size} (1024), {s.train.value_steps} gradient steps per value and "
            f"{s.train.actor_steps} per actor (1M, joint), datasets of {data} episodes (1000 / 1000 / 500), "
            f"{s.eval.episodes} evaluation episodes per task and seed (50), {len(p.seeds)} seeds. "
            "`scale: paper` restores the published sizes.")


DIAGNOSIS = """Our reading of the run committed on 2026-12-07 (`cpu` scale, 3 seeds, the official option
rule; the tables above are that run); it was written for that run, so check it still applies to another:

- **The gates.** HIQL reaches 0.05 on medium, 0.05 on large and 0 on giant, far below the
  registered gates (0.60 / 0.35 / 0.15; OGBench reports about 0.79 on medium). With 3 seeds the
  gates are inconclusive and so is every claim; with 5 seeds of this regime they would fail and
  every claim would be untestable. The verdicts therefore say nothing about the paper yet: this
  `cpu` scale (3,000 steps of 128x2 MLPs on 200 episodes) is far from HIQL's working regime, and
  the spec's sizes (256x2 + LayerNorm, 30-50k steps) cost 5-9 hours of this DAG on 2 cores
  (benchmarks/ota_updates.py; issue 13).
- **Giant maze, success.** No learned policy reaches a goal on the giant maze, while HIQL's own
  low level steered by the oracle's subgoals always does (`hiql_oracle`). The low level is
  therefore not the problem; the high level is, as the OTA paper argues. OTA's option-aware
  value is more order-consistent than HIQL's (0.72 for HIQL, 0.76 / 0.77 / 0.79 for n = 3 / 5 / 10)
  and its advantage signs are right more often (0.68, then 0.71 / 0.73 / 0.78), but neither value
  is accurate enough over the giant maze's 500-1000-step horizons to get the agent to the goal.
- **The gap and maze size.** On the medium maze OTA (n = 5) beats HIQL by 0.32 (paired t interval
  0.13 to 0.51, 3 seeds); on the large maze the gap is about nil (0.02, interval -0.06 to 0.09); on
  the giant one it is zero because both fail. At our scale the gain shrinks with maze size, the
  opposite of the paper's trend, because the larger mazes' values are under-trained at a fixed
  step budget.
- **The option rule.** This run differs from the stop-10 run only in OTA's option rule (HIQL, GCBC
  and GCIVL gave the same numbers on every seed): OTA's medium success went from 0.38 to 0.37
  (per seed 0.55 / 0.40 / 0.20 -> 0.40 / 0.35 / 0.35), large from 0.05 to 0.07: no visible effect at
  3 seeds.
"""


def claims_table(success, diag):
    """One row per (maze, method, seed): success, the diagnostics of the method's high-level
    value (hiql: V^l; ota_n<k>: V^h), and the gap rows of `ota_minus_hiql`."""
    import polars as pl

    per_seed = success.group_by("maze", "method", "seed").agg(pl.col("success").mean())
    diag = diag.with_columns(method=pl.col("value").str.replace("^low$", "hiql").str.replace("^high_n", "ota_n"))
    table = per_seed.join(diag.drop("value"), on=["maze", "method", "seed"], how="left")
    ota = per_seed.filter(pl.col("method") == MAIN_OTA).rename({"success": "ota"}).drop("method")
    hiql = per_seed.filter(pl.col("method") == "hiql").rename({"success": "hiql"}).drop("method")
    gap = (ota.join(hiql, on=["maze", "seed"]).with_columns(gap=pl.col("ota") - pl.col("hiql"),
                                                             method=pl.lit("ota_minus_hiql"))
           .select("maze", "method", "seed", "gap"))
    return pl.concat([table, gap], how="diagonal_relaxed").sort("maze", "method", "seed")


def curve_pivot(st):
    """One row per (maze, method), one column per checkpoint: "mean [95% t interval]" (n seeds)."""
    import polars as pl

    def cell(mean, lo, hi, n):
        return "" if mean is None else (f"{mean:.2f} [{lo:.2f}, {hi:.2f}]" if lo is not None else f"{mean:.2f}") + f" (n={n})"

    rank = {m: i for i, m in enumerate(MAZES)}
    cells = st.with_columns(cell=pl.struct("mean", "ci_low", "ci_high", "n").map_elements(
        lambda r: cell(r["mean"], r["ci_low"], r["ci_high"], r["n"]), return_dtype=pl.String))
    wide = cells.pivot("step", index=["maze", "method"], values="cell", sort_columns=False)
    wide = wide.rename({c: f"step {c}" for c in wide.columns if c not in ("maze", "method")})
    wide = order(wide).with_columns(_m=pl.col("maze").replace_strict(rank, default=99))
    return wide.sort("_m", maintain_order=True).drop("_m")


def curve_text(p: OTAParams) -> str:
    s = sizes(p)
    return (f"Every actor is saved after {', '.join(map(str, common.actor_checkpoints(p)))} of its "
            f"{s.train.actor_steps} gradient steps (low and high levels at the same step; the values are "
            f"fully trained first) and evaluated on {s.eval.curve_episodes} episode{'s' if s.eval.curve_episodes > 1 else ''} per task and seed, "
            f"started apart from the final evaluation's episodes. Each seed's point is its mean over the "
            f"5 tasks; mean over seeds with the 95% t interval (figure `success_curves.png`, "
            f"`curves/success_<maze>.csv`). The final evaluation above uses {s.eval.episodes} episodes per task and seed.")


def order(df, col="method"):
    import polars as pl

    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return df.with_columns(_o=pl.col(col).replace_strict(rank, default=99)).sort(
        [c for c in ("maze",) if c in df.columns] + ["_o"]).drop("_o")


def curve_table(curve):
    """Per (maze, method, step, seed): success over the curve's 5 tasks x episodes."""
    import polars as pl

    return curve.group_by("maze", "method", "step", "seed").agg(pl.col("success").mean())


def figures(success_tbl, main, paths, training, curve, folder: Path) -> list[str]:
    import polars as pl

    from hrlzoo.pipeline.report import plot_curves, plot_intervals

    folder.mkdir(parents=True)
    mazes = [m for m in MAZES if m in success_tbl["maze"].unique().to_list()]
    plot_intervals(main, x="method", group="method", metric="success", facet="maze", points=success_tbl,
                   order=METHOD_ORDER, facet_order=MAZES, ylim=(-0.02, 1.05), path=folder / "success.png",
                   title="Success over the five evaluation tasks", ylabel="success rate")

    # values along the oracle paths, min-max scaled per (value, seed, task) so shapes compare
    names = ["success.png"]
    for maze in mazes:
        part = paths.filter(pl.col("maze") == maze)
        if part.height == 0:
            continue
        scaled = part.with_columns(
            v_scaled=((pl.col("v") - pl.col("v").min()) / (pl.col("v").max() - pl.col("v").min() + 1e-9))
            .over("value", "seed", "task"))
        plot_curves(scaled, x="steps_to_goal", y="v_scaled", group="value", facet="task",
                    path=folder / f"value_paths_{maze}.png", ncols=5,
                    title=f"pointmaze-{maze}: values along the oracle path of each task (min-max scaled)",
                    xlabel="true steps to goal", ylabel="scaled V(s, g)")
        names.append(f"value_paths_{maze}.png")
    plot_curves(curve, x="step", y="success", group="method", facet="maze", path=folder / "success_curves.png",
                title="Success over the actors' training (checkpoints, cheap episode subset; 95% t interval over seeds)",
                xlabel="actor gradient step", ylabel="success rate")
    names.append("success_curves.png")
    plot_curves(training, x="step", y="value_loss", group="value", facet="maze",
                path=folder / "value_loss.png", title="Value training loss (IVL, sum of twin heads)",
                xlabel="gradient step", ylabel="loss")
    names.append("value_loss.png")
    return names


def nsweep_figure(sweep, path: Path) -> None:
    from hrlzoo.pipeline.report import new_figure, save_figure

    metrics = ["success", "order_consistency", "adv_sign_acc"]
    fig, axes = new_figure(1, 3, size=(3.6, 3.2))
    for ax, metric in zip(axes[0], metrics):
        part = sweep.filter(sweep["metric"] == metric).sort("factor")
        ax.errorbar(part["factor"].to_numpy(), part["mean"].to_numpy(),
                    yerr=[part["mean"].to_numpy() - part["ci_low"].to_numpy(),
                          part["ci_high"].to_numpy() - part["mean"].to_numpy()], marker="o", capsize=3)
        ax.set_xscale("log")
        ax.set_xticks(part["factor"].to_list(), [str(n) for n in part["factor"].to_list()])
        ax.set_xlabel("abstraction factor n (1 = HIQL)")
        ax.set_title(metric, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle("pointmaze-giant: OTA's abstraction factor (mean, 95% t interval over seeds)", fontsize=11)
    save_figure(fig, path)


def body(ctx: Stage) -> None:
    """Gather the evaluations of every maze, check OTA's claims, write the report."""
    import polars as pl

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, markdown_table, metrics_dict,
                                        report_md_text, summary_md, write_seeds_csv)

    p: OTAParams = ctx.params
    mazes = ctx.args.mazes

    def read(name):
        return pl.concat([pl.read_parquet(f"{common.eval_dir(m)}/{name}.parquet").with_columns(maze=pl.lit(m))
                          for m in mazes], how="diagonal_relaxed")

    success, diag, paths, training = read("success"), read("diagnostics"), read("paths"), read("training")
    curve = curve_table(read("curve"))
    table = claims_table(success, diag)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, table, seeds=p.seeds)
    metrics = ["success", "order_consistency", "adv_sign_acc"]
    hier = pl.col("method").is_in(["hiql"]) | pl.col("method").str.starts_with("ota_n")
    main = order(summarise(table.filter(pl.col("method") != "ota_minus_hiql"), by=["maze", "method"],
                           metrics=["success"]))
    diagnostics = order(summarise(table.filter(hier), by=["maze", "method"], metrics=metrics[1:]))
    gap = summarise(table.filter(pl.col("method") == "ota_minus_hiql"), by=["maze", "method"], metrics=["gap"])
    summary = pl.concat([main, diagnostics, gap])

    per_task = order(success.group_by("maze", "method", "task").agg(pl.col("success").mean().round(3))
                     .pivot("task", index=["maze", "method"], values="success", sort_columns=True)
                     .rename(lambda c: f"task {c}" if c.isdigit() else c))
    steps_tbl = order(success.filter(pl.col("success") > 0).group_by("maze", "method")
                      .agg(pl.col("steps").mean().round(1).alias("mean steps of successful episodes")))
    n_of = {"hiql": 1, **{m: int(m[5:]) for m in ota_methods(p, "giant")}}
    sweep_rows = table.filter((pl.col("maze") == "giant") & pl.col("method").is_in(list(n_of)))
    sweep = summarise(sweep_rows.with_columns(factor=pl.col("method").replace_strict(n_of, return_dtype=pl.Int64)),
                      by=["factor"], metrics=metrics)
    sweep = sweep if len(n_of) > 2 else sweep.clear()

    curves = ctx.out(OUT / "curves")
    curves.mkdir(parents=True)
    for maze in mazes:  # for `dvc plots`: value loss per value kind, mean over seeds
        (training.filter(pl.col("maze") == maze).group_by("value", "step").agg(pl.col("value_loss").mean())
         .pivot("value", index="step", values="value_loss", sort_columns=True).sort("step")
         .write_csv(curves / f"value_loss_{maze}.csv", float_precision=5))
        (order(summarise(curve.filter(pl.col("maze") == maze), by=["method", "step"], metrics=["success"]))
         .select("method", "step", "n", "mean", "ci_low", "ci_high").sort("method", "step")
         .write_csv(curves / f"success_{maze}.csv", float_precision=4))
    curve_summary = curve_pivot(summarise(curve, by=["maze", "method", "step"], metrics=["success"]))
    folder = ctx.out(OUT / "figures")
    figs = figures(table.filter(pl.col("method") != "ota_minus_hiql"), main, paths, training, curve, folder)
    if sweep.height:
        nsweep_figure(sweep, folder / "nsweep_giant.png")
        figs.append("nsweep_giant.png")

    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict("ota", p.scale, summary, verdicts, {"title": TITLE})))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), table)
    s = sizes(p)
    data = "; ".join(f"{m}: {s.data[m].episodes} episodes x {s.data[m].episode_steps} steps, "
                     f"gamma {s.train.discount[m]}" for m in mazes)
    setup = (f"Scale `{p.scale}`, seeds {p.seeds}, dataset `{p.dataset}` (generated, noise {p.noise}). "
             f"Datasets: {data}. Networks: MLPs {s.train.hidden}, batch {s.train.batch_size}, "
             f"{s.train.value_steps} gradient steps per value and {s.train.actor_steps} per actor. Evaluation: "
             f"ogbench's five tasks per maze, {s.eval.episodes} episodes per task and seed, the deterministic policy (temperature 0), the "
             "high level queried every step. Methods: `gcbc`, `gcivl` (flat), `hiql`, `ota_n<k>` (OTA with "
             "abstraction factor k; same V^l and low actor as HIQL), `hiql_oracle` (HIQL's low actor with "
             "the BFS oracle's subgoals). Each seed's success is the mean over its 5 x episodes; "
             "every number is the mean over seeds with its 95% t interval (per-seed values: `seeds.csv`). "
             "Diagnostics score the value "
             "the method's high level uses: V^l for HIQL, V^h for OTA.")
    diag_text = ("`order_consistency`: along the noiseless oracle path of each task, the fraction of state "
                 "pairs (every 5th state) that the value ranks in the path's order (1 = perfect, 0.5 = "
                 "chance). `adv_sign_acc`: on the high actor's own training triples (s_t, s_{t+k}, g), the "
                 "fraction where the sign of V(s_{t+k}, g) - V(s_t, g) matches the change of BFS cell "
                 "distance to g (triples whose cell distance does not change are left out).")
    sections = [
        ("Setup", setup),
        ("Results", "Success rate:\n\n" + summary_md(main) + "\n\nOTA (n = 5) minus HIQL, paired by seed:\n\n"
         + summary_md(gap)),
        ("Value diagnostics", diag_text + "\n\n" + summary_md(diagnostics)),
        *claims_sections(claims, verdicts, DIAGNOSIS),
        ("Success over training", curve_text(p) + "\n\n" + markdown_table(curve_summary)),
        ("Success per task (mean over seeds and episodes)", markdown_table(per_task)),
        ("Episode lengths", markdown_table(steps_tbl)),
        ("Abstraction factor n on the giant maze (factor 1 is HIQL)", summary_md(sweep) if sweep.height else ""),
        ("Figures", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("Published numbers", "None shown. Spec A §2.5 gives OGBench's HIQL success rates on pointmaze "
         "from memory only and OTA's Table 1 values as unknown, so no number with a known source is "
         "available to stand beside ours; our datasets and sizes are also far smaller."),
        ("Deviations from the paper and the official code",
         "\n".join(f"- {d}" for d in [option_rule_line(p), *DEVIATIONS, size_deviation(p)])),
        ("Reproduce", "```\nmake repro PAPER=ota             # or: dvc repro ota_report\n"
         "snakemake --cores 2 reports/ota/metrics.json\n```"),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("mazes", nargs="+", choices=MAZES)

    return run_stage("ota_report", "ota", OTAParams, body, argv, add_args=add_args, outputs=lambda a, p: [
        str(OUT / "curves"), str(OUT / "figures"), str(OUT / "metrics.json"), str(OUT / "report.md"),
        str(OUT / "seeds.csv")])


if __name__ == "__main__":
    sys.exit(main())
