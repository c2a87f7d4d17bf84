"""What the MasHost stages share: paths, the test queries, evaluation of built graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.mashost import sim
from stages.mashost.params import MasHostParams, sizes

BASE_DIR = Path("data/mashost/baselines")   # eval.parquet, choice.json, queries.parquet
RUN_ROOT = Path("data/mashost/runs")        # <method>/: curve.parquet, eval.parquet
REPORT_DIR = Path("reports/mashost")
SALT = {"train": 0, "torch": 1, "eval": 2, "valid": 3, "test": 4}


def cells(p: MasHostParams) -> list[tuple[int, int]]:
    return [(f, h) for f in range(len(sim.FAMILIES)) for h in range(1, p.difficulties + 1)]


def test_queries(p: MasHostParams) -> tuple[np.ndarray, np.ndarray, list]:
    """(family [Q], difficulty [Q], Query objects): test_per_cell queries of every cell."""
    rng = np.random.default_rng([p.test_seed, SALT["test"]])
    fam, hh, qs = [], [], []
    for f, h in cells(p):
        for _ in range(sizes(p).test_per_cell):
            fam.append(f)
            hh.append(h)
            qs.append(sim.make_query(f, h, rng))
    return np.array(fam), np.array(hh), qs


def eval_rows(out: dict, family: np.ndarray, h: np.ndarray, method: str, seed: int) -> list[dict]:
    """One row per execution: method, seed, family, difficulty, correct, tokens, nodes, edges, irrational."""
    return [{"method": method, "seed": seed, "family": sim.FAMILIES[f], "difficulty": int(d), "correct": bool(c),
             "tokens": float(t), "agents": int(n), "edges": int(e), "irrational": int(i)}
            for f, d, c, t, n, e, i in zip(family, h, out["correct"], out["tokens"], out["nodes"], out["edges"],
                                          out["irrational"])]
