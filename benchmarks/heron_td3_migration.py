"""HERON's Pendulum results before and after TD3 moved onto the shared replay buffer and the
seeds dimension (issue 16): every method's policies of two `data/` trees, evaluated the way
`heron_report` evaluates them, side by side, with a Welch t interval of after - before.

    python benchmarks/heron_td3_migration.py BEFORE_DATA AFTER_DATA [--methods true_reward,heuristic]

BEFORE_DATA is a `data/` tree built by main's code before the change (data/heron/runs/
pendulum-<method>/seed<k>.pt and curve.parquet), AFTER_DATA one built by this branch from
the same params (scale cpu, seeds 0 1 2). Old checkpoints load through `actor_from_state`,
which reads the nn.Linear layout. For each method and seed: the true return of 10
deterministic evaluation episodes from seed 10000 + seed (heron_report's protocol), and the
mean true return of the last 10 training episodes (curve.parquet).

Why the numbers move at all: the new TD3 draws the same initial weights (tests/test_td3.py),
samples the same minibatch indices and takes the same actions given the same weights, but a
batched matmul (baddbmm) rounds differently from nn.Linear's addmm in the last bits on some
shapes, and 20k steps of RL amplify such differences into a different run; the reward
models of rlhf/heron are also drawn from torch's global RNG before, not after, TD3's
weights now. So "unchanged" means: within the seed-to-seed noise, which this prints.
"""

from __future__ import annotations

from pathlib import Path

METHODS = ("true_reward", "misweighted", "heuristic", "rlhf", "heron")


def collect(data: Path, p, methods) -> dict:
    import numpy as np
    import polars as pl
    import torch

    from stages.heron.method import evaluate_policy
    from stages.heron.params import task_sizes

    out = {}
    for m in methods:
        run = data / "heron" / "runs" / f"pendulum-{m}"
        curve = pl.read_parquet(run / "curve.parquet")
        ev, tr = [], []
        for s in p.seeds:
            ckpt = torch.load(run / f"seed{s}.pt", weights_only=False)
            ev.append(evaluate_policy(p, "pendulum", ckpt["actor"], 10_000 + s,
                                      task_sizes(p, "pendulum").eval_episodes)["return_true"])
            tr.append(float(curve.filter(pl.col("seed") == s)["return_true"].tail(10).mean()))
        out[m] = (np.array(ev), np.array(tr))
    return out


def main() -> None:
    import numpy as np
    import torch
    from scipy import stats

    from hrlzoo.pipeline.params import load_params
    from stages.heron.params import HeronParams

    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    a = ap.parse_args()
    methods = a.methods.split(",")
    if unknown := set(methods) - set(METHODS):
        raise SystemExit(f"--methods: unknown {sorted(unknown)} (have {', '.join(METHODS)})")
    torch.set_num_threads(1)
    before_dir, after_dir = a.before, a.after
    p = load_params("heron", HeronParams)
    before, after = collect(before_dir, p, methods), collect(after_dir, p, methods)
    print(f"HERON pendulum, scale {p.scale}, seeds {list(p.seeds)}: before = {before_dir}, after = {after_dir}")
    for k, name in ((0, "evaluation return (10 episodes, heron_report's protocol)"),
                    (1, "training return (last 10 episodes)")):
        print(name)
        print(f"  {'method':12s} {'before':>18s} {'after':>18s} {'after - before':>15s} {'95% Welch t':>22s}  p")
        for m in methods:
            x, b = after[m][k], before[m][k]
            t = stats.ttest_ind(x, b, equal_var=False)
            ci = t.confidence_interval(0.95)
            print(f"  {m:12s} {b.mean():9.1f} +- {b.std(ddof=1):6.1f} {x.mean():9.1f} +- {x.std(ddof=1):6.1f} "
                  f"{x.mean() - b.mean():15.1f} [{ci.low:9.1f}, {ci.high:9.1f}]  {t.pvalue:.2f}")
        print("  per seed (before -> after): " + "; ".join(
            f"{m} " + " ".join(f"{x:.0f}->{y:.0f}" for x, y in zip(before[m][k], after[m][k])) for m in methods))


if __name__ == "__main__":
    main()
