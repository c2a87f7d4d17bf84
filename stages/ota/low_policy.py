"""Stage ota_low_policy: HIQL's low-level actor, AWR on the frozen V^l, for every seed.

    python -m stages.ota.low_policy <maze>

The same low level serves HIQL and OTA (OTA changes only the high level). Writes
data/ota/low/<maze>/: low.pt and curve.parquet.
"""

from __future__ import annotations

import sys

from hrlzoo.envs.pointmaze import MAZES
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.ota import common
from stages.ota.params import OTAParams, sizes


def body(ctx: Stage) -> None:
    """Train HIQL's low-level actor against the frozen low value V^l for every seed."""
    from hrlzoo.gcrl.dataset import low_actor_batch
    from stages.ota import hiql

    p: OTAParams = ctx.params
    maze = ctx.args.maze
    data = common.load_data(p, maze)
    cfg = common.hiql_config(p, maze)
    S, B, k = len(p.seeds), sizes(p).train.batch_size, p.agent.subgoal_steps
    value = common.load_value(p, maze, "low", ctx.device)
    common.init_torch(p, "low")
    actor = hiql.make_low_actor(cfg, S).to(ctx.device)
    gens = common.rngs(p, "low")

    def step():
        b = common.batch(lambda g: low_actor_batch(data, g, B, k), gens, ctx.device)
        return hiql.low_actor_loss(actor, value, b, cfg)

    out = ctx.out(common.low_dir(maze))
    out.mkdir(parents=True)
    common.write_curve(common.fit_actor(ctx, out, "low", actor, step), out / "curve.parquet", "method")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("maze", choices=MAZES)

    return run_stage("ota_low_policy", "ota", OTAParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [common.low_dir(a.maze)])


if __name__ == "__main__":
    sys.exit(main())
