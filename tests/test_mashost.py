"""MasHost (our reading): the simulator's rules, the fixed topologies, the oracle search, HRPO's
advantage, and the stages at smoke scale (same bytes twice, every claim in the report)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world():
    from hrlzoo.pipeline.params import load_params
    from stages.mashost.params import MasHostParams, world

    return world(load_params("mashost", MasHostParams, root=ROOT))


def test_queries_have_exact_answers():
    from stages.mashost.sim import FAMILIES, make_query

    rng = np.random.default_rng(0)
    q = make_query(FAMILIES.index("equation"), 2, rng)
    a, rest = q.text.split(" x + ")
    b, c = rest.split(" = ")
    assert int(a) * int(q.answer) + int(b) == int(c)
    q = make_query(FAMILIES.index("program_output"), 3, rng)
    env = {}
    exec(q.text.replace("print(x)", "out = x"), {}, env)
    assert str(env["out"]) == q.answer
    q = make_query(FAMILIES.index("arith"), 1, rng)
    assert str(eval(q.text)) == q.answer
    q = make_query(FAMILIES.index("code_fix"), 4, rng)
    lines = q.text.split(": ", 1)[1].split("; ")
    assert len(lines) == 6 and ("3 * x" in lines[int(q.answer)] or "+ 1" in lines[int(q.answer)])


def test_simulator_rules(world):
    from stages.mashost import sim

    rng = np.random.default_rng(0)
    B = 20000
    f = np.full(B, sim.FAMILIES.index("kb_multihop"))
    h = np.full(B, 5)
    ret = world.role("retriever")
    one = sim.execute(world, np.full((B, 1), ret), np.zeros((B, 1, 1), bool), f, h, rng)
    p = world.skill[ret, f[0]] - world.slope[ret, f[0]] * 4
    assert abs(one["correct"].mean() - p) < 0.02
    # a decomposer before the retriever lowers the difficulty by decompose_gain
    roles = np.tile([world.role("decomposer"), ret], (B, 1))
    adj = np.zeros((B, 2, 2), bool)
    adj[:, 0, 1] = True
    two = sim.execute(world, roles, adj, f, h, rng)
    p2 = world.skill[ret, f[0]] - world.slope[ret, f[0]] * (5 - world.decompose_gain - 1)
    assert abs(two["correct"].mean() - p2) < 0.02
    # without the edge the decomposer does nothing, and it is irrational (no path to the output)
    three = sim.execute(world, roles, np.zeros((B, 2, 2), bool), f, h, rng)
    assert abs(three["correct"].mean() - p) < 0.02 and (three["irrational"] == 1).all()
    assert (two["irrational"] == 0).all()
    # tokens: base x (1 + 0.3 x in-degree)
    assert two["tokens"][0] == pytest.approx(world.base_tokens[roles[0, 0]] + world.base_tokens[ret] * 1.3)
    # a vote of three perfect agents is right; an aggregator alone answers nothing
    assert (sim._majority(np.array([[0, 0, 2]]), np.ones((1, 3), bool), 5) == 0).all()
    assert (sim._majority(np.array([[1, 2, -1]]), np.ones((1, 3), bool), 5) == 2).all()  # tie: the latest
    agg = sim.execute(world, np.full((4, 1), world.role("aggregator")), np.zeros((4, 1, 1), bool),
                      np.zeros(4, int), np.ones(4, int), rng)
    assert (agg["system"] == sim.NO_ANSWER).all() and not agg["correct"].any()


def test_small_graphs_and_fixed_topologies(world):
    from stages.mashost import sim

    R, A = sim.small_graphs(3, 2)
    assert len(R) == 3 + 9 * 2
    assert all(not a[np.tril_indices(2)].any() for a in A)          # only forward edges
    for name in sim.FIXED:
        r, a = sim.fixed_topology(world, name)
        assert a.shape == (len(r), len(r)) and not np.tril(a).any()


def test_hrpo_advantage_is_group_relative():
    from stages.mashost.hrpo import Variant, advantages

    G = 4
    R = torch.tensor([1.0, 0.0, 0.0, 1.0, 5.0, 5.0, 5.0, 5.0])
    steps = [{"live": torch.ones(8, dtype=torch.bool), "r": torch.zeros(8)} for _ in range(2)]
    A = advantages(R, steps, G, Variant(step_coef=0.0, exemption=0.0))
    assert torch.allclose(A[:, 4:], torch.zeros(2, 4))             # equal outcomes: no signal
    assert torch.allclose(A[0, :4], A[1, :4]) and A[0, 0] > 0 > A[0, 1]
    steps[0]["r"] = torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0])
    A2 = advantages(R, steps, G, Variant(step_coef=1.0, exemption=0.0))
    assert A2[0, 0] > A[0, 0]                                        # the action-wise term adds credit
    Ar = advantages(R, steps, G, Variant(step_coef=0.0, exemption=0.0, reinforce=True))
    assert torch.equal(Ar[0], R)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    import yaml

    from conftest import smoke_train_and_report, smoke_workdir
    from stages.mashost import baselines, report, train

    tmp = tmp_path_factory.mktemp("mashost")
    with smoke_workdir(tmp, "mashost") as text:
        methods = yaml.safe_load(text)["methods"]
        assert baselines.main([]) == 0
        first, again = smoke_train_and_report("mashost", methods, train, report)
    return tmp, first, again


def test_stages_deterministic_and_report_complete(smoke_run):
    import yaml

    tmp, first, again = smoke_run
    assert first == again
    choice = json.loads((tmp / "data/mashost/baselines/choice.json").read_text())
    assert choice["best_fixed"] in ("single", "self_consistency", "chain", "star", "complete", "random")
    declared = yaml.safe_load((ROOT / "stages/mashost/claims.yaml").read_text())
    metrics = json.loads((tmp / "reports/mashost/metrics.json").read_text())
    assert set(metrics["claims"]) == {c["id"] for c in declared["claims"]}
    assert set(metrics["gates"]) == {c["id"] for c in declared["gates"]}
    text = (tmp / "reports/mashost/report.md").read_text()
    assert "Our reading" in text and all(c["id"] in text for c in declared["claims"])
    for f in ("pareto.png", "train_accuracy.png", "size_vs_difficulty.png"):
        assert (tmp / "reports/mashost/figures" / f).stat().st_size > 1000


def test_dvc_foreach_matches_methods():
    import yaml

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    methods = yaml.safe_load((ROOT / "params/mashost.yaml").read_text())["methods"]
    assert dvc["mashost_train"]["foreach"] == methods
