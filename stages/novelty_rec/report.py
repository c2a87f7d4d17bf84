"""Stage novelty_rec_report: the results table, learning curves, the claims (OUR READING of the
novelty-seeking recommender, arXiv 2306.01476: see stages/novelty_rec/sim.py and agent.py).

    python -m stages.novelty_rec.report

Reads data/novelty_rec/{encoders,baselines,runs/<method>}/, writes reports/novelty_rec/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.novelty_rec import common
from stages.novelty_rec.params import NoveltyRecParams, sizes

OUT = common.REPORT_DIR
CLAIMS = Path("stages/novelty_rec/claims.yaml")
TITLE = "Novelty-seeking recommender: HRL over static and session novelty propensities (our reading, simulated users)"
ORDER = ("oracle", "hrl", "no_static", "no_dynamic", "flat", "flat_engagement", "greedy", "popularity")
METRICS = ["ctr", "novelty", "diversity", "breadth", "reward", "corr_static", "corr_session", "novelty_gap"]

OUR_READING = [
    "No official code exists and only the paper's abstract could be read (spec B §5.1): the simulator, the "
    "agent's inputs, its rewards, the baselines and every size are our reading of spec B §5.3-5.5. Nothing here "
    "is the paper's number or its exact method; no published number stands beside ours because none is known to us.",
    "Users are simulated (no real data: spec B §0.2, every recommender dataset on PyPI downloads at run time). "
    "The user model (stages/novelty_rec/sim.py) is spec B §5.5's: nu_u ~ Beta (spec: 2, 5), p_us = sigmoid(logit nu_u "
    "+ eps_us) with eps AR(1) (spec: rho 0.5, stationary std 1; the values run are in params `sim`), Dirichlet topic interests, a click logit with affinity, "
    "quality, novelty x (p_us - 0.5) and in-session topic fatigue, and interest mass gained by a clicked novel "
    "topic (the delayed payoff). The click model's weights, the Dirichlet concentration, the known topics, the "
    "interest gain are ours, pre-registered in params before any result. Against RecSim's interest-evolution "
    "environment: a slate of one item and a binary click instead of a k-slate choice model with a no-click "
    "option; fixed sessions instead of a time budget; quality visible; interest moves only on a clicked novel "
    "topic (sim.py's docstring says where it follows and where it departs).",
    "Encoders: the long-term and session encoders are MLPs over the recommender's counters (History), pretrained "
    "as parts of a click model on the logs of a behaviour policy (half uniform items, half items of consumed "
    "topics); spec B §5.3's GRU over the session is replaced by the session's counters (ours).",
    "Agent: both levels are PPO actor-critics from hrlzoo/algos/ppo.py (every seed of params in one batched network); the "
    "high level picks a novelty goal from params `agent.goals` once per session, rewarded by the session's summed "
    "r_t; the low level is a softmax over the whole catalogue conditioned on the goal, rewarded by r_t minus "
    "`reward.goal` x |novel share so far - g| (spec's optional term). The low level's episode is one session (spec B "
    "§5.3: discount 0.9 within the session), so value that arrives in later sessions (a clicked novel topic's "
    "interest) reaches it only through the goals; the high level discounts across sessions by `agent.gamma_high` "
    "(ours). The flat baselines have the low level's horizon only. Spec B §5.3 names REINFORCE with a baseline "
    "or PPO; we use PPO's clipped update with several epochs for every learned method alike, including the "
    "baselines the issue calls 'flat REINFORCE'.",
    "Flat baselines: the same low-level network with g = 0 and no goal term; `flat` on the same r_t, "
    "`flat_engagement` on clicks alone. Ablations change only what the high level sees: `no_static` the "
    "session-start context (previous session's novel share, novel click rate, click rate, z_sess), `no_dynamic` "
    "the long-term context (History long-term features, z_long). The oracle's two levels also see the true nu_u "
    "and p_us. Popularity: the t-th most clicked item of the logs at step t; greedy: the click model's argmax.",
    "Evaluation: the same test users for every method and seed, whole lifetimes, the policies sampling; seed s's "
    "user draws are the same for every method (common random numbers), so comparisons are paired by seed.",
]


def per_seed(ev):
    """One row per (method, seed) with every metric, from the per-(seed, user, session) eval rows."""
    import numpy as np
    import polars as pl

    rows = []
    for (method, seed), g in ev.group_by("method", "seed", maintain_order=True):
        steps = g["clicks"].len()  # sessions x users rows
        per_rec = lambda col: float(g[col].sum() / g["_len"].sum())
        # users sorted, so every sum below runs in one order whichever engine or thread pool ran it
        users = (g.group_by("user").agg(pl.col("goal").mean().alias("g"), pl.col("nu").first(),
                                        pl.col("breadth").first(), (pl.col("novel").sum() / pl.col("_len").sum()).alias("nov"))
                 .sort("user"))
        lo, hi = users["nu"].quantile(1 / 3), users["nu"].quantile(2 / 3)
        gap = float(users.filter(pl.col("nu") >= hi)["nov"].mean() - users.filter(pl.col("nu") <= lo)["nov"].mean())
        corr_static = corr_session = None
        if g["goal"].is_not_nan().all():
            if users["g"].std() > 0:
                corr_static = float(np.corrcoef(users["g"].to_numpy(), users["nu"].to_numpy())[0, 1])
            d = g.with_columns(dg=pl.col("goal") - pl.col("goal").mean().over("user"),
                               dp=pl.col("p") - pl.col("p").mean().over("user"))
            if d["dg"].std() > 0:
                corr_session = float(np.corrcoef(d["dg"].to_numpy(), d["dp"].to_numpy())[0, 1])
        rows.append({"method": method, "seed": seed, "ctr": per_rec("clicks"), "novelty": per_rec("novel"),
                     "diversity": per_rec("diversity"), "reward": per_rec("reward"),
                     "breadth": float(users["breadth"].mean()), "corr_static": corr_static,
                     "corr_session": corr_session, "novelty_gap": gap, "_rows": steps})
    return pl.DataFrame(rows, schema_overrides={"corr_static": pl.Float64, "corr_session": pl.Float64}).drop("_rows")


def table(p: NoveltyRecParams):
    import polars as pl

    L = sizes(p).session_len
    parts = [pl.read_parquet(common.BASE_DIR / "eval.parquet")]
    parts += [pl.read_parquet(common.RUN_ROOT / m / "eval.parquet") for m in p.methods]
    ev = pl.concat(parts, how="diagonal_relaxed").with_columns(_len=pl.lit(L, dtype=pl.Float64))
    t = per_seed(ev)
    curve = pl.concat([pl.read_parquet(common.RUN_ROOT / m / "curve.parquet").with_columns(method=pl.lit(m))
                       for m in p.methods], how="diagonal_relaxed")
    goals = ev.filter(pl.col("goal").is_not_nan())
    return t.sort("method", "seed"), curve, goals


def example_lifetimes(goals, n_users: int = 3) -> str:
    """The hierarchical agent's goals, session by session, for the test users of lowest, median and
    highest nu_u (seed of the first row): what the high level did against what it could not see."""
    import polars as pl

    from hrlzoo.pipeline.report import markdown_table

    g = goals.filter(pl.col("method") == "hrl")
    if not len(g):
        return "(no hierarchical run)"
    g = g.filter(pl.col("seed") == g["seed"].min())
    users = g.group_by("user").agg(pl.col("nu").first()).sort("nu", "user")
    picks = [users["user"][0], users["user"][len(users) // 2], users["user"][-1]][:n_users]
    rows = []
    for u in picks:
        r = g.filter(pl.col("user") == u).sort("session")
        rows.append({"user": int(u), "nu": round(float(r["nu"][0]), 3),
                     "p per session": " ".join(f"{x:.2f}" for x in r["p"]),
                     "goal per session": " ".join(f"{x:.2f}" for x in r["goal"]),
                     "novel items per session": " ".join(f"{int(x)}" for x in r["novel"]),
                     "clicks per session": " ".join(f"{int(x)}" for x in r["clicks"])})
    return (f"Seed {int(g['seed'].min())}, the test users with the lowest, median and highest nu_u:\n\n"
            + markdown_table(pl.DataFrame(rows)))


def order(df):
    import polars as pl

    rank = {m: i for i, m in enumerate(ORDER)}
    return df.with_columns(_o=pl.col("method").replace_strict(rank, default=99)).sort("_o").drop("_o")


def figures(summary, curve, goals, enc_curve, folder: Path) -> list[str]:
    import numpy as np
    import polars as pl

    from hrlzoo.pipeline.report import new_figure, plot_curves, plot_intervals, save_figure

    folder.mkdir(parents=True)
    plot_curves(curve, x="user_steps", y="ctr", group="method", path=folder / "train_ctr.png",
                title="Click rate of the training lifetimes", xlabel="user-steps per seed", ylabel="click rate")
    plot_curves(curve, x="user_steps", y="novelty", group="method", path=folder / "train_novelty.png",
                title="Novel share of the training recommendations", xlabel="user-steps per seed", ylabel="novel share")
    plot_intervals(summary.filter(pl.col("metric").is_in(["ctr", "novelty", "diversity"])), x="metric", group="method",
                   path=folder / "test_metrics.png", title="Test users: mean and 95% t interval over seeds")
    fig, axes = new_figure(1, 2, size=(9.0, 3.6))
    if len(goals):
        for m in [m for m in ORDER if m in goals["method"].unique().to_list()]:
            g = goals.filter(pl.col("method") == m)
            bins = np.linspace(0, 1, 11)
            idx = np.clip(np.digitize(g["p"].to_numpy(), bins) - 1, 0, 9)
            mean_goal = [float(g["goal"].to_numpy()[idx == b].mean()) if (idx == b).any() else np.nan for b in range(10)]
            axes[0][0].plot((bins[:-1] + bins[1:]) / 2, mean_goal, marker="o", label=m)
            u = g.group_by("seed", "user").agg(pl.col("goal").mean(), pl.col("nu").first())
            idx = np.clip(np.digitize(u["nu"].to_numpy(), bins) - 1, 0, 9)
            mean_goal = [float(u["goal"].to_numpy()[idx == b].mean()) if (idx == b).any() else np.nan for b in range(10)]
            axes[0][1].plot((bins[:-1] + bins[1:]) / 2, mean_goal, marker="o", label=m)
    axes[0][0].set_xlabel("true session propensity p_us")
    axes[0][0].set_ylabel("mean novelty goal")
    axes[0][1].set_xlabel("true static preference nu_u")
    axes[0][1].set_ylabel("user's mean novelty goal")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=7)
    fig.suptitle("Goals chosen by the high level against the true propensities (test users, all seeds)", fontsize=10)
    save_figure(fig, folder / "goals_vs_propensity.png")
    fig, axes = new_figure(1, 1)
    axes[0][0].plot(enc_curve["step"].to_numpy(), enc_curve["loss"].to_numpy())
    axes[0][0].set_xlabel("step")
    axes[0][0].set_ylabel("binary cross-entropy")
    axes[0][0].grid(alpha=0.3)
    fig.suptitle("Click model (encoders) pretraining on the logs", fontsize=10)
    save_figure(fig, folder / "encoder_loss.png")
    return ["train_ctr.png", "train_novelty.png", "test_metrics.png", "goals_vs_propensity.png", "encoder_loss.png"]


def body(ctx: Stage) -> None:
    """Gather the baselines and the trained methods, judge the claims, write the report."""
    import polars as pl

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, metrics_dict, report_md_text, summary_md,
                                        write_seeds_csv)

    p: NoveltyRecParams = ctx.params
    s = sizes(p)
    t, curve, goals = table(p)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, t, seeds=p.seeds)
    summary = order(summarise(t, by=["method"], metrics=METRICS, single_model=claims.single_model)
                    .filter(pl.col("n") > 0))
    enc_metrics = json.loads((common.ENC_DIR / "metrics.json").read_text())
    enc_curve = pl.read_parquet(common.ENC_DIR / "curve.parquet")
    curves = ctx.out(OUT / "curves")
    curves.mkdir(parents=True)
    for y in ("ctr", "novelty"):
        (curve.group_by("method", "user_steps").agg(pl.col(y).mean()).pivot("method", index="user_steps", values=y,
                                                                             sort_columns=True)
         .sort("user_steps").write_csv(curves / f"train_{y}.csv", float_precision=4))
    figs = figures(summary, curve, goals, enc_curve, ctx.out(OUT / "figures"))
    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict("novelty_rec", p.scale, summary, verdicts,
                                                                     {"title": TITLE, "encoder": enc_metrics})))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), t)
    a = p.agent
    setup = (f"Scale `{p.scale}`, seeds {p.seeds}. Catalogue: {s.items} items in {s.topics} topics. Users: "
             f"{s.sessions} sessions of {s.session_len} recommendations. Logs: {s.log_users} users under the "
             f"behaviour policy; click model on them: held-out log-loss {enc_metrics['heldout_logloss']:.4f} "
             f"(constant {enc_metrics['constant_logloss']:.4f}), AUC {enc_metrics['heldout_auc']:.3f}. Training: "
             f"{s.iterations} iterations x {s.users_per_seed} fresh users per seed, one lifetime each; PPO "
             f"{a.epochs} epochs, minibatch {a.minibatch}, lr {a.lr}, goals {a.goals}. Reward r_t = click + "
             f"{p.reward.novelty} novel + {p.reward.diversity} diversity, goal term {p.reward.goal}. Test: "
             f"{s.test_users} users, the same for every method and seed. Every number is the mean over seeds with "
             f"its 95% t interval; popularity and greedy are single models (n = 1).")
    sections = [
        ("Setup", setup),
        ("Results (test users, whole lifetimes)", summary_md(summary, single_model=claims.single_model)),
        *claims_sections(claims, verdicts, ""),
        ("Figures", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("Example lifetimes (the hierarchical agent's goals against the hidden propensities)", example_lifetimes(goals)),
        ("Deviations (Our reading: everything here, there is no official code)",
         "\n".join(f"- {d}" for d in OUR_READING)),
        ("Reading of the committed run", READING),
        ("Rebuild time", REBUILD_TIME),
        ("Reproduce", "```\nmake repro PAPER=novelty_rec            # or: dvc repro novelty_rec_report\n"
         "snakemake --cores 2 reports/novelty_rec/metrics.json\n```"),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


REBUILD_TIME = (
    "Measured 2026-12-08 (`make repro PAPER=novelty_rec`, 2 cores, under the heavy lock but beside the test suite, "
    "so an upper bound): 24:54 wall. Logs 0:02, encoders 0:13, baselines 0:15, the six PPO stages 7:05-8:08 each, two "
    "at a time, the report 0:04. The smoke DAG (`snakemake --cores 2 --forceall reports/novelty_rec/report.md` at "
    "`scale: smoke` in a fresh clone, 11 stages with params_check, nothing else running) took 16 s wall for 19 s of "
    "CPU time, most of it process start-up (torch, polars; Lightning in the encoders).")

READING = """Our reading of the run committed on 2026-12-08 (`cpu`, 5 seeds; written after the results). The
registered gate holds (the oracle, which sees the true propensities, beats greedy affinity by 0.056 click rate),
but it was too weak a test of "the hierarchy has something to find": flat PPO with the novelty reward comes within
a point of the oracle's click rate (0.553 against 0.560) with a much tighter spread, so in our simulator the
history a flat policy already sees carries most of what the hidden propensities would add. The hierarchical agent
(0.556) is not ahead of flat in clicks (0.002 [-0.012, 0.017], inconclusive) and recommends less novelty than flat
(-0.054 [-0.100, -0.008], not reproduced), its ablations move it by about one point either way (inconclusive), and
its goals do not follow the propensities (correlation -0.12 static, 0.02 session: not reproduced). Even the
oracle's goals do not correlate with them (-0.05, 0.02), so what fails here is our simulator's incentive to set
propensity-matched goals, not only the agent's ability to find them; the claims are reported as registered. A
simulator whose payoff for novelty depends more steeply on the static preference (and a gate against flat, not
greedy) is the next test; it would be a new registration.

Run to run: the committed run of 2026-12-07, with the same code and params, ran on another host, and every
number differs a little, from the simulated logs on. One verdict differs: hierarchical against flat in novelty was
inconclusive there (-0.027 [-0.079, 0.025]) and is not reproduced here; every other verdict is the same. Each
stage is deterministic on one host (the logs stage run twice here gives the same bytes), but the bytes depend on
the CPU's vector kernels: on this AVX-512 host, forcing torch's AVX2 kernels (`ATEN_CPU_CAPABILITY=avx2`) or MKL's
(`MKL_ENABLE_INSTRUCTIONS=AVX2`) changes the logs' bytes. The novelty verdict's interval ends near 0 in both runs,
which is why a host could move it."""


def main(argv: list[str] | None = None) -> int:
    return run_stage("novelty_rec_report", "novelty_rec", NoveltyRecParams, body, argv, outputs=lambda a, p: [
        str(OUT / "curves"), str(OUT / "figures"), str(OUT / "metrics.json"), str(OUT / "report.md"),
        str(OUT / "seeds.csv")])


if __name__ == "__main__":
    sys.exit(main())
