"""Seconds per Cog-Rethinker RL step at the params' scale, per method, and the RL stages' time
that they project: what issue 14's 45-minute `cpu` rebuild needs.

    python benchmarks/cog_rl_step.py [--steps 4] [--methods cog_rethinker,dapo,...] [--threads 1]
    PYTHONPATH=/work/main python benchmarks/cog_rl_step.py ...     # another revision, the same run

Needs the cog_rethinker_data and cog_rethinker_sft outputs (data/cog_rethinker/{data,base}).
Each method starts from the base with its params (params/cog_rethinker.yaml at its `scale`),
runs one untimed warm-up step (first-backward imports), then `--steps` timed steps on seed 0's
problem stream, and prints this process's CPU seconds and the wall seconds per step (CPU time is
what the step costs when other jobs share the cores; on an otherwise idle core the two agree).
The projection multiplies each dvc.yaml RL stage's methods' CPU s/step by steps x seeds: the two
stages run side by side, one core each. Early steps stand for the run: in the 40-step cpu run of
2026-12-07 the share of zero-accuracy groups (which sets the rescue rollouts' cost) stayed at
0.54-0.56 per 10-step block.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--methods", default="")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch
    import yaml

    from hrlzoo.pipeline.params import load_params
    from stages.cog_rethinker import common
    from stages.cog_rethinker.method import CogRethinker, make_config, seed_buffer
    from stages.cog_rethinker.params import CogParams, sizes

    torch.set_num_threads(a.threads)
    p = load_params("cog_rethinker", CogParams)
    s = sizes(p).rl
    stages = {k: v["methods"].split() for k, v in
              yaml.safe_load(open("dvc.yaml"))["stages"]["cog_rethinker_rl"]["foreach"].items()}
    methods = a.methods.split(",") if a.methods else [m for ms in stages.values() for m in ms]
    demos, exclude = common.load_problems("demo"), common.held_out_exprs()
    print(f"scale {p.scale}: {s.problems_per_step} problems x G {s.group_size} per step, {s.steps} steps, "
          f"{len(p.seeds)} seeds; {a.threads} thread(s); {a.steps} timed steps per method")
    cpu = {}
    for method in methods:
        mp = p.methods[method]
        model, tok, _ = common.load_model(common.BASE_DIR / "base.pt")
        cfg = make_config(mp.algo, group_size=s.group_size, max_new_tokens=s.max_new_tokens, lr=p.rl.lr,
                          eps_low=p.rl.eps_low, eps_high=p.rl.eps_high, temperature=p.rl.temperature,
                          grad_clip=p.rl.grad_clip, grpo_kl=p.rl.grpo_kl, microbatch_rows=s.microbatch_rows)
        runner = CogRethinker(model, tok, mp, cfg, seed_buffer(demos, p.decomposition_values),
                              rescue_samples=s.rescue_samples, max_decomp_tokens=s.max_decomp_tokens,
                              sft_lambda=mp.lam(p.rl.sft_lambda), n_demos=p.rl.n_demos, seed=123)
        stream = common.ProblemStream(p, 0, exclude)
        problems = [stream.take(s.problems_per_step) for _ in range(a.steps + 1)]
        runner.step(problems[0])
        c0, w0 = time.process_time(), time.perf_counter()
        stats = [runner.step(q) for q in problems[1:]]
        cpu[method] = (time.process_time() - c0) / a.steps
        wall = (time.perf_counter() - w0) / a.steps
        zero = sum(st["zero_frac"] for st in stats) / a.steps
        print(f"{method:18s} {cpu[method]:6.3f} cpu s/step {wall:6.3f} wall s/step   zero-accuracy groups {zero:.2f}",
              flush=True)
    for name, ms in stages.items():
        if all(m in cpu for m in ms):
            total = sum(cpu[m] for m in ms) * s.steps * len(p.seeds)
            print(f"projected stage cog_rethinker_rl@{name}: {total / 60:5.1f} min of one core ({', '.join(ms)})")


if __name__ == "__main__":
    main()
