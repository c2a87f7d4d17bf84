"""Stage ota_high_policy: the high-level actors of one maze (subgoal representations, AWR), for
every seed: HIQL's (advantage from V^l) and OTA's for every abstraction factor n (advantage from
V^h with that n).

    python -m stages.ota.high_policy <maze>

Targets are always phi([s_t; s_j]) from V^l, the space the low actor reads. Writes
data/ota/high/<maze>/: hiql.pt, ota_n<k>.pt and curve.parquet.
"""

from __future__ import annotations

import sys

from hrlzoo.envs.pointmaze import MAZES
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.ota import common
from stages.ota.params import OTAParams, ota_methods, sizes


def body(ctx: Stage) -> None:
    """Train HIQL's and OTA's high-level actors against frozen values for every seed."""
    from hrlzoo.gcrl.dataset import high_actor_batch
    from stages.ota import hiql, ota

    p: OTAParams = ctx.params
    maze = ctx.args.maze
    data = common.load_data(p, maze)
    cfg = common.hiql_config(p, maze)
    S, B, k = len(p.seeds), sizes(p).train.batch_size, p.agent.subgoal_steps
    low_value = common.load_value(p, maze, "low", ctx.device)
    out = ctx.out(common.high_dir(maze))
    out.mkdir(parents=True)
    rows = []
    for method in ["hiql", *ota_methods(p, maze)]:
        high_value = low_value if method == "hiql" else common.load_value(p, maze, f"high_n{method[5:]}", ctx.device)
        common.init_torch(p, "high")
        actor = hiql.make_high_actor(cfg, S).to(ctx.device)
        gens = common.rngs(p, "high")

        def step():
            b = common.batch(lambda g: high_actor_batch(data, g, B, k, p.agent.actor_p_rand, False, cfg.discount),
                             gens, ctx.device)
            if method == "hiql":
                return hiql.high_actor_loss(actor, low_value, low_value, b, cfg.high_alpha)
            return ota.high_actor_loss(actor, high_value, low_value, b, cfg)

        rows += common.fit_actor(ctx, out, method, actor, step)
    common.write_curve(rows, out / "curve.parquet", "method")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("maze", choices=MAZES)

    return run_stage("ota_high_policy", "ota", OTAParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [common.high_dir(a.maze)])


if __name__ == "__main__":
    sys.exit(main())
