"""Stage ota_evaluate: success rates on ogbench's five evaluation tasks of one maze, for every
method and seed, plus the oracle-subgoal mode and the value diagnostics.

    python -m stages.ota.evaluate <maze>

methods: gcbc, gcivl, hiql, ota_n<k> for every abstraction factor of params, and hiql_oracle:
HIQL's low level steered by the BFS oracle's subgoal (the next cell towards the goal; the goal
itself in the goal's cell) instead of its high level. All episodes of a task (seeds x episodes) run in
lockstep with one batched policy call per step.

Writes data/ota/eval/<maze>/:
    success.parquet      method, seed, task, episode, success, steps
    curve.parquet        method, step, seed, task, episode, success  (success over actor training)
    diagnostics.parquet  value (low | high_n<k>), seed, order_consistency, adv_sign_acc
    paths.parquet        value, seed, task, steps_to_goal, v  (values along the oracle paths)
    training.parquet     value, seed, step, value_loss, v_mean  (the values' training curves)
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.envs.pointmaze import MAZES
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.ota import common
from stages.ota.params import OTAParams, methods as all_methods, ota_methods, sizes


def _policies(p: OTAParams, maze: str, methods: list[str], geo, step: int | None = None):
    """method -> policy(obs [S, E, d], goals [S, E, d]) -> actions [S, E, a] (numpy); with
    `step`, every actor (the low level included) as it was after `step` gradient steps."""
    import torch

    from stages.ota import gcbc, hiql

    low_value, low = common.load_value(p, maze, "low"), common.load_actor(p, maze, "low", step=step)

    def oracle(o, g):
        w = geo.waypoints(o, g)
        return hiql.act_with_subgoal(low, low_value, torch.as_tensor(o), torch.as_tensor(w)).numpy()

    out = {}
    for m in methods:
        if m == "hiql_oracle":
            out[m] = oracle
            continue
        actor = common.load_actor(p, maze, m, step=step)
        if m in ("gcbc", "gcivl"):
            out[m] = lambda o, g, a=actor: gcbc.act(a, torch.as_tensor(o), torch.as_tensor(g)).numpy()
        else:
            out[m] = lambda o, g, h=actor: hiql.act(h, low, torch.as_tensor(o), torch.as_tensor(g)).numpy()
    return out


def _success_curve(ctx: Stage, p: OTAParams, maze: str, methods: list[str], geo) -> list[dict]:
    """Success over the actors' training: every method at each of `common.actor_checkpoints`
    (low and high levels after the same number of steps; values fully trained), on a cheap
    subset of `curve_episodes` episodes per task and seed, started apart from the final
    evaluation's episodes (reset seeds 100 + task)."""
    from hrlzoo.envs.pointmaze import evaluate_task, make_env

    S, E = len(p.seeds), sizes(p).eval.curve_episodes
    envs = [make_env(maze) for _ in range(S * E)]
    steps = common.actor_checkpoints(p)
    rows = []
    with ctx.progress(len(steps) * len(methods) * 5, f"{maze} success curves", unit="task") as bar:
        for step in steps:
            policies = _policies(p, maze, methods, geo, step=step)
            for m in methods:
                for task in range(1, 6):
                    r = evaluate_task(envs, task, S, policies[m], sizes(p).eval.max_steps, seed=100 + task)
                    rows += [{"method": m, "step": step, "seed": seed, "task": task, "episode": e,
                              "success": float(r.success[s, e])} for s, seed in enumerate(p.seeds) for e in range(E)]
                    bar.update(1)
    for env in envs:
        env.close()
    return rows


def body(ctx: Stage) -> None:
    """Evaluate every method on the maze's five tasks and diagnose its values."""
    import polars as pl

    from hrlzoo.envs.pointmaze import MazeGeometry, evaluate_task, make_env, oracle_path
    from stages.ota import diagnose

    p: OTAParams = ctx.params
    maze = ctx.args.maze
    methods = all_methods(p, maze)
    S, E = len(p.seeds), sizes(p).eval.episodes
    envs = [make_env(maze) for _ in range(S * E)]
    geo = MazeGeometry(envs[0].unwrapped)
    policies = _policies(p, maze, methods, geo)
    rows = []
    with ctx.progress(len(methods) * 5, f"{maze} evaluation", unit="task") as bar:
        for m in methods:
            for task in range(1, 6):
                r = evaluate_task(envs, task, S, policies[m], sizes(p).eval.max_steps, seed=task)
                for s, seed in enumerate(p.seeds):
                    rows += [{"method": m, "seed": seed, "task": task, "episode": e,
                              "success": float(r.success[s, e]), "steps": int(r.steps[s, e])} for e in range(E)]
                bar.update(1)
            ctx.log(f"{m}: success {np.mean([r['success'] for r in rows if r['method'] == m]):.3f}")
    for env in envs:
        env.close()
    curve = _success_curve(ctx, p, maze, methods, geo)

    # value diagnostics: HIQL's V^l and every OTA V^h evaluated here
    kinds = ["low"] + [f"high_n{m[5:]}" for m in ota_methods(p, maze)]
    paths = [oracle_path(maze, task) for task in range(1, 6)]
    data = common.load_data(p, maze)
    triples = diagnose.sign_triples(data, geo, common.rngs(p, "diag")[0], sizes(p).eval.diag_pairs, p.agent.subgoal_steps)
    diag_rows, path_rows = [], []
    for kind in kinds:
        value = common.load_value(p, maze, kind)
        sign_acc = diagnose.advantage_sign_accuracy(value, *triples)
        consistency = []
        for task, (states, goal) in enumerate(paths, start=1):
            v = diagnose.values(value, states, np.repeat(goal[None], len(states), 0))
            consistency.append(diagnose.order_consistency(v))
            left = len(states) - 1 - np.arange(len(states))
            for s, seed in enumerate(p.seeds):
                path_rows += [{"value": kind, "seed": seed, "task": task, "steps_to_goal": int(d), "v": float(x)}
                              for d, x in zip(left[::5], v[s, ::5])]
        consistency = np.mean(consistency, axis=0)
        for s, seed in enumerate(p.seeds):
            diag_rows.append({"value": kind, "seed": seed, "order_consistency": float(consistency[s]),
                              "adv_sign_acc": float(sign_acc[s])})
        ctx.log(f"{kind}: order consistency {consistency.mean():.3f}, advantage sign accuracy {sign_acc.mean():.3f}")

    training = pl.concat([pl.read_parquet(f"{common.value_dir(maze, k)}/curve.parquet").select(
        "value", "seed", "step", "value_loss", "v_mean") for k in ("low", "gcivl", "high")])

    out = ctx.out(common.eval_dir(maze))
    out.mkdir(parents=True)
    pl.DataFrame(rows).write_parquet(out / "success.parquet")
    pl.DataFrame(curve).write_parquet(out / "curve.parquet")
    training.write_parquet(out / "training.parquet")
    pl.DataFrame(diag_rows).write_parquet(out / "diagnostics.parquet")
    pl.DataFrame(path_rows).write_parquet(out / "paths.parquet")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("maze", choices=MAZES)

    return run_stage("ota_evaluate", "ota", OTAParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [common.eval_dir(a.maze)])


if __name__ == "__main__":
    sys.exit(main())
