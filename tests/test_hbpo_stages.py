"""HBPO's stages at smoke scale: sft -> rl (base and every method) -> report in a scratch folder,
the same bytes twice, the report's claims and figures, the chain substrate's traces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("hbpo", "single", "classic", "cosine")


def tree_bytes(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from stages.hbpo import report, rl, sft

    tmp = tmp_path_factory.mktemp("hbpo")
    (tmp / "params").mkdir()
    text = (ROOT / "params" / "hbpo.yaml").read_text()
    assert "\nscale: cpu " in text
    (tmp / "params" / "hbpo.yaml").write_text(text.replace("\nscale: cpu ", "\nscale: smoke", 1))
    (tmp / "stages/hbpo").mkdir(parents=True)
    (tmp / "stages/hbpo/claims.yaml").write_bytes((ROOT / "stages/hbpo/claims.yaml").read_bytes())
    old = os.getcwd()
    os.chdir(tmp)
    try:
        assert sft.main([]) == 0
        assert rl.main(["hbpo"]) == 0
        first = tree_bytes(tmp / "data/hbpo/rl/hbpo")
        assert rl.main(["hbpo"]) == 0  # again: the same bytes
        again = tree_bytes(tmp / "data/hbpo/rl/hbpo")
        for m in ("base", "single", "classic", "cosine"):
            assert rl.main([m]) == 0
        assert report.main([]) == 0
    finally:
        os.chdir(old)
    return tmp, first, again


def test_rl_stage_is_deterministic(smoke_run):
    _, first, again = smoke_run
    seeds = [f"seed{k}.pt" for k in range(5)]  # params/hbpo.yaml: seeds [0, 1, 2, 3, 4]
    assert sorted(first) == ["eval.parquet", *seeds, "train.parquet"]
    for name in first:
        assert first[name] == again[name], name


def test_stage_outputs(smoke_run):
    import polars as pl

    tmp, _, _ = smoke_run
    base = tmp / "data/hbpo/base"
    assert sorted(p.name for p in base.iterdir()) == ["gate.json", "model.pt", "sft_curve.parquet", "tokenizer.json"]
    gate = json.loads((base / "gate.json").read_text())
    assert set(gate["levels"]) == {"1", "2", "3", "4"}
    ev = pl.read_parquet(tmp / "data/hbpo/rl/base/eval.parquet")
    assert sorted(ev["mode"].unique()) == ["b16", "b32", "b64", "b80", "natural"]   # forced_budget_methods: base
    assert sorted(ev["seed"].unique()) == [0, 1, 2, 3, 4] and sorted(ev["level"].unique()) == [1, 2, 3, 4]
    assert not (tmp / "data/hbpo/rl/base/train.parquet").exists()
    ev = pl.read_parquet(tmp / "data/hbpo/rl/cosine/eval.parquet")
    assert ev["mode"].unique().to_list() == ["natural"]
    train = pl.read_parquet(tmp / "data/hbpo/rl/hbpo/train.parquet")
    assert sorted(train["budget"].unique()) == [0, 16, 32, 64, 80]            # all rollouts + each subgroup
    train = pl.read_parquet(tmp / "data/hbpo/rl/classic/train.parquet")
    assert train["budget"].unique().to_list() == [0]


def test_report_has_every_claim_and_figures(smoke_run):
    import yaml

    tmp, _, _ = smoke_run
    out = tmp / "reports/hbpo"
    declared = yaml.safe_load((ROOT / "stages/hbpo/claims.yaml").read_text())
    claims = declared["claims"] + declared["gates"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scale"] == "smoke" and set(metrics["claims"]) | set(metrics["gates"]) == {c["id"] for c in claims}
    seeds = (out / "seeds.csv").read_text().splitlines()[0].split(",")
    assert {"token_gap", "budget_ratio", "verbose", "token_reduction"} <= set(seeds)
    text = (out / "report.md").read_text()
    assert "Deviations" in text and all(c["id"] in text for c in claims)
    assert {p.name for p in (out / "figures").glob("*.png")} >= {"tokens_vs_level.png", "forced_budgets.png"}
    assert (out / "curves/train_length_mean.csv").read_text().startswith("step,classic,cosine,hbpo,single")


def test_sft_traces_mix_styles_independently_of_level():
    import numpy as np

    from hrlzoo.pipeline.params import load_params
    from stages.hbpo import common
    from stages.hbpo.params import HBPOParams
    from stages.hbpo.sft import sft_pairs

    p = load_params("hbpo", HBPOParams, root=ROOT)
    tok = common.tokenizer(p)
    pairs, meta = sft_pairs(p, tok, 2000, np.random.default_rng(0))
    for k in (1, 4):
        styles = [s for lv, s in meta if lv == k]
        assert abs(np.mean([s == "verbose" for s in styles]) - 0.6) < 0.08        # 60/30/10 on every level
        assert abs(np.mean([s == "direct" for s in styles]) - 0.1) < 0.05
    lengths = [len(c) for _, c in pairs]
    assert max(lengths) <= p.reward.l_max                                         # every trace fits L_max
    held = common.excluded(p)
    # verbose: 1-3 re-checks of earlier step lines after the last one (sft.checks: end); no held-out problem
    verbose = [tok.decode(c) for (_, c), (_, s) in zip(pairs, meta) if s == "verbose"]
    for v in verbose:
        lines = v.split("</think>")[0].split(">")[-1].split(";")[:-1]   # drop a leading budget token
        kinds = [line.startswith("chk ") for line in lines]
        assert 1 <= sum(kinds) <= 3 and kinds == sorted(kinds), v            # the re-checks come last
        steps = [line for line in lines if not line.startswith("chk ")]
        assert {line[4:] for line in lines if line.startswith("chk ")} <= set(steps)
    assert not any(tok.decode(q).split("Q:")[1].split("<think>")[0] in held for q, _ in pairs)


def test_verbose_trace_variants():
    import numpy as np

    from hrlzoo.lm.tasks import Problem
    from stages.hbpo.params import SFTData
    from stages.hbpo.sft import trace

    q = Problem((37, 4, 8, 2), ("+", "-", "+"), 3, "ops")
    assert trace(q, "standard", None, SFTData()) == "37+4=41;41-8=33;33+2=35;</think>#### 35"
    assert trace(q, "direct", None, SFTData()) == "</think>#### 35"
    last = trace(q, "verbose", np.random.default_rng(0), SFTData(checks="last", min_checks=2, max_checks=2))
    assert last == "37+4=41;41-8=33;33+2=35;chk 33+2=35;chk 33+2=35;</think>#### 35"
    for seed in range(20):
        end = trace(q, "verbose", np.random.default_rng(seed), SFTData(checks="end"))
        head = end.split("</think>")[0]
        assert head.startswith("37+4=41;41-8=33;33+2=35;chk ") and 1 <= head.count("chk") <= 3
        inline = trace(q, "verbose", np.random.default_rng(seed), SFTData(checks="inline"))
        assert sorted(inline.split(";")) == sorted(end.split(";"))   # the same re-checks, other places


@pytest.mark.parametrize("method", METHODS)
def test_smoke_rl_makes_a_real_update(smoke_run, method, monkeypatch):
    """At `smoke` the tiny base never answers right; the reference rows (sizes.smoke.rl) give
    every method's update non-zero advantages and a gradient that moves the weights, as at `cpu`."""
    import copy

    import numpy as np
    import torch

    from hrlzoo.algos.grpo import group_advantages
    from hrlzoo.pipeline.params import load_params
    from stages.hbpo import common, rl
    from stages.hbpo.params import HBPOParams, sizes

    tmp, _, _ = smoke_run
    monkeypatch.chdir(tmp)
    p = load_params("hbpo", HBPOParams)
    assert p.scale == "smoke" and sizes(p).rl.reference_rows >= 1
    model, tok = common.load_base("cpu")
    model.train()
    trainer, _ = rl.make_trainer(p, method, model, tok, seed=0)
    items = [next(common.problem_stream(p, np.random.default_rng(0))) for _ in range(sizes(p).rl.prompts)]
    batch = trainer.rollout(items)
    adv = (trainer.advantage_fn(batch.rewards, batch) if trainer.advantage_fn is not None else
           group_advantages(batch.rewards, std_normalize=True, eps=1e-6))
    assert adv.abs().max() > 0.1, (batch.rewards, adv)
    before = copy.deepcopy(model.state_dict())
    stats = trainer.step(items)
    assert stats["groups_kept"] == len(items) and stats["grad_norm"] > 0, stats
    lr, wd = sizes(p).rl.lr, p.rl.weight_decay
    moved = max((w - before[k] * (1 - lr * wd)).abs().max().item() for k, w in model.state_dict().items()
                if w.dtype.is_floating_point)
    assert moved > lr / 10, moved  # more than weight decay alone: Adam's first step is about lr per weight
