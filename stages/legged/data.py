"""Stage legged_data: the train and test tunnel banks and the planner's paths through them.

    python -m stages.legged.data

For every split, `train_per_cell` / `test_per_cell` tunnels of every (difficulty kind, goal
distance), each planned by the high level (stages/legged/planner.py) from the start to the far
goal. Writes data/legged/worlds/: train.npz and test.npz (floor, ceil [M, NX, NY], goal_x,
distance, kind, waypoints [M, K, 4], n_wp, path_ok) and plans.parquet (one row per tunnel:
path found, waypoints, path length, lowest planned height, largest planned roll).
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.legged import common
from stages.legged.params import LeggedParams, sizes


def body(ctx: Stage) -> None:
    """Generate and plan the tunnels of both splits."""
    import polars as pl

    p: LeggedParams = ctx.params
    s = sizes(p)
    out = ctx.out(common.DATA)
    out.mkdir(parents=True)
    rows = []
    cells = len(p.kinds) * len(p.distances)
    with ctx.progress(cells * (s.train_per_cell + s.test_per_cell), "plan tunnels", unit="tunnel") as bar:
        for split, n in (("train", s.train_per_cell), ("test", s.test_per_cell)):
            bank, r = common.build_bank(p, split, n, bar)
            np.savez_compressed(out / f"{split}.npz", **bank)
            rows += r
    df = pl.DataFrame(rows)
    df.write_parquet(out / "plans.parquet")
    for split in ("train", "test"):
        d = df.filter(pl.col("split") == split)
        ctx.log(f"{split}: {len(d)} tunnels, planner found a path in {d['path_found'].mean():.3f}")


def main(argv: list[str] | None = None) -> int:
    return run_stage("legged_data", "legged", LeggedParams, body, argv, outputs=lambda a, p: [str(common.DATA)])


if __name__ == "__main__":
    sys.exit(main())
