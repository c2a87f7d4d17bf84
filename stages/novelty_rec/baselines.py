"""Stage novelty_rec_baselines: the popularity and greedy-affinity recommenders on the test users
(OUR READING of spec B §5.5's baselines).

    python -m stages.novelty_rec.baselines

- popularity: the items ranked by their clicks in the logs; step t of every session shows the
  t-th most clicked item (not personalised; a session never repeats an item);
- greedy: the item of highest predicted click probability under the pretrained click model
  (stages/novelty_rec/encoders.py) given what the recommender has seen so far: myopic affinity.
Both are single models: their rows per seed are evaluation-sampling seeds (the users' draws of
seed s are those every trained method's seed s meets). Writes data/novelty_rec/baselines/eval.parquet.
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.novelty_rec import common, encoders
from stages.novelty_rec.common import eval_groups, eval_rows
from stages.novelty_rec.params import NoveltyRecParams, sizes

BASELINES = ("popularity", "greedy")


def lifetime(env, choose, p: NoveltyRecParams) -> dict:
    s = sizes(p)
    r = p.reward
    rec = {k: np.zeros((s.sessions, env.B), dtype=np.float32) for k in ("p", "clicks", "novel", "diversity", "reward")}
    rec["goal"] = np.full((s.sessions, env.B), np.nan, dtype=np.float32)
    for k in range(s.sessions):
        env.start_session()
        for t in range(s.session_len):
            out = env.step(choose(env, t))
            c, n, d = out["click"].float().numpy(), out["novel"].float().numpy(), out["diversity"].numpy()
            rec["clicks"][k] += c
            rec["novel"][k] += n
            rec["diversity"][k] += d
            rec["reward"][k] += c + r.novelty * n + r.diversity * d
        rec["p"][k] = env.p.numpy()
        env.end_session()
    return rec


def body(ctx: Stage) -> None:
    """Popularity and greedy affinity on the test users, every evaluation seed."""
    import polars as pl
    import torch

    p: NoveltyRecParams = ctx.params
    logs = pl.read_parquet(common.SIM_DIR / "logs.parquet")
    enc = encoders.load(common.ENC_DIR / "encoders.pt")
    cat = common.catalogue(p)
    clicks = np.bincount(logs.filter(pl.col("click"))["item"].to_numpy(), minlength=cat.items)
    ranked = torch.as_tensor(np.argsort(-clicks, kind="stable"))
    test = common.test_users(p)
    S = len(p.seeds)
    choosers = {"popularity": lambda env, t: ranked[t % len(ranked)].expand(env.B),
                "greedy": lambda env, t: enc.scores(env.h, cat).argmax(-1)}
    rows = []
    with ctx.progress(len(choosers), "baselines", unit="method") as bar:
        for name, choose in choosers.items():
            env = common.make_sim(p)
            env.reset(test.repeat(S), eval_groups(p, len(test)))
            rec = lifetime(env, choose, p)
            rows += eval_rows(name, p, test, rec, env)
            steps = sizes(p).sessions * sizes(p).session_len
            ctx.log(f"{name}: test ctr {rec['clicks'].sum() / (S * len(test) * steps):.3f}, novelty "
                    f"{rec['novel'].sum() / (S * len(test) * steps):.3f}")
            bar.update(1)
    out = ctx.out(common.BASE_DIR)
    out.mkdir(parents=True)
    pl.DataFrame(rows).write_parquet(out / "eval.parquet")


def main(argv: list[str] | None = None) -> int:
    return run_stage("novelty_rec_baselines", "novelty_rec", NoveltyRecParams, body, argv,
                     outputs=lambda a, p: [str(common.BASE_DIR)])


if __name__ == "__main__":
    sys.exit(main())
