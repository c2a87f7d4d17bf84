"""Stage heron_labels: HERON's decision-tree labels on random-policy transitions.

    python -m stages.heron.diagnose

For every seed and task, `label_pairs` transitions from uniformly random actions are
labelled pairwise (every unordered pair). Writes data/heron/labels/:
    levels.parquet      task, seed, level (0-based or "undecided"), pairs, fraction
    invariance.parquet  seed, task, base_task, labeller (heron | flat_sum), agreement:
                        the fraction of pairs whose label is the same on a task with a
                        rescaled factor as on its unscaled base task (HERON claims 1.0)
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.heron.params import HeronParams

OUT = "data/heron/labels"


def random_factors(p: HeronParams, task: str, seed: int, n: int):
    """(n, n_factors) factor vectors of the task's wrapper under uniform random actions."""
    import numpy as np

    from stages.heron.factors import make_env

    env = make_env(p.tasks[task], seed=seed)
    env.action_space.seed(seed)
    rows = []
    obs, _ = env.reset(seed=seed)
    while len(rows) < n:
        obs, _, term, trunc, info = env.step(env.action_space.sample())
        rows.append(info["factors"])
        if term or trunc:
            obs, _ = env.reset()
    env.close()
    return np.asarray(rows, dtype=np.float64)


def label_all(p: HeronParams, task: str, z):
    """Hierarchical and flat-sum labels (B x B, +1/-1/0) and deciding levels of every pair."""
    import torch

    from stages.heron.labels import flat_sum_labels, hierarchical_labels, margins

    t = p.tasks[task]
    zt = torch.as_tensor(z)
    pref, level = hierarchical_labels(zt, t.signs, t.ranking, margins(zt, t.sigma_mult))
    flat, _ = flat_sum_labels(zt, t.signs)
    return pref, level, flat


def body(ctx: Stage) -> None:
    """Label random-policy transitions; deciding levels and scale invariance."""
    import polars as pl
    import torch

    from hrlzoo.pipeline.stage import seed_everything

    p: HeronParams = ctx.params
    out = ctx.out(OUT)
    out.mkdir(parents=True)
    n = p.label_pairs
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)  # each unordered pair once
    levels, invariance = [], []
    bases = {t: b for t in p.tasks for b in p.tasks
             if p.tasks[t].env_id == p.tasks[b].env_id and t != b
             and any(s != 1 for s in p.tasks[t].factor_scale) and all(s == 1 for s in p.tasks[b].factor_scale)}
    for seed in p.seeds:
        seed_everything(seed)
        labelled = {}
        for task in p.tasks:
            z = random_factors(p, task, seed, n)
            pref, level, flat = label_all(p, task, z)
            labelled[task] = (pref[upper], flat[upper])
            lv = level[upper]
            total = int(upper.sum())
            for k in range(len(p.tasks[task].factors)):
                c = int((lv == k).sum())
                levels.append({"task": task, "seed": seed, "level": str(k), "pairs": c, "fraction": c / total})
            c = int((lv < 0).sum())
            levels.append({"task": task, "seed": seed, "level": "undecided", "pairs": c, "fraction": c / total})
        for task, base in sorted(bases.items()):
            for i, labeller in enumerate(("heron", "flat_sum")):
                same = (labelled[task][i] == labelled[base][i]).double().mean().item()
                invariance.append({"seed": seed, "task": task, "base_task": base,
                                   "labeller": labeller, "agreement": same})
        ctx.log(f"seed {seed}: labelled {n * (n - 1) // 2} pairs per task")
    pl.DataFrame(levels).write_parquet(out / "levels.parquet")
    pl.DataFrame(invariance, schema={"seed": pl.Int64, "task": pl.Utf8, "base_task": pl.Utf8,
                                     "labeller": pl.Utf8, "agreement": pl.Float64}
                 ).write_parquet(out / "invariance.parquet")


def main(argv: list[str] | None = None) -> int:
    return run_stage("heron_labels", "heron", HeronParams, body, argv, outputs=lambda a, p: [OUT])


if __name__ == "__main__":
    sys.exit(main())
