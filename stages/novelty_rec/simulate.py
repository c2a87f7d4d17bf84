"""Stage novelty_rec_simulate: the catalogue, the logged users and their interactions with the
behaviour policy (OUR READING of spec B §5.4 step 1).

    python -m stages.novelty_rec.simulate

`log_users` users (seed `log_seed`) live `sessions` sessions of `session_len` recommendations from
the logging policy (`sim.behaviour_items`: half uniform items, half items of a consumed topic).
Writes data/novelty_rec/sim/: items.parquet (item, topic, quality), users.parquet (user, nu,
theta, known: the ground truth, kept for diagnostics), logs.parquet (one row per recommendation:
user, session, step, item, topic, novel, click, p: the true session propensity, nu).
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.novelty_rec import common, sim
from stages.novelty_rec.params import NoveltyRecParams, sizes


def simulate_logs(p: NoveltyRecParams, progress=None) -> tuple[sim.Users, dict]:
    """The behaviour policy's interactions with `log_users` users, as columns of numpy arrays."""
    import torch

    s = sizes(p)
    users = sim.draw_users(p.sim, s.topics, s.log_users, np.random.default_rng([p.log_seed, common.SALT["users"]]))
    env = common.make_sim(p)
    gen = torch.Generator().manual_seed(int(np.random.default_rng([p.log_seed, common.SALT["behaviour"]]).integers(2**31)))
    env.reset(users, [(gen, len(users))])
    cols = {k: [] for k in ("user", "session", "step", "item", "topic", "novel", "click", "p", "nu")}
    uid = np.arange(len(users))
    for k in range(s.sessions):
        env.start_session()
        for t in range(s.session_len):
            items = sim.behaviour_items(env.h, env.cat, gen)
            out = env.step(items)
            for name, v in (("user", uid), ("session", np.full(len(uid), k)), ("step", np.full(len(uid), t)),
                            ("item", items.numpy()), ("topic", env.topic[items].numpy()),
                            ("novel", out["novel"].numpy()), ("click", out["click"].numpy()),
                            ("p", env.p.numpy()), ("nu", env.nu.numpy())):
                cols[name].append(v)
        env.end_session()
        if progress is not None:
            progress.update(1)
    return users, {k: np.concatenate(v) for k, v in cols.items()}


def body(ctx: Stage) -> None:
    """Simulate the logs of the behaviour policy; write the catalogue, the users and the logs."""
    import polars as pl

    p: NoveltyRecParams = ctx.params
    s = sizes(p)
    with ctx.progress(s.sessions, "logged sessions", unit="session") as bar:
        users, logs = simulate_logs(p, bar)
    cat = common.catalogue(p)
    out = ctx.out(common.SIM_DIR)
    out.mkdir(parents=True)
    pl.DataFrame({"item": np.arange(cat.items), "topic": cat.topic.numpy(), "quality": cat.quality.numpy()}
                 ).write_parquet(out / "items.parquet")
    pl.DataFrame({"user": np.arange(len(users)), "nu": users.nu, "theta": users.theta.tolist(),
                  "known": users.known.tolist()}).write_parquet(out / "users.parquet")
    df = pl.DataFrame(logs).sort("user", "session", "step")
    df.write_parquet(out / "logs.parquet")
    ctx.log(f"{len(df)} logged recommendations: click rate {df['click'].mean():.3f}, novel share "
            f"{df['novel'].mean():.3f}, novel click rate {df.filter(pl.col('novel'))['click'].mean():.3f}")


def main(argv: list[str] | None = None) -> int:
    return run_stage("novelty_rec_simulate", "novelty_rec", NoveltyRecParams, body, argv,
                     outputs=lambda a, p: [str(common.SIM_DIR)])


if __name__ == "__main__":
    sys.exit(main())
