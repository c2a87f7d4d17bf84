"""Stage hbpo_evaluate: every model on the held-out test problems of every level.

    python -m stages.hbpo.evaluate

Models: the SFT base ("base") and every method's seeds. Modes (paper §4 "Evaluation
Protocol"; sampling at temperature 0.6, top-p 0.95, one completion per problem):
- natural: the prompt ends at `<think>`; the model decides everything, a budget token included
  (the paper's "natural reasoning");
- b<N>: budget token N forced after `<think>` (the paper's efficiency prompting with "minimal
  tokens" becomes the smallest budget: a tiny model reads no instruction), for the methods of
  `eval.forced_budget_methods`.
The base is one model; its "seed" is the sampling seed of the evaluation (the same seeds as
the methods'), so its spread is the sampling noise only.

Writes data/hbpo/eval/completions.parquet: method, seed, mode, level, correct, n_tokens, style,
self_budget (the budget token a natural-mode completion starts with, 0 = none), finished.
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hbpo import common
from stages.hbpo.params import HBPOParams, all_budgets, sizes


def modes(p: HBPOParams, method: str) -> list[tuple[str, int | None]]:
    forced = [(f"b{b}", b) for b in all_budgets(p)] if method in sizes(p).eval.forced_budget_methods else []
    return [("natural", None)] + forced


def body(ctx: Stage) -> None:
    """Evaluate the base and every method's seeds, natural mode and forced budgets."""
    import polars as pl

    p: HBPOParams = ctx.params
    e = sizes(p).eval
    problems = common.test_problems(p)
    _, tok = common.load_base(ctx.device)
    jobs = [(m, seed) for m in ["base", *p.methods] for seed in p.seeds]
    rows = []
    with ctx.progress(sum(len(modes(p, m)) for m, _ in jobs), "evaluation", unit="mode") as bar:
        for method, seed in jobs:
            path = common.BASE_DIR / "model.pt" if method == "base" else common.rl_dir(method) / f"seed{seed}.pt"
            model = common.load_model(path, ctx.device)
            for i, (mode, budget) in enumerate(modes(p, method)):
                got = common.evaluate_model(model, tok, problems, budget=budget,
                                            seed=(seed * 100 + i) * 10 + common.SALT["eval"],
                                            max_new_tokens=e.max_new_tokens, temperature=e.temperature, top_p=e.top_p)
                rows += [{"method": method, "seed": seed, "mode": mode, **r} for r in got]
                bar.update(1)
            nat = [r for r in rows if r["method"] == method and r["seed"] == seed and r["mode"] == "natural"]
            ctx.log(f"{method} seed {seed} natural: accuracy {sum(r['correct'] for r in nat) / len(nat):.3f}, "
                    f"tokens {sum(r['n_tokens'] for r in nat) / len(nat):.1f}")
    out = ctx.out(common.EVAL_DIR)
    out.mkdir(parents=True)
    pl.DataFrame(rows).write_parquet(out / "completions.parquet")


def main(argv: list[str] | None = None) -> int:
    return run_stage("hbpo_evaluate", "hbpo", HBPOParams, body, argv, outputs=lambda a, p: [str(common.EVAL_DIR)])


if __name__ == "__main__":
    sys.exit(main())
