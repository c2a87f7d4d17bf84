"""Legged locomotion in confined spaces: the body model's rules (speed shrinking with height,
collisions stop it, beams need crouching), the planner's need for roll and crouch levels, the
batched-env convention, e2e's exploration decay, and the stages at smoke scale (same bytes
twice, every claim and gate in the report)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    from hrlzoo.pipeline.params import load_params
    from stages.legged.params import LeggedParams

    return load_params("legged", LeggedParams, root=ROOT)


@pytest.fixture(scope="module")
def bank(params):
    from stages.legged import common

    b, rows = common.build_bank(params, "test", 1)
    return b, rows


def _tunnel(params, kind, seed=3, distance=2.0):
    from stages.legged import common
    from stages.legged.body import Maps
    from stages.legged.tunnels import make_tunnel

    geo = common.geometry(params)
    f, c, g = make_tunnel(kind, distance, geo, geo.start_x + distance + 0.5, np.random.default_rng(seed))
    return geo, Maps(f[None], c[None], geo.res, geo.pad, geo.width), g


def _plan(params, kind, heights=None, rolls=None, seed=3):
    from stages.legged import common, planner

    geo, maps, g = _tunnel(params, kind, seed)
    body, pl = common.body_config(params), params.planner
    H, R = heights or pl.heights, rolls or pl.rolls
    valid, z0, xs, ys = planner.lattice_validity(maps, 0, geo, body, pl.xy_step, H, R, pl.margin, pl.margin_h,
                                                 g + params.goal_radius)
    return planner.plan(valid, z0, xs, ys, H, R, body, (geo.start_x, 0.0), (g, 0.0), params.goal_radius,
                        pl.pose_cost, body.step_max)


@pytest.mark.parametrize("kind", ["plain", "crouch", "side", "tilt"])
def test_planner_solves_every_kind(params, kind):
    path = _plan(params, kind)
    assert path is not None
    assert np.hypot(path[-1, 0] - path[0, 0], 0) > 1.0
    if kind == "crouch":
        assert path[:, 2].min() < 0.2  # it lowers under the beam
    if kind == "tilt":
        assert np.abs(path[:, 3]).max() > 0.3  # it rolls through the slanted slot


def test_tilt_needs_roll_and_crouch_needs_lowering(params):
    """Without roll levels the slanted slot has no path; without low heights the beam has none."""
    assert _plan(params, "tilt", rolls=[0.0]) is None
    assert _plan(params, "crouch", heights=[0.28]) is None
    assert _plan(params, "plain", heights=[0.28], rolls=[0.0]) is not None


def _single_bank(f, c, g):
    return {"floor": f, "ceil": c, "goal_x": np.array([g]), "distance": np.array([2.0]), "kind": np.array([0]),
            "waypoints": np.array([[[g, 0.0, 0.28, 0.0]]], np.float32), "n_wp": np.array([1]),
            "path_ok": np.array([True])}


def test_speed_limit_shrinks_as_the_body_crouches(params):
    from stages.legged import common
    from stages.legged.body import CrawlerEnv

    geo, maps, g = _tunnel(params, "plain")
    f, c = maps.floor.numpy().copy(), maps.ceil.numpy().copy()
    inside = c > f
    f[inside], c[inside] = 0.0, 0.5  # the same tunnel, emptied
    env = CrawlerEnv(_single_bank(f, c, g), geo, "waypoint", 2, common.body_config(params),
                     common.reward_config(params), steps_per_m=200.0)
    env.reset(seed=0)
    env.y[:] = 0.0
    env.yaw[:] = 0.0
    env.h[0], env.h[1] = params.body.h_max, params.body.h_min
    a = torch.zeros(2, 6)
    a[:, 0] = 1.0
    a[1, 3] = -1.0  # stay down
    for _ in range(12):
        env.step(a)
    assert not bool(env.collided.any())
    v = env.vel[:, 0]
    assert float(v[0]) == pytest.approx(params.body.v_max, rel=1e-3)
    assert float(v[1]) == pytest.approx(params.body.v_max * params.body.crouch_speed, rel=1e-3)


def test_a_beam_stops_a_standing_body_but_not_a_crouched_one(params):
    from stages.legged import common
    from stages.legged.body import CrawlerEnv

    geo, maps, g = _tunnel(params, "crouch")
    env = CrawlerEnv(_single_bank(maps.floor.numpy(), maps.ceil.numpy(), g), geo, "waypoint", 2, common.body_config(params), common.reward_config(params),
                     steps_per_m=200.0)
    env.reset(seed=1)
    env.y[:] = 0.0
    env.yaw[:] = 0.0
    a = torch.zeros(2, 6)
    a[:, 0] = 1.0
    a[1, 3] = -1.0  # world 1 crouches; world 0 stays standing
    hits = torch.zeros(2)
    for _ in range(60):
        env.step(a)
        hits += env.collided.float()
    assert float(env.x[1]) > 1.5           # the crouched body passed under the beam at x = 1.0
    assert float(env.x[0]) < 1.0 and hits[0] > 10  # the standing one is stuck in front of it


def test_env_follows_the_batched_convention(params, bank):
    from hrlzoo.envs.batched import check_batched_env
    from stages.legged import common

    b, _ = bank
    for method in ("hierarchical", "e2e", "pms"):
        check_batched_env(lambda num_envs, autoreset=True, m=method: common.make_env(params, b, m, num_envs,
                                                                                     autoreset=autoreset),
                          num_envs=3, steps=90)


def test_e2e_exploration_decays_as_the_official_curriculum(params):
    from stages.legged.train import explore_scale

    assert explore_scale(params, 0.0) == 1.0
    assert explore_scale(params, params.exploration_start) == 1.0
    mid = (params.exploration_start + params.exploration_end) / 2
    assert explore_scale(params, mid) == pytest.approx(0.5)
    assert explore_scale(params, params.exploration_end) == 0.0
    assert explore_scale(params, 1.0) == 0.0


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    import yaml

    from conftest import smoke_train_and_report, smoke_workdir
    from stages.legged import data, report, train

    tmp = tmp_path_factory.mktemp("legged")
    with smoke_workdir(tmp, "legged") as text:
        assert data.main([]) == 0
        first, again = smoke_train_and_report("legged", yaml.safe_load(text)["methods"], train, report)
    return tmp, first, again


def test_stages_deterministic_and_report_complete(smoke_run):
    import polars as pl
    import yaml

    tmp, first, again = smoke_run
    assert first == again
    plans = pl.read_parquet(tmp / "data/legged/worlds/plans.parquet")
    assert plans["path_found"].mean() >= 0.9
    declared = yaml.safe_load((ROOT / "stages/legged/claims.yaml").read_text())
    metrics = json.loads((tmp / "reports/legged/metrics.json").read_text())
    assert set(metrics["claims"]) == {c["id"] for c in declared["claims"]}
    assert set(metrics["gates"]) == {c["id"] for c in declared["gates"]}
    text = (tmp / "reports/legged/report.md").read_text()
    assert "Our reading" in text and "Deviations" in text and all(c["id"] in text for c in declared["claims"])
    for f in ("success_by_difficulty.png", "success_by_distance.png", "trajectories.png", "trajectories_side.png"):
        assert (tmp / "reports/legged/figures" / f).stat().st_size > 1000
    ev = pl.read_parquet(tmp / "data/legged/runs/hierarchical/eval.parquet")
    assert ev.height == 5 * plans.filter(pl.col("split") == "test").height


def test_dvc_foreach_matches_methods():
    import yaml

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    methods = yaml.safe_load((ROOT / "params/legged.yaml").read_text())["methods"]
    assert dvc["legged_train"]["foreach"] == methods


def test_a_perfect_tracker_of_the_skill_commands_cannot_tilt(params, bank):
    """Parameterised skills have no roll or lateral command: even tracking the planner's
    (v_x, yaw rate, height) commands exactly, the body passes plain tunnels but no slanted slot."""
    from stages.legged import common
    from stages.legged.tunnels import KINDS

    b, _ = bank
    M = len(b["kind"])
    env = common.make_env(params, b, "pms", M, tunnels=np.arange(M), autoreset=False, terminate_at_goal=True)
    env.reset(seed=0)
    body = env.body
    live = torch.ones(M, dtype=torch.bool)
    succ = torch.zeros(M, dtype=torch.bool)
    for _ in range(int(env.limit.max())):
        cmd = env.pms_command()
        a = torch.zeros(M, 6)
        a[:, 0] = cmd[:, 0] / (body.v_max * body.speed_scale(env.h))
        a[:, 2] = cmd[:, 1] / body.yaw_rate_max
        a[:, 3] = (cmd[:, 2] - env.h) / (body.h_rate_max * body.dt)
        a[:, 4] = -env.roll / (body.tilt_rate_max * body.dt)
        _, _, te, tr, _ = env.step(a.clamp(-1, 1))
        succ |= env.last_success & live
        live &= ~(te | tr)
    kind = torch.as_tensor(b["kind"])
    assert float(succ[kind == KINDS.index("plain")].float().mean()) >= 0.5
    assert not bool(succ[kind == KINDS.index("tilt")].any())
