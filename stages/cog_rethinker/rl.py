"""Stage cog_rl: RL from the weak base, every seed of each given method (spec_B 6.4 step 3).

    python -m stages.cog_rethinker.rl <group> <method>...

Each run starts from the base, draws `problems_per_step` new training problems per step (the
same sequence for every method of a seed) and runs `CogRethinker.step` with the method's
switches (DAPO and GRPO are the same loop with the hierarchy off). Every `eval_every` steps it
scores the greedy direct-template accuracy on the held-out `curve` problems, against the RL step
and the generated tokens so far (the compute-fair view). `group` names the output folder: the
methods are split over two stages so that Snakemake runs them side by side.

Writes data/cog_rethinker/rl/<group>/:
    <method>/seed<k>.pt  the policy after the last step
    log.parquet          method, seed, step, every statistic of the step (zero_frac, rescued, ...)
    curve.parquet        method, seed, step, generated_tokens, prompt_tokens, level, accuracy
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.cog_rethinker import common
from stages.cog_rethinker.params import CogParams, sizes


def curve_rows(model, tok, problems, cap: int, **key) -> list[dict]:
    acc = common.per_level(common.direct_accuracy(model, tok, problems, cap))
    return [{**key, "level": k, "accuracy": a} for k, a in acc.items()]


def run_one(ctx: Stage, method: str, seed: int, demos, curve, exclude, base_curve: list[dict]):
    """One RL run; returns (model, log rows, curve rows)."""
    import torch

    from stages.cog_rethinker.method import CogRethinker, make_config, seed_buffer

    p: CogParams = ctx.params
    s, mp = sizes(p).rl, p.methods[method]
    model, tok, _ = common.load_model(common.BASE_DIR / "base.pt", ctx.device)
    cfg = make_config(mp.algo, group_size=s.group_size, max_new_tokens=s.max_new_tokens, lr=p.rl.lr,
                      eps_low=p.rl.eps_low, eps_high=p.rl.eps_high, temperature=p.rl.temperature,
                      grad_clip=p.rl.grad_clip, grpo_kl=p.rl.grpo_kl, microbatch_rows=s.microbatch_rows)
    torch_seed = int(np.random.default_rng([seed, common.SALT["rl_torch"]]).integers(2**31))
    runner = CogRethinker(model, tok, mp, cfg, seed_buffer(demos, p.decomposition_values), rescue_samples=s.rescue_samples,
                          max_decomp_tokens=s.max_decomp_tokens, sft_lambda=mp.lam(p.rl.sft_lambda), n_demos=p.rl.n_demos,
                          seed=torch_seed, reference_rows=s.reference_rows)
    stream = common.ProblemStream(p, seed, exclude)
    logs, curves = [], [{**r, "method": method, "seed": seed} for r in base_curve]
    with ctx.progress(s.steps, f"{method} seed {seed}") as bar:
        for step in range(1, s.steps + 1):
            stats = runner.step(stream.take(s.problems_per_step))
            if "loss" in stats:
                ctx.guard(f"{method} seed {seed} loss", stats["loss"], step)
            logs.append({"method": method, "seed": seed, "step": step, **stats})
            if step % s.eval_every == 0 or step == s.steps:
                curves += curve_rows(model, tok, curve, s.max_new_tokens, method=method, seed=seed, step=step,
                                     generated_tokens=runner.generated_tokens, prompt_tokens=runner.prompt_tokens)
            bar.set_postfix(zero=f"{stats['zero_frac']:.2f}", acc=f"{stats['direct_acc']:.2f}", refresh=False)
            bar.update(1)
    last = [c["accuracy"] for c in curves if c["step"] == s.steps]
    ctx.log(f"{method} seed {seed}: curve accuracy {np.mean(last):.3f}, {runner.generated_tokens} generated tokens, "
            f"{runner.seconds:.0f}s ({runner.seconds / s.steps:.2f}s per step)")
    return model, tok, logs, curves


def body(ctx: Stage) -> None:
    """RL runs of the given methods, every seed."""
    p: CogParams = ctx.params
    s = sizes(p).rl
    demos = common.load_problems("demo")
    curve = common.load_problems("curve")
    exclude = common.held_out_exprs()
    base, tok, _ = common.load_model(common.BASE_DIR / "base.pt", ctx.device)
    base_curve = curve_rows(base, tok, curve, s.max_new_tokens, step=0, generated_tokens=0, prompt_tokens=0)
    out = ctx.out(common.rl_dir(ctx.args.group))
    out.mkdir(parents=True)
    logs, curves = [], []
    for method in ctx.args.methods:
        (out / method).mkdir()
        for seed in p.seeds:
            model, tok, log, curve_part = run_one(ctx, method, seed, demos, curve, exclude, base_curve)
            common.save_model(out / method / f"seed{seed}.pt", model, tok, method=method, seed=seed)
            logs += log
            curves += curve_part
    common.frame(logs).write_parquet(out / "log.parquet")
    common.frame(curves).select("method", "seed", "step", "generated_tokens", "prompt_tokens", "level",
                                "accuracy").write_parquet(out / "curve.parquet")


def validate_args(args, p: CogParams) -> str | None:
    unknown = [m for m in args.methods if m not in p.methods]
    if unknown:
        return f"method '{unknown[0]}' is not in params/cog_rethinker.yaml methods ({', '.join(p.methods)})"
    return None


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("group", help="name of the output folder data/cog_rethinker/rl/<group>")
        ap.add_argument("methods", nargs="+", help="methods of params/cog_rethinker.yaml to run")

    return run_stage("cog_rl", "cog_rethinker", CogParams, body, argv, add_args=add_args,
                     validate_args=validate_args, outputs=lambda a, p: [str(common.rl_dir(a.group))])


if __name__ == "__main__":
    sys.exit(main())
