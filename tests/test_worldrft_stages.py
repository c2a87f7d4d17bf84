"""WorldRFT's learning stages at smoke scale: datagen -> train (per seed) -> report, the same
bytes twice, bad params and arguments exit 2 before writing, imitation learns, GRPO freezes
what it must."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def smoke_params(tmp: Path, seeds="[0, 1]", edit=None) -> None:
    (tmp / "params").mkdir(exist_ok=True)
    text = (ROOT / "params" / "worldrft.yaml").read_text()
    text = re.sub(r"^scale:\s*\w+", "scale: smoke", text, count=1, flags=re.M)
    text = re.sub(r"^seeds:\s*\[[^\]]*\]", f"seeds: {seeds}", text, count=1, flags=re.M)
    (tmp / "params" / "worldrft.yaml").write_text(edit(text) if edit else text)


def tree_bytes(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """datagen, train 0, train 1 and the report in a scratch folder (seeds [0, 1])."""
    import os

    from stages.worldrft import datagen, report, train

    tmp = tmp_path_factory.mktemp("worldrft")
    smoke_params(tmp)
    (tmp / "stages/worldrft").mkdir(parents=True)
    (tmp / "stages/worldrft/claims.yaml").write_bytes((ROOT / "stages/worldrft/claims.yaml").read_bytes())
    old = os.getcwd()
    os.chdir(tmp)
    try:
        assert datagen.main([]) == 0
        assert train.main(["0"]) == 0
        first = tree_bytes(tmp / "data/worldrft/runs/0")
        assert train.main(["0"]) == 0  # again: the same bytes
        again = tree_bytes(tmp / "data/worldrft/runs/0")
        assert train.main(["1"]) == 0
        assert report.main(["0", "1"]) == 0
    finally:
        os.chdir(old)
    return tmp, first, again


def test_train_stage_is_deterministic(smoke_run):
    _, first, again = smoke_run
    assert sorted(first) == ["closed_loop.parquet", "curves.parquet", "diagnostics.json", "figures.npz",
                             "long_rollout.parquet", "models.pt", "open_loop.parquet"]
    for name in first:
        assert first[name] == again[name], name


def test_train_stage_outputs(smoke_run):
    import polars as pl

    from stages.worldrft.params import METHODS

    tmp, _, _ = smoke_run
    run = tmp / "data/worldrft/runs/0"
    ol = pl.read_parquet(run / "open_loop.parquet")
    test_frames = np.load(tmp / "data/worldrft/datagen/test.npz")["scene_seed"].shape[0]
    assert set(ol["method"]) == {*METHODS, "expert", "constant_velocity"}
    assert ol.height == test_frames * (len(METHODS) + 2)
    assert (ol.filter(pl.col("method") == "expert")["l2_3s"] == 0).all()
    # the expert's own logged collisions are what the open-loop check finds on its future
    expert = ol.filter(pl.col("method") == "expert")
    assert (expert["col_3s"] == expert["expert_collides"]).all()
    cl = pl.read_parquet(run / "closed_loop.parquet")
    assert set(cl["method"]) == {*METHODS, "expert", "constant_velocity"}
    assert set(cl["start"]) == {2, 4} and cl.filter(pl.col("method") == "expert")["ep"].min() == 1.0
    # one episode per (start, scene) whose expert had not crashed by the handover, the same for every method
    per = cl.group_by("method").agg(pl.len())["len"]
    assert per.n_unique() == 1 and per[0] <= 2 * 4
    long = pl.read_parquet(run / "long_rollout.parquet")
    assert long.filter(pl.col("method") == "expert").height == len(set(np.load(
        tmp / "data/worldrft/datagen/test.npz")["scene_seed"].tolist()))
    curves = pl.read_parquet(run / "curves.parquet")
    assert set(curves["phase"]) == {"world_model", "imitation", "rft"}
    assert {"reward", "plan_collision", "kl", "clipfrac"} <= set(curves.filter(pl.col("phase") == "rft")["metric"])
    with np.load(run / "figures.npz") as z:
        assert z["samples_worldrft"].shape[1:] == (16, 6, 2) and z["raster_bits"].shape[0] == z["frame"].shape[0]
    diag = json.loads((run / "diagnostics.json").read_text())
    assert set(diag["val_l2_avg"]) == set(METHODS)
    # the collision signal: measured on every training group of both RFT runs, and probed before RFT
    for m in ("worldrft", "rft_l2"):
        sig = diag["rft_signal"][m]
        assert sig["groups"] > 0 and 0 <= sig["signal_share"] <= sig["mixed_share"] <= 1
    assert diag["rft_signal"]["rft_l2"]["signal_groups"] == 0  # no collision term, no collision advantage
    assert set(diag["signal_probe"]) == {"declared", "stop10"}


def test_report_has_every_claim_and_figures(smoke_run):
    import yaml

    tmp, _, _ = smoke_run
    claims = yaml.safe_load((ROOT / "stages/worldrft/claims.yaml").read_text())["claims"]
    metrics = json.loads((tmp / "reports/worldrft/metrics.json").read_text())
    assert metrics["scale"] == "smoke" and set(metrics["claims"]) == {c["id"] for c in claims}
    text = (tmp / "reports/worldrft/report.md").read_text()
    assert all(c["id"] in text for c in claims) and "Deviations" in text
    figs = {p.name for p in (tmp / "reports/worldrft/figures").glob("*.png")}
    assert {"samples_over_rasters.png", "results.png"} <= figs
    assert (tmp / "reports/worldrft/curves/imitation_l1.csv").read_text().startswith("step,global,hpd_lir")


@pytest.mark.parametrize("edit, args, message", [
    (lambda t: t, ["5"], "seed 5: expected one of params seeds"),
    (lambda t: t.replace("  heads: 4 ", "  heads: 5 "), ["0"], "nets.heads: expected a divisor of latent"),
    (lambda t: t.replace("    rft_l2: {", "    rft_other: {"), ["0"], "rft.rewards: unknown key 'rft_other': expected exactly worldrft, rft_l2"),
    (lambda t: t.replace("  clip_eps: 0.2 ", "  clip_eps: 1.5 "), ["0"], "rft.clip_eps = 1.5: expected a number < 1"),
])
def test_bad_params_exit_2_before_writing(tmp_path, monkeypatch, capsys, edit, args, message):
    from stages.worldrft import train

    smoke_params(tmp_path, edit=edit)
    monkeypatch.chdir(tmp_path)
    assert train.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "data").exists()


def test_report_refuses_seeds_other_than_the_params(tmp_path, monkeypatch, capsys):
    from stages.worldrft import report

    smoke_params(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert report.main(["0", "1", "2"]) == 2
    assert "expected the params' seeds [0, 1]" in capsys.readouterr().err


def test_imitation_fits_its_batches(smoke_run):
    """56 frames, 80 Lightning steps: the L1 of the final plan falls by a fifth at least (both
    planners; HPD starts lower, from its teacher-forced anchors)."""
    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.worldrft import learn, method
    from stages.worldrft.data import Frames
    from stages.worldrft.nets import Dims, make_planner
    from stages.worldrft.params import WorldRFTParams

    tmp, _, _ = smoke_run
    p = load_params("worldrft", WorldRFTParams, root=tmp)
    train = Frames.load(tmp / "data/worldrft/datagen/train.npz")
    rel = method.relative_future(train["expert_future"][..., :2], train["ego_state"][:, 0], p.sim.dt)
    anchors = method.kmeans_anchors(rel, 4, 0)
    for kind in ("global", "hpd_lir"):
        torch.manual_seed(0)
        net = make_planner(kind, Dims(), 6, p.sim.dt, p.sim.raster, anchors=torch.from_numpy(anchors))
        rows = learn.imitate(net, train, p, 0, 80, 16, 20, "cpu", lambda *a: a[1],
                             method.nearest_anchor(rel, anchors) if kind == "hpd_lir" else None)
        assert rows[-1]["l1"] < 0.8 * rows[0]["l1"], (kind, rows)


def test_rft_moves_only_the_waypoint_heads(smoke_run):
    """GRPO leaves the world model's encoder and HPD's intention as imitation left them (so the
    intention cannot flip) and changes the rest; the imitation planner is not touched."""
    import copy

    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.worldrft import learn
    from stages.worldrft.data import Frames
    from stages.worldrft.nets import Dims, make_planner
    from stages.worldrft.params import WorldRFTParams

    tmp, _, _ = smoke_run
    p = load_params("worldrft", WorldRFTParams, root=tmp)
    train = Frames.load(tmp / "data/worldrft/datagen/train.npz")
    torch.manual_seed(0)
    il = make_planner("hpd_lir", Dims(), 6, p.sim.dt, p.sim.raster, anchors=torch.randn(4, 6, 2))
    for prm in il.parameters():  # no zero-initialised heads: every parameter gets a gradient
        prm.data.add_(0.01 * torch.randn_like(prm))
    before = copy.deepcopy(il.state_dict())
    w = p.rft.rewards["worldrft"]
    policy, rows, signal = learn.finetune(il, train, p, w, 0, 3, 8, 1, lambda *a: a[1])
    assert len(rows) == 3 and all(np.isfinite(r["loss"]) for r in rows)
    assert signal["groups"] == 3 * 8 and signal["samples"] == 3 * 8 * p.rft.group
    after = policy.state_dict()
    for k, v in il.state_dict().items():
        assert torch.equal(v, before[k]), k  # the reference is unchanged
        frozen = k.split(".")[0] in il.rft_frozen
        assert torch.equal(after[k], v) == frozen or "anchors" in k or "offsets" in k, k
