"""ArCHer's stages at smoke scale: sft (both sizes) -> train (every run) -> report in a scratch
folder, the same bytes twice, the report's claims, curves and example games, and dvc.yaml's
foreach lists equal to params `runs`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEEDS = "[0, 1]"  # two seeds keep the smoke run short; the claims then read "too few seeds"


def tree_bytes(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    import yaml

    from stages.archer import report, sft, train

    tmp = tmp_path_factory.mktemp("archer")
    (tmp / "params").mkdir()
    text = (ROOT / "params" / "archer.yaml").read_text()
    assert "\nscale: cpu " in text and "\nseeds: [0, 1, 2, 3, 4]" in text
    text = text.replace("\nscale: cpu ", "\nscale: smoke", 1).replace("\nseeds: [0, 1, 2, 3, 4]", f"\nseeds: {SEEDS}", 1)
    (tmp / "params" / "archer.yaml").write_text(text)
    (tmp / "stages/archer").mkdir(parents=True)
    (tmp / "stages/archer/claims.yaml").write_bytes((ROOT / "stages/archer/claims.yaml").read_bytes())
    runs = yaml.safe_load(text)["runs"]
    old = os.getcwd()
    os.chdir(tmp)
    try:
        assert sft.main(["small"]) == 0
        assert sft.main(["large"]) == 0
        assert train.main(["archer-small"]) == 0
        first = tree_bytes(tmp / "data/archer/runs/archer-small")
        assert train.main(["archer-small"]) == 0  # again: the same bytes
        again = tree_bytes(tmp / "data/archer/runs/archer-small")
        for r in runs:
            if r != "archer-small":
                assert train.main([r]) == 0, r
        assert train.main(["nonsense-small"]) == 2
        assert report.main([]) == 0
    finally:
        os.chdir(old)
    return tmp, first, again, runs


def test_train_stage_is_deterministic(smoke_run):
    _, first, again, _ = smoke_run
    assert sorted(first) == ["curve.parquet", "final.parquet"]
    for name in first:
        assert first[name] == again[name], name


def test_stage_outputs(smoke_run):
    import polars as pl

    tmp, _, _, runs = smoke_run
    gate = json.loads((tmp / "data/archer/sft/small/gate.json").read_text())
    assert gate["optimal_return"] <= 0 and {"sampled", "greedy", "scripted", "gate"} <= set(gate)
    assert -8 <= gate["scripted"]["return"] <= 0
    for r in runs:
        final = pl.read_parquet(tmp / f"data/archer/runs/{r}/final.parquet")
        assert final["seed"].to_list() == [0, 1]
        assert ((final["return"] >= -8) & (final["return"] <= 0)).all()
        curve = pl.read_parquet(tmp / f"data/archer/runs/{r}/curve.parquet")
        ev = curve.filter(pl.col("eval_return").is_not_null())
        assert ev["iteration"].min() == 0
        if not r.startswith("sft"):
            assert curve["episodes"].max() == 2 * 16                       # iterations x rollout_size
            assert ev["iteration"].max() == 2
    archer = pl.read_parquet(tmp / "data/archer/runs/archer-small/curve.parquet")
    assert {"q1_loss", "v1_loss", "pg_loss"} <= set(archer.columns)       # critic and actor both ran
    ppo = pl.read_parquet(tmp / "data/archer/runs/ppo-small/curve.parquet")
    assert {"pg_loss", "vf_loss"} <= set(ppo.columns)
    bc = pl.read_parquet(tmp / "data/archer/runs/filtered_bc-small/curve.parquet")
    assert "bc_loss" in bc.columns


def test_report_has_every_claim_and_figures(smoke_run):
    import yaml

    tmp, _, _, _ = smoke_run
    out = tmp / "reports/archer"
    declared = yaml.safe_load((ROOT / "stages/archer/claims.yaml").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["claims"]) == {c["id"] for c in declared["claims"]}
    assert set(metrics["gates"]) == {c["id"] for c in declared["gates"]}
    assert metrics["optimal_return"] <= 0
    text = (out / "report.md").read_text()
    for c in declared["claims"]:
        assert c["id"] in text
    assert "Example games" in text and "hidden `" in text
    for f in ("sample_efficiency.png", "rollout_return.png", "final_return.png", "critic_loss.png"):
        assert (out / "figures" / f).stat().st_size > 1000
    assert (out / "curves/eval_return.csv").read_text().startswith("episodes,")
    assert (out / "seeds.csv").exists()


def test_dvc_foreach_lists_match_params():
    import yaml

    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    runs = yaml.safe_load((ROOT / "params/archer.yaml").read_text())["runs"]
    declared = dvc["archer_train"]["foreach"] + dvc["archer_train_large"]["foreach"]
    assert sorted(declared) == sorted(runs)
    assert all(r.endswith("-small") for r in dvc["archer_train"]["foreach"])
    assert all(r.endswith("-large") for r in dvc["archer_train_large"]["foreach"])
    report_deps = set(dvc["archer_report"]["deps"])
    assert {f"data/archer/runs/{r}" for r in runs} <= report_deps
