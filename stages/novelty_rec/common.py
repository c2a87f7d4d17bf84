"""What the novelty_rec stages share: paths, seeds' salts, the catalogue and the test users."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.novelty_rec import sim
from stages.novelty_rec.params import NoveltyRecParams, sizes

DATA = Path("data/novelty_rec")
SIM_DIR = DATA / "sim"            # users.parquet, items.parquet, logs.parquet
ENC_DIR = DATA / "encoders"       # encoders.pt, curve.parquet
BASE_DIR = DATA / "baselines"     # eval.parquet (popularity, greedy)
RUN_ROOT = DATA / "runs"          # <method>/: curve.parquet, eval.parquet
REPORT_DIR = Path("reports/novelty_rec")
SALT = {"users": 0, "behaviour": 1, "train": 2, "eval": 3, "test": 4}


def catalogue(p: NoveltyRecParams) -> sim.Catalogue:
    s = sizes(p)
    return sim.make_catalogue(p.sim, s.topics, s.items, p.catalogue_seed)


def test_users(p: NoveltyRecParams) -> sim.Users:
    s = sizes(p)
    return sim.draw_users(p.sim, s.topics, s.test_users, np.random.default_rng([p.test_seed, SALT["test"]]))


def make_sim(p: NoveltyRecParams, device="cpu") -> sim.UserSim:
    s = sizes(p)
    return sim.UserSim(p.sim, catalogue(p), s.session_len, s.sessions, device)


def seed_generator(*key: int):
    import torch

    return torch.Generator().manual_seed(int(np.random.default_rng(list(key)).integers(2**62)))


def eval_groups(p: NoveltyRecParams, n: int) -> list:
    """The test users' draws for every seed: seed s from (test_seed, eval, s), whatever the method."""
    return [(seed_generator(p.test_seed, SALT["eval"], int(s)), n) for s in p.seeds]


def eval_rows(method: str, p: NoveltyRecParams, users: sim.Users, rec: dict, env: sim.UserSim) -> list[dict]:
    """One row per (seed, user, session) of a test lifetime of S x U users."""
    U, S = len(users), len(p.seeds)
    breadth = (env.h.consumed.sum(1).numpy() - np.tile(users.known.sum(1), S)).astype(float)
    rows = []
    K = rec["clicks"].shape[0]
    for b in range(S * U):
        s, u = divmod(b, U)
        for k in range(K):
            rows.append({"method": method, "seed": int(p.seeds[s]), "user": u, "session": k,
                         "goal": float(rec["goal"][k, b]), "p": float(rec["p"][k, b]), "nu": float(users.nu[u]),
                         "clicks": float(rec["clicks"][k, b]), "novel": float(rec["novel"][k, b]),
                         "diversity": float(rec["diversity"][k, b]), "reward": float(rec["reward"][k, b]),
                         "breadth": float(breadth[b])})
    return rows
