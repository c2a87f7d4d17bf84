"""Stage heron_train: TD3 on one task with one reward (method), for every seed.

    python -m stages.heron.train <task> <method>

Writes data/heron/runs/<task>-<method>/:
    seed<k>.pt        actor (and reward model) weights of seed k
    curve.parquet     one row per finished training episode: seed, step, return_true, return_train, ...
    levels.parquet    deciding-level histogram of the preference labels (preference methods)
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.heron.params import METHODS, HeronParams


CURVE_COLUMNS = {"seed": "Int64", "step": "Int64", "episode": "Int64", "return_true": "Float64",
                 "return_train": "Float64", "rm_loss": "Float64", "rm_acc": "Float64"}


def out_dir(task: str, method: str) -> str:
    return f"data/heron/runs/{task}-{method}"


def body(ctx: Stage) -> None:
    """Train one method on one task for every seed in params, all seeds in one batched run."""
    import polars as pl

    from hrlzoo.pipeline.artifacts import save_pt
    from stages.heron.method import train_runs

    p: HeronParams = ctx.params
    task, method = ctx.args.task, ctx.args.method
    out = ctx.out(out_dir(task, method))
    out.mkdir(parents=True)
    curves, levels = [], []
    ctx.log(f"{task} / {method} / seeds {list(p.seeds)} (one batched TD3)")
    results = train_runs(p, task, method, list(p.seeds), ctx.device, progress=True, guard=ctx.guard)
    for seed, res in zip(p.seeds, results):
        save_pt({"actor": res.actor_state, "reward_model": res.rm_state,
                 "task": task, "method": method, "seed": seed}, out / f"seed{seed}.pt")
        curves += [{"seed": seed, **row} for row in res.curve]
        if res.level_hist is not None:  # [level 0, ..., level n-1, undecided]
            names = [str(k) for k in range(len(res.level_hist) - 1)] + ["undecided"]
            levels += [{"seed": seed, "level": k, "pairs": int(n)} for k, n in zip(names, res.level_hist)]
    pl.DataFrame(curves, schema={k: getattr(pl, t) for k, t in CURVE_COLUMNS.items()}).write_parquet(out / "curve.parquet")
    levels_df = pl.DataFrame(levels, schema={"seed": pl.Int64, "level": pl.Utf8, "pairs": pl.Int64})
    levels_df.write_parquet(out / "levels.parquet")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("task", help="a task of params/heron.yaml (pendulum, pendulum_x100, mountaincar)")
        ap.add_argument("method", choices=METHODS, help="which reward TD3 learns from")

    def validate(args, p):
        if args.task not in p.tasks:
            return f"params/heron.yaml: tasks: no task '{args.task}' (have {sorted(p.tasks)})"
        return None

    return run_stage("heron_train", "heron", HeronParams, body, argv, add_args=add_args,
                     validate_args=validate, outputs=lambda a, p: [out_dir(a.task, a.method)])


if __name__ == "__main__":
    sys.exit(main())
