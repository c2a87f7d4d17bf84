"""Cog-Rethinker's real stages at `smoke` scale, in-process in a scratch folder: every output,
a verdict for every claim, the same bytes twice, bad params exit 2 and write nothing."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT
from hrlzoo.pipeline.claims import VERDICTS

PAPER = "cog_rethinker"
# the RL stages of dvc.yaml (`cog_rethinker_rl` foreach), every method of params
GROUPS = {"main": ["cog_rethinker", "lambda_0p1", "dapo", "no_decomposition"],
          "more": ["lambda_0p3", "no_sft", "grpo", "no_reflection"]}


def digest(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def scratch(tmp: Path, **subs) -> Path:
    """A folder with params/cog_rethinker.yaml (at smoke scale, `subs` replacing top-level keys)
    and the claims file, where the stages can run."""
    (tmp / "params").mkdir(parents=True)
    text = (ROOT / "params" / f"{PAPER}.yaml").read_text()
    for key, value in {"scale": "smoke", **subs}.items():
        text = re.sub(rf"^{key}:\s*[^#\n]*", f"{key}: {value}  ", text, count=1, flags=re.M)
    (tmp / "params" / f"{PAPER}.yaml").write_text(text)
    (tmp / "stages" / PAPER).mkdir(parents=True)
    shutil.copy(ROOT / "stages" / PAPER / "claims.yaml", tmp / "stages" / PAPER / "claims.yaml")
    return tmp


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from stages.cog_rethinker import data, evaluate, report, rl, sft

    root = scratch(tmp_path_factory.mktemp("cog"))
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        assert data.main([]) == 0
        assert sft.main([]) == 0
        for group, methods in GROUPS.items():
            assert rl.main([group, *methods]) == 0
        first = digest(root / "data" / PAPER / "rl")
        assert rl.main(["main", *GROUPS["main"]]) == 0  # again: same bytes
        assert digest(root / "data" / PAPER / "rl") == first
        assert evaluate.main(["main", "more"]) == 0
        assert report.main([]) == 0
        yield root
    finally:
        mp.undo()


def test_smoke_pipeline_writes_every_output(smoke_run):
    import polars as pl
    import yaml

    d = smoke_run / "data" / PAPER
    assert {f.name for f in (d / "data").iterdir()} == {"problems.parquet", "sft.parquet"}
    assert {f.name for f in (d / "base").iterdir()} == {"base.pt", "sft_curve.parquet", "base_eval.parquet", "gate.json"}
    seeds = yaml.safe_load((smoke_run / "params" / f"{PAPER}.yaml").read_text())["seeds"]
    for group, methods in GROUPS.items():
        for m in methods:
            assert sorted(f.name for f in (d / "rl" / group / m).iterdir()) == sorted(f"seed{s}.pt" for s in seeds)
    log = pl.read_parquet(d / "eval" / "log.parquet")
    assert log.height == 8 * len(seeds) * 2             # methods x seeds x steps
    assert set(log["zero_frac"].to_list()) <= {0.0, 0.5, 1.0}
    # DAPO and GRPO never run the hierarchy; the rescue methods spent tokens on it
    tokens = log.group_by("method").agg(pl.col("generated_tokens").max())
    t = dict(zip(tokens["method"], tokens["generated_tokens"]))
    assert t["cog_rethinker"] > t["dapo"] and (log.filter(pl.col("method") == "dapo")["decomp_correct"] == 0).all()
    test = pl.read_parquet(d / "eval" / "test.parquet")
    assert set(test["method"]) == {"base", *GROUPS["main"], *GROUPS["more"]}
    curve = pl.read_parquet(d / "eval" / "curve.parquet")
    assert sorted(set(curve["step"])) == [0, 1, 2]

    rep = smoke_run / "reports" / PAPER
    metrics = json.loads((rep / "metrics.json").read_text())
    claims = yaml.safe_load((smoke_run / "stages" / PAPER / "claims.yaml").read_text())["claims"]
    assert metrics["scale"] == "smoke" and set(metrics["claims"]) == {c["id"] for c in claims}
    assert all(c["verdict"] in VERDICTS for c in metrics["claims"].values())
    assert (rep / "seeds.csv").exists()
    text = (rep / "report.md").read_text()
    assert all(c["id"] in text for c in claims) and "Deviations" in text and "distillation" in text
    assert list((rep / "figures").glob("*.png")) and list((rep / "curves").glob("*.csv"))


@pytest.mark.parametrize("sub,expected", [
    ({"value_range": "[50, 40]"}, "value_range = [50, 40]: expected [low, high] with low <= high"),
    ({"value_range": "[100, 120]"}, "value_range = [100, 120]: no two-digit first number fits"),
    ({"hard_levels": "[9]"}, "hard_levels = [9]: expected a non-empty subset of levels"),
    ({"levels": "[3, 2]"}, "expected distinct increasing integers"),
])
def test_bad_params_exit_2_and_write_nothing(tmp_path, monkeypatch, capsys, sub, expected):
    from stages.cog_rethinker import data

    monkeypatch.chdir(scratch(tmp_path, **sub))
    assert data.main([]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_unknown_method_exits_2(tmp_path, monkeypatch, capsys):
    from stages.cog_rethinker import rl

    monkeypatch.chdir(scratch(tmp_path))
    assert rl.main(["main", "ppo"]) == 2
    assert "method 'ppo' is not in" in capsys.readouterr().err


def test_rl_stages_run_every_method_once():
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    declared = {k: v["methods"].split() for k, v in stages["cog_rethinker_rl"]["foreach"].items()}
    assert declared == GROUPS
    methods = yaml.safe_load((ROOT / "params" / f"{PAPER}.yaml").read_text())["methods"]
    assert sorted(m for ms in GROUPS.values() for m in ms) == sorted(methods)


def test_smoke_rl_makes_a_real_update_in_every_method(smoke_run):
    """At `smoke` the tiny base never answers right; the reference rows (sizes.smoke.rl) keep
    groups through DAPO's filter, so every method's every step is a clipped-loss update with
    non-zero advantages and a non-zero gradient, the path the `cpu` scale runs."""
    import polars as pl

    for group, methods in GROUPS.items():
        log = pl.read_parquet(smoke_run / "data" / PAPER / "rl" / group / "log.parquet")
        assert sorted(log["method"].unique()) == sorted(methods)
        assert (log["groups_kept"] >= 1).all(), log.select("method", "seed", "step", "groups_kept")
        assert (log["utilisation"] > 0).all()  # groups whose rewards differ: non-zero advantages
        assert (log["grad_norm"] > 0).all() and log["loss"].is_finite().all()
