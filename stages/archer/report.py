"""Stage archer_report: results per method and size, learning curves, example games, the claims.

    python -m stages.archer.report

Reads data/archer/sft/<size>/gate.json and data/archer/runs/<run>/{curve,final}.parquet, writes
reports/archer/ (metrics.json, report.md, seeds.csv, curves/*.csv for `dvc plots`, figures/*.png).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.archer import common
from stages.archer.params import ArcherParams, sizes

OUT = common.REPORT_DIR
CLAIMS = Path("stages/archer/claims.yaml")
TITLE = "ArCHer: Training Language Model Agents via Hierarchical Multi-Turn RL"
ORDER = ("sft", "archer", "ppo", "filtered_bc", "chai")

DEVIATIONS = [
    "Environment: our Twenty Questions on a generated world (objects with made-up one-word names, yes/no "
    "attributes as balanced random splits, a rule oracle answering yes / no / invalid) instead of the paper's 157 "
    "real objects answered by a fine-tuned flan-t5-small; the turn limit is 8 instead of 20. Utterances are "
    "templated word sequences of 4-6 tokens (`is it made of wood ?`, `is it a bako ?`); the reward (-1 per "
    "turn, 0 on the winning turn) and the episode end (correct guess or turn limit, both counted as terminal "
    "as the official env does) are the official ones.",
    "Offline data: games of a noisy scripted questioner (random attribute order, repeated questions, premature "
    "guesses) instead of LMRL-Gym's GPT-3.5 questioner games.",
    "Models: word-level TinyGPTs trained here from scratch (SFT on the offline data) instead of GPT-2 / "
    "Mistral-7B; the critic's encoder is a copy of the small SFT policy (pretrained here, as RoBERTa-base is "
    "pretrained), its pooled output the last token's hidden state instead of RoBERTa's pooler; the critic "
    "encoder stays the same for both policy sizes, as RoBERTa-base does in the paper's Mistral runs "
    "(scripts/config/archer_llm_20q.yaml keeps critic_lm).",
    "Schedule scaled down (official values in params/archer.yaml comments): iterations, rollout_size, "
    "warmup_iter, critic epochs and grad_accum per the `sizes` table of the committed scale.",
    "Learning rates (our reading): the official ones (lm_lr 1e-6, critic_lr 2e-5) are sized for a pretrained "
    "GPT-2 and RoBERTa; for tiny GPTs each method's lr was picked, before the committed run, by a one-seed "
    "pilot (seed 100, not a committed seed) of the full `cpu` schedule, the best curve mean (return_auc) of "
    "two values: ArCHer (lm_lr, critic_lr) in {(1e-5, 1e-4), (1e-4, 1e-4)}, filtered BC and PPO lr in "
    "{1e-5, 1e-4} (the official 1e-6 was dropped from the grid for time); CHAI uses ArCHer's critic lr. The "
    "chosen values are those of the Setup above; the claims and gates were committed before the pilot.",
    "Losses: the official critic and actor losses sum grad_accum micro-batch means; we take the whole "
    "batch's mean times grad_accum (the same gradient). The official clips the norm of ALL agent parameters "
    "(policy + critic, with the critic's last gradients still in place during the actor step); we clip each "
    "optimizer's own parameters.",
    "The policy's utterance ends with a stop token (EOS), which is part of the action and of its log-prob; "
    "the official GPT-2 agent cuts its generation at a newline and drops it. An utterance cut at "
    "max_new_tokens without a stop token is passed to the oracle as it is (usually invalid).",
    "Token-level PPO has no official code in the ArCHer repository; ours (hrlzoo/algos/token_ppo.py) is TRL-style "
    "PPO with a value head on the policy trunk, GAE(0.95) over each game's tokens, the utterance discount "
    "between utterances and 1 within, advantages whitened per batch, 4 epochs x 4 minibatches per iteration.",
    "CHAI is evaluated with its own actor (5 samples at temperature 1, the one with the largest target "
    "min-Q): the official greedy evaluation of CHAI (do_sample False) would draw 5 identical greedy "
    "utterances, i.e. evaluate the frozen SFT policy. Every other method is evaluated greedily, as the "
    "official loop does.",
    "Seeds: each SFT policy is one model trained once (seeds[0]); the RL seeds vary the games, the sampling "
    "and the critic's initial heads. The optimal questioner's return is an exact dynamic programme over "
    "attribute questions and guesses among at most `game.guess_max` candidates.",
    "Checked against the official archer/algorithms/archer/trainer.py (2026-12-07): the critic targets (Q_i regressed "
    "on r + gamma (1 - done) Vbar_i(s') of the target critic, V_i on Qbar_i(s, a') of a fresh a' ~ pi, MSE each, summed), "
    "the Polyak update after every critic step, the actor's advantage min(Q1, Q2)(s, a') - min(V1, V2)(s) from the "
    "online critic without gradient, and the loss -mean(A * sum_h log pi(a'_h | ...)) on fresh samples match; the "
    "remaining differences are the gradient-clipping scope and the loss scaling listed here.",
    "The SFT gate fails in the committed run (2026-12-07; sampled win 0.035 small, 0.025 large, against the "
    "scripted questioner's 0.54 on the same games): the SFT policies repeat one attribute question and then one "
    "guess (see the example games), i.e. they did not learn to condition on the history within 1500 SFT steps. "
    "Our hypothesis, not measured: too few SFT steps for models of this size to track the candidate set. With the "
    "gate failed every claim is untestable; ArCHer's actor at the pilot's lm_lr 1e-4 also drifts to invalid "
    "one-token utterances (the invalid column), which the next run should check.",
]


def results_table(p: ArcherParams):
    """One row per (method, size, seed): the final evaluation and the curve summary, with the
    gain over the SFT policy of the same size."""
    import polars as pl

    final = pl.concat([pl.read_parquet(common.RUN_ROOT / r / "final.parquet") for r in p.runs], how="diagonal_relaxed")
    sft = final.filter(pl.col("method") == "sft").group_by("size").agg(sft_return=pl.col("return").mean())
    table = final.join(sft, on="size", how="left").with_columns(gain=pl.col("return") - pl.col("sft_return"))
    return table.drop("sft_return").sort("method", "size", "seed")


def curves(p: ArcherParams):
    import polars as pl

    return pl.concat([pl.read_parquet(common.RUN_ROOT / r / "curve.parquet") for r in p.runs], how="diagonal_relaxed")


def order(df):
    import polars as pl

    rank = {m: i for i, m in enumerate(ORDER)}
    return df.with_columns(_o=pl.col("method").replace_strict(rank, default=99)).sort("size", "_o").drop("_o")


def figures(curve, summary, folder: Path, p: ArcherParams, optimal: float) -> list[str]:
    import polars as pl

    from hrlzoo.pipeline.report import plot_curves, plot_intervals

    folder.mkdir(parents=True)
    ev = curve.filter(pl.col("eval_return").is_not_null()).with_columns(run=pl.col("method") + "-" + pl.col("size"))
    plot_curves(ev, x="episodes", y="eval_return", group="run", path=folder / "sample_efficiency.png",
                title=f"Greedy return against environment episodes (optimal questioner: {optimal:.2f})",
                xlabel="environment episodes", ylabel="greedy return")
    ro = curve.filter(pl.col("rollout_return").is_not_null()).with_columns(run=pl.col("method") + "-" + pl.col("size"))
    plot_curves(ro, x="episodes", y="rollout_return", group="run", path=folder / "rollout_return.png",
                title="Return of the training rollouts (sampled, temperature 1; CHAI: its actor)",
                xlabel="environment episodes", ylabel="rollout return")
    plot_intervals(summary.filter(pl.col("metric") == "return").with_columns(run=pl.col("method") + "-" + pl.col("size")),
                   x="run", group="run", metric="return", path=folder / "final_return.png",
                   title="Greedy return after the budget", ylabel="return",
                   order=[f"{m}-{s}" for s in ("small", "large") for m in ORDER])
    names = ["sample_efficiency.png", "rollout_return.png", "final_return.png"]
    crit = curve.filter(pl.col("q1_loss").is_not_null()) if "q1_loss" in curve.columns else None
    if crit is not None and crit.height:
        plot_curves(crit.with_columns(run=pl.col("method") + "-" + pl.col("size")), x="episodes", y="q1_loss",
                    group="run", path=folder / "critic_loss.png", title="Critic Q1 TD loss per iteration",
                    xlabel="environment episodes", ylabel="MSE")
        names.append("critic_loss.png")
    return names


def body(ctx: Stage) -> None:
    """Gather every run, judge the claims, write the report."""
    import polars as pl

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, metrics_dict, report_md_text, summary_md,
                                        write_seeds_csv)

    p: ArcherParams = ctx.params
    s = sizes(p)
    gates = {size: json.loads((common.SFT_ROOT / size / "gate.json").read_text()) for size in s.models}
    table = results_table(p)
    curve = curves(p)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, table, seeds=p.seeds)
    metrics = ["return", "return_auc", "win", "turns", "invalid", "sampled_return", "sampled_win", "gain"]
    summary = order(summarise(table, by=["size", "method"], metrics=metrics, single_model=claims.single_model))
    optimal = gates["small"]["optimal_return"]

    out_curves = ctx.out(OUT / "curves")
    out_curves.mkdir(parents=True)
    ev = curve.filter(pl.col("eval_return").is_not_null()).with_columns(run=pl.col("method") + "-" + pl.col("size"))
    (ev.group_by("run", "episodes").agg(pl.col("eval_return").mean()).pivot("run", index="episodes", values="eval_return",
                                                                              sort_columns=True)
     .sort("episodes").write_csv(out_curves / "eval_return.csv", float_precision=4))
    figs = figures(curve, summary, ctx.out(OUT / "figures"), p, optimal)

    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict(
        "archer", p.scale, summary, verdicts,
        {"title": TITLE, "optimal_return": optimal,
         "scripted_return": gates["small"]["scripted"]["return"]})))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), table.drop("examples"))

    g, r = p.game, s.rl
    models = ", ".join(f"{k}: d={m.d_model}, {m.n_layer} layers, {gates[k]['parameters']} parameters"
                       for k, m in s.models.items())
    setup = (f"Scale `{p.scale}`, RL seeds {p.seeds}. Game: {g.n_objects} objects x {g.n_attributes} attributes "
             f"(world seed {g.world_seed}), turn limit {g.max_turns}, return in [-{g.max_turns}, 0]. Offline data: "
             f"{gates['small']['offline_games']} games of the scripted questioner (premature guess "
             f"{p.data.premature_guess}, repeat {p.data.repeat}), {gates['small']['utterances']} utterances. Policies "
             f"({models}) SFT for {s.sft.steps} steps x {s.sft.batch_size}. Online: {r.iterations} iterations x "
             f"{r.rollout_size} games = {r.iterations * r.rollout_size} environment episodes for every method; "
             f"ArCHer/CHAI critic: {r.critic_epochs} steps per iteration of {r.batch_size} x {r.grad_accum} "
             f"transitions, critic lr {p.rl.critic_lr}, tau {p.rl.tau}, gamma {p.rl.gamma}; actor (ArCHer) / BC "
             f"(filtered BC): {r.actor_epochs} steps per iteration after {r.warmup_iter} warm-up iterations, lm lr "
             f"{p.rl.lm_lr}; PPO: {r.ppo_epochs} epochs x {r.ppo_minibatches} minibatches per iteration, lr "
             f"{p.rl.ppo_lr}. Evaluation every {r.eval_every} iterations: every object {r.eval_games_per_object} "
             f"time(s), greedy (CHAI: its 5-sample actor). Runs: {', '.join(p.runs)}. Every number is the mean over "
             f"RL seeds with its 95% t interval; the SFT policies are single models (n = 1).")
    refs = "\n".join(
        f"- {size}: scripted questioner return {v['scripted']['return']:.2f} (win {v['scripted']['win']:.2f}); SFT "
        f"policy sampled return {v['sampled']['return']:.2f} (win {v['sampled']['win']:.2f}, invalid utterances "
        f"{v['sampled']['invalid']:.3f}), greedy return {v['greedy']['return']:.2f} (win {v['greedy']['win']:.2f}); "
        f"optimal questioner {v['optimal_return']:.2f} (exact DP, guesses among <= {g.guess_max} candidates); "
        f"gate: SFT sampled win in [{v['gate']['min_win']}, {v['gate']['max_win']}]."
        for size, v in gates.items())
    ex_rows = []
    for run in ("sft-small", "archer-small", "ppo-small", "archer-large"):
        if run not in p.runs:
            continue
        part = table.filter((pl.col("method") + "-" + pl.col("size") == run) & (pl.col("seed") == p.seeds[0]))
        for e in json.loads(part["examples"][0])[:2]:
            ex_rows.append(f"- `{run}` seed {p.seeds[0]}, hidden `{e['object']}`, return {e['return']:.0f}: "
                           f"`{e['history']}`")
    sections = [
        ("Setup", setup),
        ("Reference questioners and the SFT gate", refs),
        ("Results (after the budget)", summary_md(summary, single_model=claims.single_model)),
        *claims_sections(claims, verdicts, ""),
        ("Learning curves", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("Example games (greedy, final policies)", "\n".join(ex_rows)),
        ("Deviations from the paper and the official code (and what is our reading)",
         "\n".join(f"- {d}" for d in DEVIATIONS)),
        ("Rebuild time (dated, of the committed run)", REBUILD_TIME),
        ("Reproduce", "```\nmake repro PAPER=archer             # or: dvc repro archer_report\n"
         "snakemake --cores 2 reports/archer/metrics.json\npython benchmarks/twenty_questions.py   # episodes/s\n```"),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


REBUILD_TIME = (
    "2026-12-07, the committed `cpu` run, from its snakemake logs (`.snakemake/log/2026-12-07T043416*` "
    "and `T044503*`, `snakemake --cores 2`, two invocations: SFT of both sizes, then every online run and "
    "the report): SFT 04:34:19-04:40:45 UTC (6 min 26 s), online runs + report 04:45:05-05:03:13 UTC "
    "(18 min 08 s); 24 min 34 s wall in all, within the 40 min budget. Whether the heavy lock was held "
    "during it is not recorded; a timed rebuild under the lock is still to be done.")


def main(argv: list[str] | None = None) -> int:
    return run_stage("archer_report", "archer", ArcherParams, body, argv, outputs=lambda a, p: [
        str(OUT / "curves"), str(OUT / "figures"), str(OUT / "metrics.json"), str(OUT / "report.md"),
        str(OUT / "seeds.csv")])


if __name__ == "__main__":
    sys.exit(main())
