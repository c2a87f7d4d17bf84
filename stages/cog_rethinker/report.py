"""Stage cog_report: tables, figures and the claims' verdicts of Cog-Rethinker.

    python -m stages.cog_rethinker.report

Reads data/cog_rethinker/eval/ and writes reports/cog_rethinker/ (metrics.json, report.md,
curves/*.csv for `dvc plots`, figures/*.png).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.cog_rethinker import common
from stages.cog_rethinker.params import CogParams, sizes

OUT = Path("reports/cog_rethinker")
CLAIMS = Path("stages/cog_rethinker/claims.yaml")
TITLE = "Cog-Rethinker: hierarchical metacognitive RL (tiny GPT, verifiable arithmetic)"
METHOD_ORDER = ("base", "grpo", "dapo", "cog_rethinker", "lambda_0p3", "lambda_0p1", "no_decomposition",
                "no_reflection", "no_sft")
MAIN, BASELINE = "cog_rethinker", "dapo"

OUR_READING = [
    "The rollout hierarchy's order and trigger (zero direct accuracy -> decomposition -> still zero -> "
    "reflection) follows spec_B §6.2 (abstract and reviews); the prompts, the markers `<demo> <plan> "
    "<wrong> <fix>`, the sub-result notation `s1=..` and the one-op-per-line direct trace are ours.",
    "BM25 (rank-bm25's BM25Okapi, k1 1.5, b 0.75) over operator, operator-bigram and size keywords; ties "
    "go to the newest demo; one demo per decomposition prompt (`rl.n_demos`); the buffer starts from "
    "`demo_pool_per_level` generated worked examples per level and grows by one demo (the model's own "
    "correct decomposition) per problem the decomposition solves. Eviction: none.",
    "Reflection sees a previous wrong solution of the same problem: a wrong decomposition sample rewritten "
    "into direct lines when one is readable, else a well-formed wrong direct sample (else any direct "
    "sample); sample j of the group sees the j-th distinct one, cyclically.",
    "Decomposition lines state the values they combine (`s1=37+4=41;s2=41-8=33;`), a sub-problem per "
    "operation; `rewrite_to_direct` drops the names (`37+4=41;41-8=33;`).",
    "Every correct stage-2/3 sample is rewritten into the direct template and checked again by the verifier "
    "(only the final answer is checked, as the 0/1 reward does); distinct texts only; the SFT set is the "
    "current step's, with no replay of earlier steps.",
    "Loss: L = -J_DAPO + lambda L_SFT, one optimizer step per RL step, L_SFT the mean over pairs of "
    "each completion's mean NLL (spec_B §6.3's formula); lambda = `rl.sft_lambda`. When no direct group "
    "survives dynamic sampling, the step is lambda L_SFT alone.",
    "`no_sft`: lambda = 0, and the rescued solutions enter their (all-wrong) direct group as reward-1 samples "
    "in place of wrong ones, up to G/2, with the current policy's log-probs as the old ones (spec_B §6.3's "
    "open choice). With neither channel the hierarchy could not change the policy at all, and the ablation "
    "would be DAPO.",
]

DEVIATIONS = [
    "The paper fine-tunes Qwen2.5 / Llama-3.2 base models on math benchmarks; we train a "
    "0.8 M-parameter character GPT from scratch on integer arithmetic with exact verifiers. No number of "
    "the paper is compared with ours.",
    "The metacognitive skills are injected by our SFT data: the base is taught the decomposition and "
    "reflection templates on every level, but the direct template only on small k (`direct_sft_levels`). "
    "A tiny model has no in-context learning, so each template must be an SFT skill (spec_B §6.5). The "
    "experiment therefore partly measures distillation from the decomposition (and reflection) template "
    "into the direct one through the rewritten SFT targets, not a metacognition that emerges.",
    "The direct template's weakness on large k comes from the base's SFT coverage (no direct traces for "
    "k beyond `direct_sft_levels`), not from spec_B §6.5's compressed two-operations-per-line trace: the "
    "direct trace is the same one-op-per-line text that `rewrite_to_direct` produces, so the SFT targets "
    "are exactly the direct template's own format.",
    "Substrate (changed after the first `cpu` run): spec_B §6.5's problems are k = 2..8 operations (+ - *) on "
    "2-digit numbers. Our first version (1-digit operands, + - *, values within +-999, k = 2..6) gave a "
    "base with 0-8% greedy accuracy in every template at every level after 1500 SFT steps, so 7 of 8 "
    "claims were inconclusive. The problems are now `hrlzoo.lm.tasks.chain_level`: a two-digit number and "
    "k one-digit +/- steps, every value in 10..99, so every step line has the same width (the lead's "
    "measurement, LM_RECIPE: a 0.8 M GPT trained on direct traces of k = 1..8 reaches 100/88/68/45% at "
    "k = 1..4 after 600 steps). Levels k = 2..6 (spec: 2..8), easy = 2-3, hard = 5-6: the three templates together "
    "cost about twice the tokens of LM_RECIPE's direct-only corpus, and k = 7-8 would lengthen every trace "
    "again beyond the 20-minute budget.",
    "Two further measured changes for the base (pilots on 2 cores, 64 sequences per step, greedy accuracy on 30 "
    "problems per level): with spec_B's decomposition lines that name earlier results (`s2=s1-8=33`: the line "
    "must fetch the value of s1 and add in one hop) the base stayed at <= 13% (learned positions) and <= 27% "
    "(rotary) in every template and level after 800 steps; with the value written out (`s2=41-8=33`, "
    "`decomposition_values: true`) and rotary position embeddings (the decomposition prompt carries a "
    "demonstration of varying length in front of the solution, so a line's absolute place varies) it reached "
    "43/33% (direct, k = 2/3), 53% (decomposition, k = 2) and 60/40% (reflection, k = 2/4) after 1000 steps, "
    "still rising fast. LM_RECIPE's direct-only run used learned absolute positions.",
    "DAPO's dynamic sampling drops the groups whose rewards are all equal but does not refill the batch "
    "from more problems (DAPO samples until the batch is full): the cost of a step stays fixed. No "
    "overlong reward shaping (completions cut at the cap score 0).",
    "GRPO runs without its KL term (`rl.grpo_kl` = 0; DeepSeekMath uses 0.04) so that both baselines cost "
    "the same and only the loss differs: sequence-mean aggregation, symmetric clip 0.2, every group kept.",
    "Sizes (`cpu` scale, in Setup): tens of RL steps with 8 problems x 8 samples (spec_B §6.5: 60-100 "
    "steps of 16 x 8), one shared base for every seed (seeds vary the RL runs: sampling and problem "
    "order). The budget is the issue's: the whole `cpu` rebuild within 20 minutes on 2 cores. "
    "`scale: paper` runs spec_B §6.5's RL sizes on a larger model.",
    "The base must pass a gate before any RL (`sizes.<scale>.gate`, table above): without a contrast "
    "between the direct template (accurate on the taught small k, near zero on the hard k) and the "
    "decomposition template (well above zero on the hard k) the comparison cannot test the paper. "
    "The `cpu` bounds (direct >= 0.6 on the taught levels, <= 0.1 on the hard ones; decomposition >= 0.1 and "
    "reflection >= 0.05 on the hard ones) were fixed before the committed run but after the pilots: our first "
    "choice (0.7 / 0.15 / 0.25 / 0.15) was lowered when a 1000-step pilot base solved 3% of the hard levels by "
    "decomposition. The committed base meets the first choice except its decomposition bound (0.133 < 0.25).",
    "RL learning rate 1e-4 (`rl.lr`) for every method. The first `cpu` run used 3e-4 and every method, "
    "the baselines included, fell below the base it started from (test accuracy on the easy levels: base 1.00, "
    "DAPO 0.64, GRPO 0.29, Cog-Rethinker 0.13; hard levels 0.01-0.02 for all), so it compared collapses, not "
    "methods; a one-seed pilot at 1e-4 kept DAPO and Cog-Rethinker at the base's level. The claims and their "
    "margins were not changed.",
    "Generated tokens count every completion token of the training rollouts (all three templates); prompt "
    "tokens, which are longer for the decomposition (demos) and reflection prompts, are logged "
    "(`prompt_tokens`) but not part of the compute-fair budget.",
    "Not run: the strong-base control of spec_B §6.5 (a base taught the direct template on every k) and "
    "the `rescued_to_group` flag on top of SFT; the lambda sweep runs lambda = 0.1, 0.3 and 1 (spec_B §6.3).",
]

# ----------------------------------------------------------------------------- tables
TIMING = ("Timing of the `cpu` sizes (2 cores; 2026-12-07, issue 14's sizes: 5 seeds, 80 RL steps of 16 problems): "
          "the RL, evaluation and report stages took 27 min 11 s with `make repro PAPER=cog_rethinker` (the two RL "
          "stages side by side, one thread each: `main` 21:47, `more` 26:13; evaluation 38 s, report 6 s); the data "
          "(56 s) and the SFT of the base (18 min 14 s, 1800 steps, 2 threads; measured in the same sitting on a shared "
          "machine) were up to date, so a rebuild from nothing runs about 46 min, over issue 14's 45.")

DIAGNOSIS = """Our reading of the run committed on 2026-12-07 (`cpu` scale, 5 seeds, 80 RL steps of 16
problems at lr 1e-4; the tables above are that run). It was written after seeing it, so check it
still applies to another run:

- **The hierarchy works, and now it reaches the policy on k = 4.** About 55% of each step's
  problems have zero accuracy; Cog-Rethinker rescues about a fifth of the step's problems
  (2.2 by decomposition and 0.9 by reflection out of 16) and its demo buffer doubles (180 to
  359). At 80 steps the distilled solutions start to teach the direct template a length it
  never produced: k = 4 goes from 0.0 (base) to 0.10 (Cog-Rethinker), 0.19 (lambda 0.3), 0.22
  (no reflection) and 0.14 (no SFT, rescued solutions in the group), against 0.003 for DAPO.
  On the hard levels (k = 5-6) every method stays within 1-3%, though Cog-Rethinker's 3% is
  reliably above DAPO's 1.5% (`cog_gains_on_hard`).
- **At lambda = 1 the SFT term costs the easy levels what it gains on the hard ones.**
  Cog-Rethinker loses 7 points on k = 2-3 against DAPO (k = 3: 0.88 against 1.00), so its overall
  accuracy equals DAPO's. A lower weight keeps most of the gain and loses little: lambda = 0.3
  beats DAPO by 3.5 points overall (reproduced); lambda = 0.1 is too weak to show (inconclusive).
  Feeding the same rescued solutions into the DAPO group as reward-1 samples (`no_sft`) beats
  the SFT channel at lambda = 1 (`sft_channel_beats_group_injection`: not reproduced). Our reading:
  lambda = 1 on a handful of long, new-length sequences per step moves the shared weights more
  than the policy-gradient term does; the paper's lambda is for a 7B model with far more data
  per step.
- **The ablations do not separate at this size.** Without decomposition, or without reflection,
  Cog-Rethinker's accuracy is not lower (both intervals include 0; no reflection is 4 points
  higher on average): with the easy-level cost of lambda = 1 on every arm that has SFT, the
  components' contributions are smaller than the seed-to-seed spread.
- **Cost.** Cog-Rethinker generates 2.6 times DAPO's completion tokens and 3.8 times its prompt
  tokens; at DAPO's token budget (generated, or generated + prompt) it is below DAPO (both
  equal-token claims: not reproduced)."""


def order(df, col="method"):
    import polars as pl

    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    keys = [c for c in ("difficulty",) if c in df.columns]
    return df.with_columns(_o=pl.col(col).replace_strict(rank, default=99)).sort(keys + ["_o"]).drop("_o")


def with_total_tokens(df):
    """`total_tokens` = generated + prompt tokens of the training rollouts so far (every template)."""
    import polars as pl

    return df.with_columns(total_tokens=pl.col("generated_tokens") + pl.col("prompt_tokens"))


def budget_accuracy(curve, budget: float, tokens: str = "generated_tokens", name: str = "accuracy_at_budget"):
    """Per (method, seed): curve accuracy (mean over levels) interpolated at `budget` of the
    cumulative count `tokens` (generated_tokens, or total_tokens = generated + prompt)."""
    import polars as pl

    pts = curve.group_by("method", "seed", "step").agg(pl.col(tokens).first(),
                                                       pl.col("accuracy").mean()).sort("method", "seed", "step")
    rows = []
    for (m, s), part in pts.group_by("method", "seed", maintain_order=True):
        rows.append({"method": m, "seed": s, name: float(np.interp(
            budget, part[tokens].to_numpy(), part["accuracy"].to_numpy()))})
    return pl.DataFrame(rows)


def smallest_total(curve, tokens: str) -> float:
    """The smallest final count of `tokens` over all runs: the equal-compute budget."""
    import polars as pl

    return float(curve.group_by("method", "seed").agg(pl.col(tokens).max())[tokens].min())


def claims_table(p: CogParams, test, log, curve):
    """One row per (method, seed) with every claim metric, plus the cog_minus_dapo gain rows."""
    import polars as pl

    rl = test.filter(pl.col("method") != "base")
    diff = pl.when(pl.col("level").is_in(p.easy_levels)).then(pl.lit("easy")).when(
        pl.col("level").is_in(p.hard_levels)).then(pl.lit("hard")).otherwise(pl.lit("middle"))
    acc = rl.group_by("method", "seed").agg(accuracy=pl.col("correct").mean())
    by_diff = rl.with_columns(difficulty=diff).group_by("method", "seed", "difficulty").agg(a=pl.col("correct").mean())
    wide = by_diff.pivot("difficulty", index=["method", "seed"], values="a")
    acc = acc.join(wide.select("method", "seed", accuracy_easy="easy", accuracy_hard="hard"), on=["method", "seed"])
    curve = with_total_tokens(curve)
    budget = {"generated": smallest_total(curve, "generated_tokens"), "total": smallest_total(curve, "total_tokens")}
    acc = acc.join(budget_accuracy(curve, budget["generated"]), on=["method", "seed"])
    acc = acc.join(budget_accuracy(curve, budget["total"], "total_tokens", "accuracy_at_equal_total"),
                   on=["method", "seed"])
    z = log.group_by("method", "seed").agg(zero_frac_mean=pl.col("zero_frac").mean(),
                                           tokens=pl.col("generated_tokens").max().cast(pl.Float64),
                                           prompt_tokens=pl.col("prompt_tokens").max().cast(pl.Float64))
    z = z.with_columns(total_tokens=pl.col("tokens") + pl.col("prompt_tokens"))
    table = acc.join(z, on=["method", "seed"])
    gains = []
    for d in ("easy", "hard"):
        a = by_diff.filter((pl.col("difficulty") == d) & (pl.col("method") == MAIN)).select("seed", ma="a")
        b = by_diff.filter((pl.col("difficulty") == d) & (pl.col("method") == BASELINE)).select("seed", mb="a")
        gains.append(a.join(b, on="seed").select(pl.lit("cog_minus_dapo").alias("method"), "seed",
                                                 pl.lit(d).alias("difficulty"), gain=pl.col("ma") - pl.col("mb")))
    table = pl.concat([table, *gains], how="diagonal_relaxed").sort("method", "seed")
    return table, budget


# ----------------------------------------------------------------------------- figures
def figures(p: CogParams, test, log, curve, base_eval, sft_curve, folder: Path) -> list[str]:
    import polars as pl

    from hrlzoo.pipeline.claims import summarise
    from hrlzoo.pipeline.report import new_figure, plot_curves, plot_intervals, save_figure

    folder.mkdir(parents=True)
    names = []
    mean_curve = with_total_tokens(curve).group_by("method", "seed", "step").agg(
        pl.col("generated_tokens").first(), pl.col("total_tokens").first(), pl.col("accuracy").mean())
    plot_curves(mean_curve, x="step", y="accuracy", group="method", band="ci", path=folder / "accuracy_vs_step.png",
                title="Direct-template accuracy on held-out curve problems (all levels)", xlabel="RL step",
                ylabel="greedy accuracy")
    names.append("accuracy_vs_step.png")

    top = float(mean_curve["total_tokens"].max())
    grid = np.linspace(0.0, top, 21)
    rows = []
    for (m, s), part in mean_curve.sort("step").group_by("method", "seed", maintain_order=True):
        t, a = part["total_tokens"].to_numpy(), part["accuracy"].to_numpy()
        rows += [{"method": m, "seed": s, "tokens": float(g), "accuracy": float(np.interp(g, t, a))}
                 for g in grid if g <= t.max()]
    plot_curves(pl.DataFrame(rows), x="tokens", y="accuracy", group="method", band="ci",
                path=folder / "accuracy_vs_tokens.png", title="The same accuracy against training tokens, generated + prompt "
                "(compute-fair view)", xlabel="generated + prompt tokens (all templates)", ylabel="greedy accuracy")
    names.append("accuracy_vs_tokens.png")

    zero = log.sort("step").with_columns(zero_frac_smooth=pl.col("zero_frac").rolling_mean(5, min_samples=1)
                                         .over("method", "seed"))
    plot_curves(zero, x="step", y="zero_frac_smooth", group="method", band="ci", path=folder / "zero_fraction.png",
                title="Training problems with zero direct accuracy (running mean of 5 steps)", xlabel="RL step",
                ylabel="fraction of the step's problems")
    names.append("zero_fraction.png")

    per = summarise(test.filter(pl.col("method") != "base").group_by("method", "seed", "level")
                    .agg(pl.col("correct").mean().alias("accuracy")), by=["level", "method"], metrics=["accuracy"])
    plot_intervals(per, x="level", group="method", metric="accuracy", order=METHOD_ORDER, ylim=(-0.02, 1.05),
                   path=folder / "accuracy_per_level.png", ylabel="test accuracy (direct, greedy)",
                   title="Direct-template accuracy per level k after the last RL step")
    names.append("accuracy_per_level.png")

    fig, axes = new_figure(1, 2, size=(4.6, 3.4))
    for template in ("direct", "decomposition", "reflection"):
        part = base_eval.filter(pl.col("template") == template).sort("level")
        axes[0][0].plot(part["level"].to_numpy(), part["accuracy"].to_numpy(), marker="o", label=template)
    axes[0][0].set_xlabel("difficulty k")
    axes[0][0].set_ylabel("greedy accuracy")
    axes[0][0].set_title("The weak base, per template", fontsize=10)
    axes[0][0].legend(fontsize=8, loc="best")
    axes[0][0].grid(alpha=0.3)
    axes[0][1].plot(sft_curve["step"].to_numpy(), sft_curve["loss"].to_numpy(), lw=1)
    axes[0][1].set_xlabel("SFT step")
    axes[0][1].set_ylabel("completion NLL")
    axes[0][1].set_yscale("log")
    axes[0][1].set_title("SFT loss of the base", fontsize=10)
    axes[0][1].grid(alpha=0.3)
    save_figure(fig, folder / "base.png")
    names.append("base.png")

    resc = log.filter(pl.col("method") == MAIN)
    if resc.height:
        plot_curves(resc.with_columns(decomposition=pl.col("rescued_decomposition"), reflection=pl.col("rescued_reflection"))
                    .unpivot(["decomposition", "reflection"], index=["seed", "step"], variable_name="stage",
                             value_name="rescued"), x="step", y="rescued", group="stage",
                    path=folder / "rescues.png", title="Cog-Rethinker: zero-accuracy problems rescued per step, by stage",
                    xlabel="RL step", ylabel="problems")
        names.append("rescues.png")
    return names


# ----------------------------------------------------------------------------- the report
def body(ctx: Stage) -> None:
    """Tables, figures and the claims' verdicts."""
    import polars as pl

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, markdown_table, metrics_dict, report_md_text,
                                        summary_md, write_seeds_csv)

    p: CogParams = ctx.params
    s = sizes(p)
    ev = common.EVAL_DIR
    test, log, curve = (pl.read_parquet(ev / f"{n}.parquet") for n in ("test", "log", "curve"))
    base_eval, sft_curve = pl.read_parquet(ev / "base_eval.parquet"), pl.read_parquet(ev / "sft_curve.parquet")
    gate = json.loads((ev / "gate.json").read_text())
    n_params = gate["parameters"]
    table, budget = claims_table(p, test, log, curve)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, table, seeds=p.seeds)

    metrics = ["accuracy", "accuracy_easy", "accuracy_hard", "accuracy_at_budget", "accuracy_at_equal_total",
               "zero_frac_mean"]
    runs = table.filter(pl.col("method") != "cog_minus_dapo")
    main = order(summarise(runs, by=["method"], metrics=metrics))
    cost = order(summarise(runs, by=["method"], metrics=["tokens", "prompt_tokens", "total_tokens"]))
    gain = summarise(table.filter(pl.col("method") == "cog_minus_dapo"), by=["method", "difficulty"], metrics=["gain"])
    summary = pl.concat([main, cost, gain.drop("difficulty").with_columns(
        metric=pl.concat_str(pl.lit("gain_"), gain["difficulty"]))], how="diagonal_relaxed")

    base_acc = test.filter(pl.col("method") == "base")
    per_level = order(test.group_by("method", "level").agg(pl.col("correct").mean().round(3))
                      .pivot("level", index="method", values="correct", sort_columns=True)
                      .rename(lambda c: f"k={c}" if c.isdigit() else c))
    base_tbl = (pl.read_parquet(ev / "base_eval.parquet").with_columns(pl.col("accuracy").round(3))
                .pivot("level", index="template", values="accuracy", sort_columns=True)
                .rename(lambda c: f"k={c}" if c.isdigit() else c))
    gate_tbl = pl.DataFrame([{"check": c["check"], "base": round(c["value"], 3), "bound": f"{c['bound']} {c['limit']}",
                              "holds": "yes" if c["ok"] else "no"} for c in gate["checks"]])
    hier = order(log.group_by("method").agg(
        pl.col("zero_frac").mean().round(3).alias("zero-accuracy problems / step"),
        pl.col("rescued_frac").mean().round(3).alias("rescued (fraction of the step's problems)"),
        pl.col("rescued_decomposition").mean().round(2).alias("problems rescued by decomposition / step"),
        pl.col("rescued_reflection").mean().round(2).alias("by reflection / step"),
        pl.col("sft_examples").mean().round(2).alias("SFT pairs / step"),
        pl.col("utilisation").mean().round(3).alias("utilisation"),
        pl.col("buffer").max().alias("demo buffer at the end (max over seeds)"),
        (pl.col("unrewritable").sum() / pl.col("seed").n_unique()).round(1).alias("correct but not rewritable / run")))

    curves = ctx.out(OUT / "curves")
    curves.mkdir(parents=True)
    (curve.group_by("method", "seed", "step").agg(pl.col("accuracy").mean()).group_by("method", "step")
     .agg(pl.col("accuracy").mean()).pivot("method", index="step", values="accuracy", sort_columns=True).sort("step")
     .write_csv(curves / "accuracy_vs_step.csv", float_precision=4))
    (log.group_by("method", "step").agg(pl.col("zero_frac").mean()).pivot("method", index="step", values="zero_frac",
                                                                          sort_columns=True).sort("step")
     .write_csv(curves / "zero_fraction.csv", float_precision=4))
    figs = figures(p, test, log, curve, base_eval, sft_curve, ctx.out(OUT / "figures"))
    extra = {"title": TITLE, "token_budget": budget,
             "base": {"accuracy": float(base_acc["correct"].mean()) if base_acc.height else None}}
    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict("cog_rethinker", p.scale, summary, verdicts, extra)))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), table)

    m, d, r = s.model, s.data, s.rl
    setup = (
        f"Scale `{p.scale}`, RL seeds {p.seeds} (one shared base; a seed fixes the run's sampling stream and its "
        f"sequence of training problems, the same for every method). Problems: levels k = {p.levels} operations "
        f"(+ or -) chained on a two-digit first number with one-digit operands 1-9 (`chain_level`), every "
        f"intermediate value in {p.value_range[0]}..{p.value_range[1]} (e.g. `37+4-8+2`, solved left to right "
        f"`37+4=41;41-8=33;33+2=35`); every training problem is new and none is held out. Model: "
        f"{m.n_layer}-layer GPT, d = {m.d_model}, {m.n_head} heads, {'rotary' if m.rotary else 'learned'} "
        f"positions, {n_params} parameters, character tokens. Base SFT: {d.sft_per_level} examples per level and template "
        f"(direct template on k in {p.direct_sft_levels} only; decomposition with {p.rl.n_demos} BM25 demo and "
        f"reflection on every level), {s.sft.steps} steps x {s.sft.batch_size}. RL: {r.steps} steps x "
        f"{r.problems_per_step} problems x G = {r.group_size} direct samples, {r.rescue_samples} samples per "
        f"problem in each rescue stage, lr {p.rl.lr}, lambda {p.rl.sft_lambda}, temperature {p.rl.temperature}, "
        f"caps {r.max_new_tokens} / {r.max_decomp_tokens} (decomposition) new tokens. Evaluation: greedy "
        f"direct template `Q:<expr><think>` on {d.test_per_level} test problems per level after the last step, "
        f"and on {d.curve_per_level} curve problems per level every {r.eval_every} steps. Equal tokens: every "
        f"run's curve accuracy interpolated at {budget['generated']:.0f} generated training tokens "
        f"(`accuracy_at_budget`) and at {budget['total']:.0f} generated + prompt tokens (`accuracy_at_equal_total`), "
        f"each the smallest total of any run. "
        f"Easy levels {p.easy_levels}, hard levels {p.hard_levels}. Mean over seeds with the 95% t interval (per-seed "
        f"values: `seeds.csv`). The claims (`claims.yaml`: margin 0, since the paper's numbers are unknown) are "
        f"those fixed before the first run, except the two that issue 12 re-encoded (marked post-hoc); the "
        f"change of substrate did not change them.")
    methods_text = (
        "- `dapo`: DAPO on the direct template (token-mean, clip 0.2 / 0.28, groups with all-equal rewards "
        "dropped, no KL).\n- `grpo`: GRPO (sequence-mean, clip 0.2, every group).\n- `cog_rethinker`: DAPO + "
        "the rollout hierarchy (decomposition with BM25 demos, then reflection, on zero-accuracy problems) + "
        "lambda L_SFT on the rescued solutions rewritten into the direct template.\n- `no_decomposition`, "
        "`no_reflection`: Cog-Rethinker without that stage.\n- `no_sft`: Cog-Rethinker with lambda = 0; the "
        "rescued solutions enter their direct group as reward-1 samples instead (see 'Our reading').\n- `base`: "
        "the SFT base before RL.")
    sections = [
        ("Setup", setup),
        ("Methods", methods_text),
        ("The weak base: greedy accuracy per template (base_eval problems)", markdown_table(base_tbl)
         + f"\n\nDirect-template test accuracy of the base: {float(base_acc['correct'].mean()):.3f}. "
         "The gate it passed before any RL (`sizes.<scale>.gate`):\n\n" + markdown_table(gate_tbl)),
        ("Results", "Direct-template accuracy and the zero-accuracy fraction:\n\n" + summary_md(main)
         + "\n\nCost per run (generated and prompt tokens of the training rollouts, all templates):\n\n"
         + summary_md(cost) + "\n\nCog-Rethinker minus DAPO, paired by seed:\n\n" + summary_md(gain)),
        ("Test accuracy per level (mean over seeds)", markdown_table(per_level)),
        ("The hierarchy at work (means over steps and seeds)", markdown_table(hier)
         + "\n\n`utilisation`: fraction of direct groups whose rewards are not all equal (a non-zero advantage)."),
        *claims_sections(claims, verdicts, DIAGNOSIS),
        ("Figures", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("Published numbers", "None shown: the paper's numbers (nine math benchmarks on Qwen2.5 / Llama-3.2) could "
         "not be read from a primary source (spec_B §6.2 marks them [UNVERIFIED]), and our substrate is not theirs."),
        ("Our reading (no official code)", "\n".join(f"- {x}" for x in OUR_READING)),
        ("Deviations from the paper", "\n".join(f"- {x}" for x in DEVIATIONS)),
        ("Reproduce", "```\nmake repro PAPER=cog_rethinker      # or: dvc repro cog_rethinker_report\n"
         "snakemake --cores 2 reports/cog_rethinker/metrics.json\n```\n\n" + TIMING),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


def main(argv: list[str] | None = None) -> int:
    return run_stage("cog_report", "cog_rethinker", CogParams, body, argv, outputs=lambda a, p: [
        str(OUT / "curves"), str(OUT / "figures"), str(OUT / "metrics.json"), str(OUT / "report.md"),
        str(OUT / "seeds.csv")])


if __name__ == "__main__":
    sys.exit(main())
