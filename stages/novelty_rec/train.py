"""Stage novelty_rec_train: train one method (the hierarchical agent, an ablation, a flat
baseline or the oracle; stages/novelty_rec/agent.py) for every seed at once, then evaluate it
on the test users (OUR READING of spec B §5.4 steps 3-5).

    python -m stages.novelty_rec.train <method>   # hrl | no_static | no_dynamic | oracle | flat | flat_engagement

Each iteration: `users_per_seed` fresh users per seed (seed s's users and clicks from its own
generators) live a whole lifetime (`sessions` x `session_len` recommendations) under the
current policies; then one PPO update of each level. The S seeds are S networks in one batched
tensor (hrlzoo/nets/ensemble.py through hrlzoo/algos/ppo.py). Test: the same `test_users` for
every seed and method, the policies sampling, the users' draws from (test_seed, seed).
Writes data/novelty_rec/runs/<method>/: curve.parquet (seed, iteration, user_steps, ctr,
novelty, reward) and eval.parquet (one row per seed, test user and session: goal, true p and
nu, clicks, novel items, diversity, reward, breadth = topics gained over the lifetime).
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.novelty_rec import agent as ag
from stages.novelty_rec import common, encoders, sim
from stages.novelty_rec.common import eval_groups, eval_rows, seed_generator
from stages.novelty_rec.params import METHODS, NoveltyRecParams, sizes


def body(ctx: Stage) -> None:
    """Train one method for every seed (batched); evaluate it on the test users."""
    import polars as pl

    p: NoveltyRecParams = ctx.params
    s = sizes(p)
    method = ctx.args.method
    enc = encoders.load(common.ENC_DIR / "encoders.pt")
    N, S = s.users_per_seed, len(p.seeds)
    agent = ag.Agent(p, method, p.seeds, N)
    env = common.make_sim(p)
    steps = s.sessions * s.session_len
    curve = []
    with ctx.progress(s.iterations, f"{method} {S} seeds", unit="iter") as bar:
        for it in range(1, s.iterations + 1):
            users = sim.Users.cat([sim.draw_users(p.sim, s.topics, N, np.random.default_rng(
                [int(seed), common.SALT["train"], it])) for seed in p.seeds])
            env.reset(users, [(seed_generator(int(seed), common.SALT["train"], it), N) for seed in p.seeds])
            ro = ag.lifetime(agent, env, enc, record=True)
            st = ag.update(agent, ro)
            for k, v in st.items():
                ctx.guard(f"{method} {k}", v, it)
            rec = ro["record"]
            for i, seed in enumerate(p.seeds):
                sl = slice(i * N, (i + 1) * N)
                curve.append({"seed": int(seed), "iteration": it, "user_steps": it * N * steps,
                              "ctr": float(rec["clicks"][:, sl].sum() / (N * steps)),
                              "novelty": float(rec["novel"][:, sl].sum() / (N * steps)),
                              "reward": float(rec["reward"][:, sl].sum() / (N * steps)),
                              "low_entropy": st["low_entropy"]})
            bar.update(1)
    test = common.test_users(p)
    env.reset(test.repeat(S), eval_groups(p, len(test)))
    # the test lifetimes: a fresh Agent view with the test batch size (same networks)
    rec = ag.lifetime(agent, env, enc, record=True)["record"]
    rows = eval_rows(method, p, test, rec, env)
    out = ctx.out(common.RUN_ROOT / method)
    out.mkdir(parents=True)
    pl.DataFrame(curve).write_parquet(out / "curve.parquet")
    ev = pl.DataFrame(rows)
    ev.write_parquet(out / "eval.parquet")
    per = ev.group_by("seed").agg((pl.col("clicks").sum() / (len(test) * steps)).alias("ctr"),
                                  (pl.col("novel").sum() / (len(test) * steps)).alias("novelty")).sort("seed")
    ctx.log(f"{method}: test ctr {per['ctr'].round(3).to_list()}, novelty {per['novelty'].round(3).to_list()}; "
            f"last train ctr {curve[-1]['ctr']:.3f}")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("method", choices=METHODS)

    def validate_args(a, p):
        return None if a.method in p.methods else f"method '{a.method}': not in params methods"

    return run_stage("novelty_rec_train", "novelty_rec", NoveltyRecParams, body, argv, add_args=add_args,
                     validate_args=validate_args, outputs=lambda a, p: [str(common.RUN_ROOT / a.method)])


if __name__ == "__main__":
    sys.exit(main())
