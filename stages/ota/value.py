"""Stage ota_value: train goal-conditioned values for every seed (IVL, twin heads, EMA target).

    python -m stages.ota.value <maze> <low|gcivl|high>

    low    HIQL's value V^l(s, phi([s; g])); phi is the subgoal space of both hierarchies
    gcivl  GCIVL's flat value V(s, g)
    high   OTA's option-aware values V^h, one per abstraction factor n of params
           (`abstraction_factors.<maze>`): options of up to n steps, targets by
           `agent.option_rule` (official: ota-v's sampler; hiql_reward: our earlier reading)

Writes data/ota/values/<maze>-<kind>/: <name>.pt per value (low.pt, gcivl.pt, high_n<k>.pt;
online network, seeds stacked) and curve.parquet (value, step, seed, value_loss, v_mean).
"""

from __future__ import annotations

import copy
import sys

from hrlzoo.envs.pointmaze import MAZES
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.ota import common
from stages.ota.params import VALUE_KINDS, OTAParams, sizes


def train_value(ctx: Stage, data, maze: str, name: str, n: int):
    """One value for every seed; n = 1 is HIQL's / GCIVL's, n > 1 OTA's option-aware V^h."""
    from hrlzoo.gcrl.dataset import value_batch
    from hrlzoo.nets.ensemble import ema_update
    from stages.ota import gcivl, hiql, ota

    p: OTAParams = ctx.params
    cfg = common.hiql_config(p, maze)
    S, B = len(p.seeds), sizes(p).train.batch_size
    common.init_torch(p, "value")
    value = (gcivl.make_value(cfg.obs_dim, cfg.hidden, S, cfg.layer_norm) if name == "gcivl"
             else hiql.make_value(cfg, S)).to(ctx.device)
    target = copy.deepcopy(value).requires_grad_(False)
    gens, gs = common.rngs(p, "value"), common.value_goals(p)
    loss = ota.high_value_loss if n > 1 else hiql.value_loss  # the same IVL loss, on options when n > 1
    rule = p.agent.option_rule if n > 1 else "hiql_reward"  # n = 1: HIQL's own batch

    def step():
        b = common.batch(lambda g: value_batch(data, g, B, gs, cfg.discount, option_len=n, rule=rule), gens, ctx.device)
        return loss(value, target, b, cfg)

    rows = common.train(ctx, f"{maze} {name} value", value, step, sizes(p).train.value_steps,
                        after_step=lambda: ema_update(target, value, cfg.tau))
    return value, [{"value": name, **r} for r in rows]


def body(ctx: Stage) -> None:
    """Train goal-conditioned values (HIQL's, GCIVL's or OTA's option-aware ones) for every seed."""
    p: OTAParams = ctx.params
    maze, kind = ctx.args.maze, ctx.args.kind
    data = common.load_data(p, maze)
    runs = ([(f"high_n{n}", n) for n in p.abstraction_factors[maze]] if kind == "high" else [(kind, 1)])
    out = ctx.out(common.value_dir(maze, kind))
    out.mkdir(parents=True)
    rows = []
    for name, n in runs:
        value, curve = train_value(ctx, data, maze, name, n)
        common.save_modules(out / f"{name}.pt", p, value=value)
        rows += curve
    common.write_curve(rows, out / "curve.parquet", "value")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("maze", choices=MAZES)
        ap.add_argument("kind", choices=VALUE_KINDS)

    return run_stage("ota_value", "ota", OTAParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [common.value_dir(a.maze, a.kind)])


if __name__ == "__main__":
    sys.exit(main())
