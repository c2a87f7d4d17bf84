"""Stage cog_evaluate: greedy direct-template accuracy of the base and of every RL run on the
held-out test problems, per difficulty level (spec_B 6.4 step 4), and the runs' logs and
curves gathered in one place.

    python -m stages.cog_rethinker.evaluate <group>...

Writes data/cog_rethinker/eval/:
    test.parquet       method, seed, level, correct, tokens, well_formed (one row per problem;
                       the base as method "base", seed -1)
    log.parquet        every RL step of every run (from the rl stages)
    curve.parquet      held-out accuracy vs step and generated tokens (from the rl stages)
    base_eval.parquet  the base per template (from the sft stage)
    sft_curve.parquet  the base's SFT loss
    gate.json          the base's size and gate (from the sft stage)
"""

from __future__ import annotations

import shutil
import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.cog_rethinker import common
from stages.cog_rethinker.params import CogParams, sizes


def body(ctx: Stage) -> None:
    """Score the base and every RL run on the test problems; gather logs and curves."""
    import polars as pl

    p: CogParams = ctx.params
    cap = sizes(p).rl.max_new_tokens
    test = common.load_problems("test")
    rows = []

    def score(path, method, seed):
        model, tok, _ = common.load_model(path, ctx.device)
        part = common.direct_accuracy(model, tok, test, cap)
        rows.extend({"method": method, "seed": seed, **r} for r in part)
        return sum(r["correct"] for r in part) / len(part)

    runs = [(common.BASE_DIR / "base.pt", "base", -1)]
    for group in ctx.args.groups:
        for folder in sorted(d for d in common.rl_dir(group).iterdir() if d.is_dir()):
            runs += [(common.rl_dir(group) / folder.name / f"seed{seed}.pt", folder.name, seed) for seed in p.seeds]
    with ctx.progress(len(runs), "test accuracy", unit="model") as bar:
        for path, method, seed in runs:
            acc = score(path, method, seed)
            ctx.log(f"{method} seed {seed}: test accuracy {acc:.3f}")
            bar.update(1)

    out = ctx.out(common.EVAL_DIR)
    out.mkdir(parents=True)
    common.frame(rows).write_parquet(out / "test.parquet")
    for name in ("log", "curve"):
        pl.concat([pl.read_parquet(common.rl_dir(g) / f"{name}.parquet") for g in ctx.args.groups],
                  how="diagonal_relaxed").write_parquet(out / f"{name}.parquet")
    for name in ("base_eval.parquet", "sft_curve.parquet", "gate.json"):
        shutil.copyfile(common.BASE_DIR / name, out / name)


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("groups", nargs="+", help="rl stage folders data/cog_rethinker/rl/<group>")

    return run_stage("cog_evaluate", "cog_rethinker", CogParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [str(common.EVAL_DIR)])


if __name__ == "__main__":
    sys.exit(main())
