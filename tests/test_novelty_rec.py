"""Novelty-seeking recommender (our reading): the user simulator's rules, the replay of the logs,
the agent's wiring, and the stages at smoke scale (same bytes twice, every claim in the report)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    from hrlzoo.pipeline.params import load_params
    from stages.novelty_rec.params import NoveltyRecParams

    return load_params("novelty_rec", NoveltyRecParams, root=ROOT)


def one_user_sim(params, nu, theta, known, sessions=2, session_len=5):
    from stages.novelty_rec import sim

    K = len(theta)
    cat = sim.make_catalogue(params.sim, K, 4 * K, 0)
    env = sim.UserSim(params.sim, cat, session_len, sessions)
    B = 20000
    users = sim.Users(np.full(B, nu), np.tile(theta, (B, 1)), np.tile(known, (B, 1)))
    env.reset(users, [(torch.Generator().manual_seed(0), B)])
    return env, cat


def test_click_probability_follows_the_model(params):
    """The empirical click rate of a known and of a novel item matches the formula of sim.py."""
    sp = params.sim
    theta = np.array([0.6, 0.3, 0.1, 0.0])
    known = np.array([True, False, False, False])
    env, cat = one_user_sim(params, 0.7, theta, known)
    env.start_session()
    p = env.p.numpy()
    items = torch.zeros(env.B, dtype=torch.long)            # item 0: topic 0, known
    out = env.step(items)
    want = 1 / (1 + np.exp(-(sp.click_bias + sp.affinity * 0.6 + sp.quality * float(cat.quality[0]))))
    assert abs(out["click"].float().mean().item() - want) < 0.015
    assert not out["novel"].any() and out["diversity"].eq(1).all()
    # a second showing of topic 0 in the session: one step of fatigue, no diversity
    out = env.step(torch.ones(env.B, dtype=torch.long))  # item 1: topic 0
    want = 1 / (1 + np.exp(-(sp.click_bias + sp.affinity * 0.6 + sp.quality * float(cat.quality[1]) - sp.fatigue)))
    assert abs(out["click"].float().mean().item() - want) < 0.015 and out["diversity"].eq(0).all()
    # a novel topic: the novelty term with the session propensity, no affinity
    item = torch.full((env.B,), 3 * 4)                   # topic 3
    logit = sp.click_bias + sp.quality * float(cat.quality[12]) + sp.novelty * (p - 0.5)
    out = env.step(item)
    assert out["novel"].all()
    assert abs(out["click"].float().mean().item() - float(np.mean(1 / (1 + np.exp(-logit))))) < 0.015


def test_a_clicked_novel_topic_pays_later(params):
    """Clicking a novel topic makes it consumed and adds interest_gain to it (the delayed payoff)."""
    theta = np.array([0.6, 0.3, 0.1, 0.0])
    env, _ = one_user_sim(params, 0.9, theta, np.array([True, False, False, False]))
    env.start_session()
    out = env.step(torch.full((env.B,), 12))  # topic 3
    c = out["click"]
    assert env.h.consumed[c, 3].all() and not env.h.consumed[~c, 3].any()
    assert torch.allclose(env.theta[c, 3], torch.full_like(env.theta[c, 3], params.sim.interest_gain))
    assert torch.equal(env.theta[~c, 3], torch.zeros_like(env.theta[~c, 3]))


def test_session_propensity_is_ar1_around_the_static_preference(params):
    from stages.novelty_rec import sim

    sp = params.sim
    cat = sim.make_catalogue(sp, 4, 8, 0)
    env = sim.UserSim(sp, cat, 1, 3)
    B = 40000
    users = sim.draw_users(sp, 4, B, np.random.default_rng(0))
    env.reset(users, [(torch.Generator().manual_seed(1), B)])
    eps = []
    for _ in range(3):
        env.start_session()
        eps.append(env.eps.clone())
        env.step(torch.zeros(B, dtype=torch.long))
        env.end_session()
    e = torch.stack(eps).numpy()
    assert abs(e.std(1).mean() - sp.sigma) < 0.03                     # stationary std sigma
    assert abs(np.corrcoef(e[0], e[1])[0, 1] - sp.rho) < 0.03           # lag-1 correlation rho
    assert abs(np.corrcoef(e[0], e[2])[0, 1] - sp.rho ** 2) < 0.03      # lag-2 rho^2
    nu = users.nu
    assert abs(nu.mean() - sp.nu_beta[0] / sum(sp.nu_beta)) < 0.01     # Beta(2, 5) mean 2/7
    logit_p = np.log(env.p.numpy()) - np.log1p(-env.p.numpy())
    assert np.allclose(logit_p, np.log(nu) - np.log1p(-nu) + e[2], atol=1e-3)


def test_a_group_draws_the_same_whatever_its_neighbours(params):
    """Seed s's users draw from their own generator: adding another group leaves them unchanged."""
    from stages.novelty_rec import sim

    sp = params.sim
    cat = sim.make_catalogue(sp, 4, 8, 0)
    users = sim.draw_users(sp, 4, 50, np.random.default_rng(0))
    runs = []
    for extra in (False, True):
        env = sim.UserSim(sp, cat, 3, 2)
        groups = [(torch.Generator().manual_seed(5), 50)] + ([(torch.Generator().manual_seed(9), 50)] if extra else [])
        env.reset(sim.Users.cat([users] * (2 if extra else 1)), groups)
        clicks = []
        for _ in range(2):
            env.start_session()
            for t in range(3):
                clicks.append(env.step(torch.full((env.B,), t))["click"][:50].clone())
            env.end_session()
        runs.append(torch.stack(clicks))
    assert torch.equal(runs[0], runs[1])


def test_replay_of_the_logs_gives_the_simulators_features(params):
    """encoders.replay rebuilds, from the logged items and clicks alone, the History the simulator had."""
    import polars as pl

    from stages.novelty_rec import encoders, sim

    sp = params.sim
    K, L, S = 5, 3, 2
    cat = sim.make_catalogue(sp, K, 10, 0)
    env = sim.UserSim(sp, cat, L, S)
    users = sim.draw_users(sp, K, 7, np.random.default_rng(3))
    gen = torch.Generator().manual_seed(0)
    env.reset(users, [(gen, 7)])
    rows, feats = [], []
    for s in range(S):
        env.start_session()
        for t in range(L):
            it = sim.behaviour_items(env.h, cat, gen)
            feats.append(env.h.session_features().clone())
            out = env.step(it)
            rows += [{"user": u, "session": s, "step": t, "item": int(it[u]), "novel": bool(out["novel"][u]),
                      "click": bool(out["click"][u])} for u in range(7)]
        env.end_session()
    logs = pl.DataFrame(rows).sort("user", "session", "step")
    f = encoders.replay(logs, users.known, cat, L, S)
    want = torch.stack(feats, 1).reshape(7 * S * L, -1)
    assert torch.allclose(f["sess"], want)
    assert torch.equal(f["click"], logs["click"].cast(pl.Float32).to_torch())


def test_variants_see_what_they_should(params):
    from stages.novelty_rec import agent as ag

    from stages.novelty_rec.params import sizes

    K = sizes(params).topics
    d_long, d_sess = 2 * K + 3, K + 7
    a = params.agent
    full, _ = ag.dims(params, ag.VARIANTS["hrl"])
    no_static, _ = ag.dims(params, ag.VARIANTS["no_static"])
    no_dynamic, _ = ag.dims(params, ag.VARIANTS["no_dynamic"])
    oracle, oracle_low = ag.dims(params, ag.VARIANTS["oracle"])
    assert full == d_long + a.embed_long + 3 + a.embed_session
    assert no_static == 3 + a.embed_session and no_dynamic == d_long + a.embed_long
    assert oracle == full + 2 and oracle_low == ag.dims(params, ag.VARIANTS["hrl"])[1] + 2
    assert ag.VARIANTS["flat"].high == () and not ag.VARIANTS["flat_engagement"].novelty_reward


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    import yaml

    from conftest import smoke_train_and_report, smoke_workdir
    from stages.novelty_rec import baselines, encoders, report, simulate, train

    tmp = tmp_path_factory.mktemp("novelty_rec")
    with smoke_workdir(tmp, "novelty_rec") as text:
        methods = yaml.safe_load(text)["methods"]
        assert simulate.main([]) == 0
        assert encoders.main([]) == 0
        assert baselines.main([]) == 0
        first, again = smoke_train_and_report("novelty_rec", methods, train, report)
    return tmp, first, again


def test_stages_deterministic_and_report_complete(smoke_run):
    import polars as pl
    import yaml

    tmp, first, again = smoke_run
    assert first == again
    declared = yaml.safe_load((ROOT / "stages/novelty_rec/claims.yaml").read_text())
    metrics = json.loads((tmp / "reports/novelty_rec/metrics.json").read_text())
    assert set(metrics["claims"]) == {c["id"] for c in declared["claims"]}
    assert set(metrics["gates"]) == {c["id"] for c in declared["gates"]}
    text = (tmp / "reports/novelty_rec/report.md").read_text()
    assert "Our reading" in text and all(c["id"] in text for c in declared["claims"])
    for f in ("train_ctr.png", "goals_vs_propensity.png", "test_metrics.png"):
        assert (tmp / "reports/novelty_rec/figures" / f).stat().st_size > 1000
    seeds = pl.read_csv(tmp / "reports/novelty_rec/seeds.csv")
    assert set(seeds["method"]) == {"hrl", "flat", "flat_engagement", "no_static", "no_dynamic", "oracle",
                                    "popularity", "greedy"}
    ev = pl.read_parquet(tmp / "data/novelty_rec/runs/hrl/eval.parquet")
    assert ev["goal"].is_not_nan().all() and set(ev["goal"].unique()) <= set(yaml.safe_load(
        (ROOT / "params/novelty_rec.yaml").read_text())["agent"]["goals"])
    assert pl.read_parquet(tmp / "data/novelty_rec/runs/flat/eval.parquet")["goal"].is_nan().all()
    curve = pl.read_parquet(tmp / "data/novelty_rec/runs/hrl/curve.parquet")
    assert curve["seed"].n_unique() == 5 and math.isfinite(curve["ctr"].sum())


def test_dvc_foreach_matches_methods():
    import yaml

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    methods = yaml.safe_load((ROOT / "params/novelty_rec.yaml").read_text())["methods"]
    assert dvc["novelty_rec_train"]["foreach"] == methods
    report_deps = dvc["novelty_rec_report"]["deps"]
    assert [d.rsplit("/", 1)[1] for d in report_deps if d.startswith("data/novelty_rec/runs/")] == methods


def test_gymnasium_faces(params):
    """The simulator passes hrlzoo's batched-env checker (world independence, auto-reset) and
    gymnasium's own check_env through the one-world face."""
    import copy

    from hrlzoo.envs.batched import check_batched_env
    from stages.novelty_rec.gym_env import RecEnv

    p = copy.deepcopy(params)
    p.scale = "smoke"
    check_batched_env(lambda num_envs, autoreset=True: RecEnv(p, num_envs, autoreset=autoreset), num_envs=3)


def test_per_seed_table_does_not_depend_on_row_or_thread_order():
    """The report's per-user reductions (novelty gap, goal-preference correlation, breadth) give the
    same bits whatever order the users arrive in: polars' group_by hands groups back in no fixed
    order, and CI once saw the Snakemake and DVC runs differ by a -0.000000 in seeds.csv."""
    import polars as pl

    from stages.novelty_rec.report import per_seed

    rng = np.random.default_rng(0)
    users, sessions = 300, 4
    rows = {"method": ["hrl"] * (users * sessions), "seed": [0] * (users * sessions),
            "user": np.repeat(np.arange(users), sessions), "session": np.tile(np.arange(sessions), users),
            "nu": np.repeat(rng.random(users), sessions), "breadth": np.repeat(rng.random(users) * 9, sessions),
            "goal": rng.random(users * sessions), "p": rng.random(users * sessions),
            "novel": rng.integers(0, 10, users * sessions).astype(float),
            "clicks": rng.integers(0, 10, users * sessions).astype(float),
            "diversity": rng.random(users * sessions), "reward": rng.random(users * sessions)}
    ev = pl.DataFrame(rows).with_columns(_len=pl.lit(10.0))
    cols = ["novelty_gap", "corr_static", "breadth"]
    first = per_seed(ev).select(cols).row(0)
    for k in range(8):  # the users in another order each time, each user's rows kept together
        order = pl.DataFrame({"user": rng.permutation(users), "_k": np.arange(users)})
        shuffled = ev.join(order, on="user").sort("_k", "session").drop("_k")
        assert per_seed(shuffled).select(cols).row(0) == first, k
