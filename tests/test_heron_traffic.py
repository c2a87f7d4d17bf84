"""HERON's traffic stage (stages/heron/traffic.py) at smoke scale: every method trains with all
seeds in one batched PPO over SUMO worlds, the same bytes twice, the reward each method learns
from, the reference controllers, and a bad task exits 2."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def smoke(tmp: Path) -> None:
    (tmp / "params").mkdir(exist_ok=True)
    text = (ROOT / "params" / "heron.yaml").read_text()
    (tmp / "params" / "heron.yaml").write_text(re.sub(r"^scale:\s*\w+", "scale: smoke", text, count=1, flags=re.M))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import os

    from stages.heron import traffic

    tmp = tmp_path_factory.mktemp("heron_traffic")
    smoke(tmp)
    old = os.getcwd()
    os.chdir(tmp)
    try:
        out = {}
        for m in ("references", "heron", "misweighted"):
            assert traffic.main(["traffic", m]) == 0
            out[m] = {p.name: p.read_bytes() for p in (tmp / traffic.out_dir("traffic", m)).iterdir()}
        assert traffic.main(["traffic", "heron"]) == 0  # again: the same bytes
        again = {p.name: p.read_bytes() for p in (tmp / traffic.out_dir("traffic", "heron")).iterdir()}
    finally:
        os.chdir(old)
    return tmp, out, again


def test_stage_is_deterministic(runs):
    _, out, again = runs
    assert sorted(out["heron"]) == ["curve.parquet", "eval.parquet", "levels.parquet", "policy.pt"]
    for name in ("curve.parquet", "eval.parquet", "levels.parquet"):
        assert out["heron"][name] == again[name], name


def test_outputs(runs):
    import polars as pl

    from hrlzoo.pipeline.params import load_params
    from stages.heron.params import HeronParams, traffic_sizes

    tmp, _, _ = runs
    p = load_params("heron", HeronParams, root=tmp)
    sz = traffic_sizes(p)
    ev = pl.read_parquet(tmp / "data/heron/traffic/traffic-heron/eval.parquet")
    assert sorted(ev["seed"].unique()) == sorted(p.seeds) and ev.height == len(p.seeds) * sz.eval_episodes
    assert np.isfinite(ev["return_true"].to_numpy()).all() and (ev["factor_queue"] >= 0).all()
    curve = pl.read_parquet(tmp / "data/heron/traffic/traffic-heron/curve.parquet")
    assert curve["step"].max() == sz.total_steps and curve["return_train"].null_count() == 0
    levels = pl.read_parquet(tmp / "data/heron/traffic/traffic-heron/levels.parquet")
    assert levels["pairs"].sum() > 0 and set(levels["level"]) == {"0", "1", "2", "3", "4", "5", "undecided"}
    refs = pl.read_parquet(tmp / "data/heron/traffic/traffic-references/eval.parquet")
    assert set(refs["method"]) == {f"fixed_cycle_{k}" for k in p.traffic.fixed_cycles} | {"random"}
    # a fixed-time plan switches once every k decisions (the first switch allowed after min green)
    k = p.traffic.fixed_cycles[0]
    fc = refs.filter(pl.col("method") == f"fixed_cycle_{k}")
    decisions = sz.seconds // p.traffic.delta_time
    assert (fc["factor_switch"] <= decisions // k).all() and (fc["factor_switch"] >= decisions // k - 2).all()


def test_linear_rewards():
    import torch

    from hrlzoo.envs.traffic import DESIGNED_WEIGHTS
    from hrlzoo.pipeline.params import load_params
    from stages.heron.params import HeronParams
    from stages.heron.traffic import linear_reward

    p = load_params("heron", HeronParams, root=ROOT)
    assert linear_reward("true_reward", p.traffic.tasks["traffic"]) is None  # the env's designed reward
    z = torch.tensor([[2.0, 1.0, 0.5, 1.0, 3.0, 4.0]], dtype=torch.float64)
    r = linear_reward("misweighted", p.traffic.tasks["traffic"])(None, z)
    assert r.item() == pytest.approx(float(np.dot(np.sign(DESIGNED_WEIGHTS), z[0].numpy())))  # equal weights


def test_bad_task_exits_2_before_writing(tmp_path, monkeypatch, capsys):
    from stages.heron import traffic

    smoke(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert traffic.main(["nope", "heron"]) == 2
    assert "traffic.tasks: no task 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_report_reads_the_traffic_runs(runs, tmp_path):
    """heron_report's traffic part: per-seed means of the evaluation episodes (the rows the
    traffic claims are judged on), the references, the curves figure and the section's text."""
    import os

    import polars as pl

    from hrlzoo.pipeline.params import load_params
    from stages.heron import report
    from stages.heron.params import HeronParams

    tmp, _, _ = runs
    p = load_params("heron", HeronParams, root=tmp)
    old = os.getcwd()
    os.chdir(tmp)
    try:
        learned, refs, curves = report.traffic_tables(["traffic-references", "traffic-heron", "traffic-misweighted"])
    finally:
        os.chdir(old)
    ev = pl.read_parquet(tmp / "data/heron/traffic/traffic-heron/eval.parquet")
    mine = learned.filter(pl.col("method") == "heron").sort("seed")
    assert mine["seed"].to_list() == sorted(p.seeds) and set(learned["task"]) == {"traffic"}
    expect = ev.group_by("seed").agg(pl.col("return_true").mean()).sort("seed")["return_true"].to_list()
    assert mine["return_true"].to_list() == pytest.approx(expect)
    assert set(refs["method"]) == {f"fixed_cycle_{k}" for k in p.traffic.fixed_cycles} | {"random"}
    assert set(curves["method"]) == {"heron", "misweighted"}
    figs: list[str] = []
    text = report.traffic_md(p, learned, refs, curves, tmp_path, figs)
    assert figs == ["traffic_curves.png"] and (tmp_path / "traffic_curves.png").stat().st_size > 0
    assert f"{p.sizes['smoke'].traffic.total_steps} decisions per seed" in text and "fixed_cycle_4" in text
    assert report.traffic_md(p, None, None, None, tmp_path, []) == ""
