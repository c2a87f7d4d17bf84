"""Stage worldrft_train: one seed's whole learning pipeline, then its evaluation.

    python -m stages.worldrft.train <seed>

1. world-model pretraining (Lightning): encoder -> latent tokens, geometry decoder, latent
   transition conditioned on the ego plan (self-supervised, train split);
2. planner imitation (Lightning), every planner for the same number of steps on the same
   batches: `global` (single global query, pretrained encoder), `hpd_lir` (HPD + LIR,
   pretrained encoder), `hpd_lir_scratch` (HPD + LIR, encoder from scratch);
3. GRPO fine-tuning (plain PyTorch) of hpd_lir: `worldrft` (collision-aware reward) and
   `rft_l2` (L2-only reward);
4. evaluation of the five planners, the expert and constant velocity: open loop on the test
   frames, closed loop in NAVSIM-style 4 s episodes handed over from the expert and in long
   rollouts of the test scenes; figure data.
The seeds of one stage differ in every network's initialisation, the batch order, the
anchors' k-means start and GRPO's samples; the data (scenes) are the same for all seeds.

Writes data/worldrft/runs/<seed>/:
    models.pt            state dicts of the world model and the five planners, the anchors
    open_loop.parquet    one row per (method, test frame): L2 and collision at 1/2/3 s, ...
    closed_loop.parquet  one row per (method, handover start, scene): NAVSIM-style 4 s episodes
                         (stages/worldrft/evaluate.py): collision, off-road, progress, PDMS, ...
    long_rollout.parquet one row per (method, logged test scene): 17 s from the scene's start
    curves.parquet       training curves: phase, method, step, metric, value
    figures.npz          rasters, plans and Gaussian samples of a few test frames (report figures)
    diagnostics.json     world-model diagnostics on the val split, anchors' usage, val L2
"""

from __future__ import annotations

import sys
from pathlib import Path

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.worldrft.params import IL_METHODS, METHODS, RFT_METHODS, WorldRFTParams

RUNS = Path("data/worldrft/runs")
REFERENCES = ("expert", "constant_velocity")  # rows of the tables that are not learned


def run_dir(seed: int) -> Path:
    return RUNS / str(seed)


def body(ctx: Stage) -> None:
    """Pretrain the world model, imitate, fine-tune with GRPO and evaluate, for one seed."""
    import json

    import numpy as np
    import polars as pl
    import torch

    from hrlzoo.envs.driving.evaluate import closed_loop, constant_velocity_planner
    from hrlzoo.envs.driving.raster import CHANNELS
    from hrlzoo.pipeline.artifacts import save_pt
    from hrlzoo.pipeline.npz import save_npz
    from stages.worldrft import evaluate as ev
    from stages.worldrft import learn, method
    from stages.worldrft.data import load_splits
    from stages.worldrft.nets import Dims, WorldModel, make_planner
    from stages.worldrft.params import sizes, split_seeds

    p: WorldRFTParams = ctx.params
    seed = ctx.args.seed
    s, e = sizes(p).train, sizes(p).eval
    cfg, T = p.sim, p.sim.horizon
    out = ctx.out(run_dir(seed))
    out.mkdir(parents=True)
    splits = load_splits()
    train, val, test = splits["train"], splits["val"], splits["test"]
    ctx.log(f"seed {seed}: {len(train)} train, {len(val)} val, {len(test)} test frames")
    dims = Dims(channels=len(CHANNELS), local=p.nets.local, latent=p.nets.latent, heads=p.nets.heads, ff=p.nets.ff)
    curves, diag = [], {}

    def record(phase, name, rows):
        curves.extend({"phase": phase, "method": name, "step": r["step"], "metric": k, "value": float(v)}
                      for r in rows for k, v in r.items() if k != "step")

    total = s.wm_steps + len(IL_METHODS) * s.il_steps + len(RFT_METHODS) * s.rft_steps
    bar = ctx.progress(total, f"seed {seed} training (world model, imitation, GRPO)")

    # 1. world model
    torch.manual_seed(1000 * seed)
    wm = WorldModel(dims, T)
    record("world_model", "world_model", learn.pretrain_world_model(
        wm, train, p, seed, s.wm_steps, s.wm_batch, s.log_every, ctx.device, ctx.guard, tick=bar.update))
    diag["world_model"] = world_model_diagnostics(wm.eval(), val, p, e.batch, seed)
    ctx.log("world model on val: " + ", ".join(f"{k} {v:.4f}" for k, v in diag["world_model"].items()))

    # 2. imitation; HPD's anchors: k-means of the expert's futures relative to constant velocity
    rel = method.relative_future(train["expert_future"][..., :2], train["ego_state"][:, 0], cfg.dt)
    anchors = method.kmeans_anchors(rel, p.planner.anchors, seed)
    anchor_ids = method.nearest_anchor(rel, anchors)
    diag["anchor_use"] = np.bincount(anchor_ids, minlength=len(anchors)).tolist()
    planners = {}
    for i, name in enumerate(IL_METHODS):
        torch.manual_seed(1000 * seed + 1 + i)
        kind = "global" if name == "global" else "hpd_lir"
        net = make_planner(kind, dims, T, cfg.dt, cfg.raster, anchors=torch.from_numpy(anchors),
                           rounds=p.planner.rounds, layers=p.planner.global_layers)
        if name != "hpd_lir_scratch":
            net.encoder.load_state_dict(wm.encoder.state_dict())
        record("imitation", name, learn.imitate(net, train, p, seed, s.il_steps, s.il_batch, s.log_every, ctx.device,
                                                ctx.guard, anchor_ids if kind == "hpd_lir" else None, tick=bar.update))
        planners[name] = net.eval()

    # 3. GRPO from the full imitation planner. First the collision signal it will get: the
    # interactive frames (rft.interactive_margin), and each sampling setting's share of groups
    # with a non-zero collision advantage on the imitation planner (no training)
    pool = np.flatnonzero(method.interactive_frames(train.a, cfg, p.rft.interactive_margin))
    diag["interactive_train_share"] = len(pool) / len(train)
    probes = {"declared": p.rft.sampling(), **p.rft.probe}
    diag["signal_probe"] = {name: learn.probe_signal(planners["hpd_lir"], train, p, setting, p.rft.rewards["worldrft"],
                                                     pool, 1000 * seed + 20, s.probe_steps, s.rft_scenes)
                            for name, setting in probes.items()} if s.probe_steps else {}
    for name, pr in diag["signal_probe"].items():
        ctx.log(f"collision signal before RFT ({name}): {100 * pr['signal_share']:.1f}% of groups, "
                f"{100 * pr['col_adv_share']:.1f}% of |advantage|")
    diag["rft_signal"] = {}
    for i, name in enumerate(RFT_METHODS):
        policy, rows, signal = learn.finetune(planners["hpd_lir"], train, p, p.rft.rewards[name], 1000 * seed + 10 + i,
                                              s.rft_steps, s.rft_scenes, s.log_every, ctx.guard, pool=pool,
                                              tick=bar.update)
        record("rft", name, rows)
        planners[name] = policy
        diag["rft_signal"][name] = {**signal, **learn.signal_rates(signal)}
        ctx.log(f"{name}: collision advantage non-zero in {100 * diag['rft_signal'][name]['signal_share']:.1f}% of "
                f"its {signal['groups']} training groups")
    bar.close()

    # 4. evaluation
    plans = {m: ev.plan_frames(planners[m], test, e.batch) for m in METHODS}
    plans["expert"] = test["expert_future"][..., :2].astype(np.float64)
    plans["constant_velocity"] = constant_velocity_planner(cfg.dt, T)({"ego_state": test["ego_state"]})
    ol = []
    for m in (*METHODS, *REFERENCES):
        per = ev.open_loop(plans[m], test, cfg)
        ol.append(pl.DataFrame({"method": m, "frame": np.arange(len(test)), "scenario": test["scenario"].astype(np.int64),
                                "expert_collides": test["future_collision"], **per}))
        ctx.log(f"open loop {m}: " + ", ".join(f"{k} {v:.3f}" for k, v in ev.open_loop_summary(per).items()))
    val_interactive = method.interactive_frames(val.a, cfg, p.rft.interactive_margin)
    diag["val"] = {}
    for m in METHODS:
        per = ev.open_loop(ev.plan_frames(planners[m], val, e.batch), val, cfg)
        col = (per["col_1s"].astype(float) + per["col_2s"] + per["col_3s"]) / 3
        diag["val"][m] = {**{k: v for k, v in ev.open_loop_summary(per).items() if k in ("l2_avg", "col_avg")},
                          "col_avg_interactive": 100 * float(col[val_interactive].mean()) if val_interactive.any() else None,
                          "col_avg_other": 100 * float(col[~val_interactive].mean()) if (~val_interactive).any() else None}
    diag["val_l2_avg"] = {m: diag["val"][m]["l2_avg"] for m in METHODS}
    diag["interactive_val_share"] = float(val_interactive.mean())
    first = split_seeds(p, "test")[0]
    callables = {"expert": None, "constant_velocity": constant_velocity_planner(cfg.dt, T),
                 **{m: ev.as_planner(planners[m]) for m in METHODS}}
    handover = ev.handover_episodes(callables, cfg, list(range(first, first + e.closed_loop_scenes)),
                                    e.handover_starts, e.handover_frames)
    for m in callables:
        h = handover.filter(pl.col("method") == m)
        ctx.log(f"closed loop (handover) {m}: collision {100 * h['collision'].mean():.2f}%, "
                f"pdms {100 * h['pdms'].mean():.1f}")
    logged = sorted(set(test["scene_seed"].tolist()))
    expert = closed_loop(cfg, logged, None, e.long_frames)
    long = [ev.results_frame("expert", expert)]
    for m, plan in callables.items():
        if plan is not None:
            long.append(ev.results_frame(m, closed_loop(cfg, logged, plan, e.long_frames, expert["progress"])))
    long = pl.concat(long)

    pl.concat(ol).write_parquet(out / "open_loop.parquet")
    handover.write_parquet(out / "closed_loop.parquet")
    long.write_parquet(out / "long_rollout.parquet")
    pl.DataFrame(curves).write_parquet(out / "curves.parquet")
    save_npz(figure_data(planners, plans, test, p, seed, e.figure_frames), out / "figures.npz")
    save_pt({"dims": dims.__dict__, "anchors": anchors, "world_model": wm.state_dict(),
             **{m: planners[m].state_dict() for m in METHODS}}, out / "models.pt")
    (out / "diagnostics.json").write_text(json.dumps(diag, indent=1, sort_keys=True) + "\n")


def world_model_diagnostics(wm, val, p: WorldRFTParams, batch: int, seed: int) -> dict:
    """On val pairs (t, t + k): the latent-prediction error with the true plan, with the plan of
    another frame (shuffled), and of copying z_t (no dynamics); the geometry losses."""
    import numpy as np
    import torch

    from stages.worldrft import method

    first, later = val.pairs(p.world_model.future)
    shuffled = np.random.default_rng(seed).permutation(len(first))
    sums = {"latent_true_plan": 0.0, "latent_shuffled_plan": 0.0, "latent_copy": 0.0,
            **{m: 0.0 for m in method.GEOMETRY_MAPS}}
    n = 0
    with torch.no_grad():
        for a in range(0, len(first), batch):
            i, f = first[a:a + batch], later[a:a + batch]
            b = val.batch(i)
            z, _ = wm.encoder(b["raster"])
            zf, _ = wm.encoder(torch.from_numpy(val.raster(f)).float())
            other = torch.from_numpy(val["expert_future"][first[shuffled[a:a + batch]], :, :2]).float()
            geo = method.geometry_loss(wm.geometry(z), torch.from_numpy(
                method.geometry_targets(val.raster(i), p.sim.raster, p.world_model.distance_clip)))
            k = len(i)
            sums["latent_true_plan"] += k * method.latent_loss(wm.transition(z, b["expert"]), zf).item()
            sums["latent_shuffled_plan"] += k * method.latent_loss(wm.transition(z, other), zf).item()
            sums["latent_copy"] += k * method.latent_loss(z, zf).item()
            for key in method.GEOMETRY_MAPS:
                sums[key] += k * geo[key].item()
            n += k
    return {k: v / max(n, 1) for k, v in sums.items()}


def figure_data(planners, plans, test, p: WorldRFTParams, seed: int, count: int) -> dict:
    """A few test frames for the report's figures: those where the imitation planner's plan
    collides first (in frame order), then others; rasters, the expert's future, every
    method's plan, and G samples of the imitation and WorldRFT Gaussians with collision flags."""
    import numpy as np

    from stages.worldrft import evaluate as ev
    from stages.worldrft import method

    il_col = ev.open_loop(plans["hpd_lir"], test, p.sim)["col_3s"]
    order = np.concatenate([np.flatnonzero(il_col), np.flatnonzero(~il_col)])
    rng = np.random.default_rng(seed)
    idx = np.sort(np.concatenate([order[:min(count, il_col.sum())],
                                  rng.permutation(np.flatnonzero(~il_col))[:max(0, count - il_col.sum())]]))[:count]
    sigma = method.sigma_schedule(p.sim.horizon, p.rft.sigma_lon, p.rft.sigma_lat)
    out = {"frame": idx, "raster_bits": test["raster_bits"][idx], "expert": test["expert_future"][idx, :, :2],
           "agents_future": test["agents_future"][idx], "agents_valid": test["agents_valid"][idx],
           "il_collides": il_col[idx]}
    for m in plans:
        out[f"plan_{m}"] = np.asarray(plans[m])[idx]
    for m in ("hpd_lir", "worldrft"):
        f = ev.figure_samples(planners[m], test, idx, sigma, p.rft.group, seed, p.sim, p.rft.noise_corr)
        out[f"samples_{m}"] = f["samples"]
        out[f"sample_collision_{m}"] = f["sample_collision"]
    return out


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("seed", type=int, help="one of the params' seeds")

    def validate(args, p):
        if args.seed not in p.seeds:
            return f"seed {args.seed}: expected one of params seeds {p.seeds}"
        return None

    return run_stage("worldrft_train", "worldrft", WorldRFTParams, body, argv, add_args=add_args,
                     validate_args=validate, outputs=lambda a, p: [str(run_dir(a.seed))])


if __name__ == "__main__":
    sys.exit(main())
