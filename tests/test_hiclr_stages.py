"""HiCLR's stages at smoke scale in a scratch folder: datagen -> pretrain (every run of both
splits) -> supervised -> evaluate -> report; the same bytes twice; the outputs and the report."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tree_bytes(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from stages.hiclr import datagen, evaluate, pretrain, report, supervised

    tmp = tmp_path_factory.mktemp("hiclr")
    (tmp / "params").mkdir()
    text = (ROOT / "params" / "hiclr.yaml").read_text()
    assert "\nscale: cpu " in text
    (tmp / "params" / "hiclr.yaml").write_text(text.replace("\nscale: cpu ", "\nscale: smoke", 1))
    (tmp / "stages/hiclr").mkdir(parents=True)
    (tmp / "stages/hiclr/claims.yaml").write_bytes((ROOT / "stages/hiclr/claims.yaml").read_bytes())
    old = os.getcwd()
    os.chdir(tmp)
    try:
        assert datagen.main([]) == 0
        assert pretrain.main(["xsub"]) == 0
        first = tree_bytes(tmp / "data/hiclr/pretrain/xsub")
        assert pretrain.main(["xsub"]) == 0  # again: the same bytes
        again = tree_bytes(tmp / "data/hiclr/pretrain/xsub")
        assert pretrain.main(["xview"]) == 0
        for split in ("xsub", "xview"):
            assert supervised.main([split]) == 0
            assert evaluate.main([split]) == 0
        assert report.main([]) == 0
    finally:
        os.chdir(old)
    return tmp, first, again


def test_pretraining_is_deterministic(smoke_run):
    _, first, again = smoke_run
    runs = {"xsub-skeletonclr-joint", "xsub-naive_strong-joint", "xsub-no_h2-joint", "xsub-hiclr-joint",
            "xsub-hiclr-motion", "xsub-hiclr-bone"}
    assert {k.split("/")[0] for k in first} == runs
    assert first.keys() == again.keys()
    for name in first:
        assert first[name] == again[name], name


def test_stage_outputs(smoke_run):
    import numpy as np
    import polars as pl

    tmp, _, _ = smoke_run
    meta = pl.read_parquet(tmp / "data/hiclr/datagen/meta.parquet")
    x = np.load(tmp / "data/hiclr/datagen/skeletons.npy")
    assert x.shape[0] == meta.height and x.shape[1:] == (3, 12, 25)
    curves = pl.read_parquet(tmp / "data/hiclr/pretrain/xsub/xsub-hiclr-joint/curves.parquet")
    assert set(curves["metric"]) >= {"total", "info", "h1", "h2", "acc", "lr"}
    assert curves["epoch"].max() == 1 and curves["seed"].n_unique() == 5
    h2 = curves.filter(pl.col("metric") == "h2")["value"]
    assert (h2 > 0).all()  # the second level is trained in HiCLR ...
    base = pl.read_parquet(tmp / "data/hiclr/pretrain/xsub/xsub-skeletonclr-joint/curves.parquet")
    assert (base.filter(pl.col("metric").is_in(["h1", "h2"]))["value"] == 0).all()  # ... and not in SkeletonCLR
    res = pl.read_parquet(tmp / "data/hiclr/eval/xsub/results.parquet")
    assert set(res["stream"]) == {"joint", "motion", "bone", "ensemble"}
    assert res.filter(pl.col("stream") != "ensemble")["knn_top1"].is_not_null().all()
    assert res["linear_top1"].is_between(0, 100).all() and res.height == 5 * 7


def test_report_has_every_claim_and_figures(smoke_run):
    import yaml

    tmp, _, _ = smoke_run
    rep = tmp / "reports/hiclr"
    metrics = json.loads((rep / "metrics.json").read_text())
    claims = yaml.safe_load((ROOT / "stages/hiclr/claims.yaml").read_text())
    ids = {c["id"] for c in claims["claims"]} | {g["id"] for g in claims["gates"]}
    assert metrics["scale"] == "smoke" and set(metrics["claims"]) | set(metrics["gates"]) == ids
    text = (rep / "report.md").read_text()
    for i in ids:
        assert i in text
    for fig in ("skeletons.png", "linear_top1.png", "pretrain_total.png", "linear_loss.png"):
        assert (rep / "figures" / fig).stat().st_size > 1000
        assert f"figures/{fig}" in text
    assert (rep / "curves/pretrain_total_xsub.csv").read_text().startswith("epoch,hiclr,naive_strong,no_h2,skeletonclr")
    seeds = (rep / "seeds.csv").read_text().splitlines()
    assert seeds[0].startswith("method,") or "seed" in seeds[0]
    assert len(seeds) == 1 + 2 * 5 + 7 * 5 + 4 * 5
