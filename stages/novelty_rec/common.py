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
