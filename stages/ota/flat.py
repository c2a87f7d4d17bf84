"""Stage ota_flat: the flat (one-level) baseline actors of one maze, for every seed.

    python -m stages.ota.flat <maze>

    gcbc   goal-conditioned behaviour cloning (no value)
    gcivl  AWR on the frozen GCIVL value (stage ota_value <maze> gcivl)

Writes data/ota/flat/<maze>/: gcbc.pt, gcivl.pt and curve.parquet.
"""

from __future__ import annotations

import sys

from hrlzoo.envs.pointmaze import MAZES
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.ota import common
from stages.ota.params import FLAT_METHODS, OTAParams, sizes


def body(ctx: Stage) -> None:
    """Train the flat goal-conditioned actors (GCBC, GCIVL) for every seed."""
    from hrlzoo.gcrl.dataset import actor_batch
    from stages.ota import gcbc, gcivl

    p: OTAParams = ctx.params
    maze = ctx.args.maze
    data = common.load_data(p, maze)
    cfg = common.hiql_config(p, maze)
    S, B = len(p.seeds), sizes(p).train.batch_size
    value = common.load_value(p, maze, "gcivl", ctx.device)
    out = ctx.out(common.flat_dir(maze))
    out.mkdir(parents=True)
    rows = []
    for method in FLAT_METHODS:
        common.init_torch(p, "flat")
        actor = gcbc.make_actor(cfg.obs_dim, cfg.action_dim, cfg.hidden, S).to(ctx.device)
        gens, gs = common.rngs(p, "flat"), common.actor_goals(p)

        def step():
            b = common.batch(lambda g: actor_batch(data, g, B, gs, cfg.discount), gens, ctx.device)
            if method == "gcbc":
                return gcbc.actor_loss(actor, b)
            return gcivl.actor_loss(actor, value, b, p.agent.gcivl_alpha)

        rows += common.fit_actor(ctx, out, method, actor, step)
    common.write_curve(rows, out / "curve.parquet", "method")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("maze", choices=MAZES)

    return run_stage("ota_flat", "ota", OTAParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [common.flat_dir(a.maze)])


if __name__ == "__main__":
    sys.exit(main())
