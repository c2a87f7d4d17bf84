"""Stage worldrft_report: results tables, the claims' verdicts, figures, reports/worldrft/.

    python -m stages.worldrft.report <seed>...

Reads data/worldrft/runs/<seed>/ (every seed of params) and data/worldrft/datagen/meta.json;
writes reports/worldrft/ (metrics.json, report.md, curves/*.csv for `dvc plots`, figures/*.png).
Needs no torch: the train stages wrote every number and the figures' trajectories.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.worldrft.params import WorldRFTParams, sizes

OUT = Path("reports/worldrft")
CLAIMS = Path("stages/worldrft/claims.yaml")
DATAGEN = Path("data/worldrft/datagen")
SELECTION = Path("reports/worldrft/rft_selection.json")  # written by stages/worldrft/pilot.py (committed)
TITLE = "WorldRFT: latent world model planning with reinforcement fine-tuning (driving)"
ORDER = ("expert", "constant_velocity", "global", "hpd_lir_scratch", "hpd_lir", "rft_l2", "worldrft")
OPEN = ("l2_1s", "l2_2s", "l2_3s", "l2_avg", "col_1s", "col_2s", "col_3s", "col_avg", "offroad_3s")
CLOSED = {"collision": "cl_collision", "offroad": "cl_offroad", "progress": "cl_progress_m", "ep": "cl_ep",
          "ttc": "cl_ttc", "comfort": "cl_comfort", "pdms": "pdms"}
LONG = {"collision": "long_collision", "offroad": "long_offroad", "progress": "long_progress_m", "pdms": "long_pdms"}

OUR_READING = [
    "Encoder (SWE stand-in): a CNN on the 8-channel bird's-eye raster (patchify 4x4 to 16x16, "
    "a stride-2 convolution to 8x8) and one transformer layer give 64 latent tokens (D = 64). "
    "The paper encodes surround-view camera images and fuses frozen VGGT 3D tokens by "
    "cross-attention; we have no cameras and no VGGT, so the geometry enters as an auxiliary "
    "target instead: a decoder must recover occupancy, drivable area and a clipped distance "
    "field (to the nearest vehicle, closure or road edge) at 32x32 from the tokens.",
    "Latent world model: a 2-layer transformer over [plan token, latent tokens] predicts the "
    "LayerNorm-ed latent tokens k = 2 frames (1 s) later; the target is the same encoder's "
    "output on the later raster under stop-gradient (MSE), the plan is the logged 3 s ego "
    "trajectory. Pretraining is a separate phase before imitation (the paper trains its world "
    "model with the planner); imitation then fine-tunes the pretrained encoder without the "
    "world-model loss.",
    "HPD: level 1 classifies the intention among K = 16 anchor manoeuvres (k-means of the "
    "expert's 3 s futures minus the constant-velocity trajectory: brake / keep / speed up x "
    "left / straight / right); level 2 regresses a residual on the chosen anchor from a "
    "waypoint query that carries the anchor's embedding. Training conditions on the nearest "
    "anchor (teacher forcing, cross-entropy weight 0.5), inference on the argmax.",
    "LIR: 2 rounds; in each, bilinear grid_sample gathers features of the 16x16 local map and "
    "of the 8x8 token map at every waypoint and 4 points around it (+-3 m along, +-1.5 m "
    "across), an MLP and one self-attention layer across the 6 waypoints give per-waypoint "
    "offsets; sampling positions are detached between rounds; every round is supervised (L1).",
    "Every planner adds its output to the constant-velocity trajectory of the current speed "
    "(the global baseline too), so the comparison isolates the heads.",
    "{sampling}",
    "{reward}",
    "{grpo}",
    "Open-loop collision rate: ST-P3's cumulative convention (a collision at any step up to 1, "
    "2, 3 s), averaged over the three horizons; boxes of the logged agents do not react to the "
    "plan (as in nuScenes).",
]

def our_reading(p: WorldRFTParams) -> list[str]:
    """OUR_READING with the RFT items written from the params (what the committed run used)."""
    r, w, t = p.rft, p.rft.rewards["worldrft"], sizes(p).train
    rho = (f"correlated between waypoints with rho = {r.noise_corr:g} (Sigma[i, j] = sigma_i sigma_j rho^|i-j| per "
           "coordinate: a sample shifts the whole plan smoothly, as braking or speeding up does)"
           if r.noise_corr else "independent per waypoint")
    share = (f"{100 * r.interactive_share:g}% of each GRPO batch is drawn from the interactive training frames (the ego "
             f"box grown by {r.interactive_margin:g} m, placed on the expert's or the constant-velocity path, meets an "
             "agent's box within 3 s), the rest uniformly" if r.interactive_share else "GRPO batches are drawn uniformly")
    items = {
        "{sampling}": f"Trajectory Gaussianisation: a Gaussian around the planner's 12 waypoint coordinates, its std "
                      f"linear in time, along the heading from {r.sigma_lon[0]:g} m (0.5 s) to {r.sigma_lon[1]:g} m (3 s) "
                      f"and across from {r.sigma_lat[0]:g} m to {r.sigma_lat[1]:g} m, {rho}; G = {r.group}; {share}. "
                      "The std, rho, G and the interactive share were chosen on the val split before the committed run "
                      "(Collision signal). HPD's intention is held: the Gaussian is over the final (refined) waypoints, "
                      "and GRPO leaves the encoder and HPD's intention branch as imitation left them (an argmax that "
                      "flips would move the plan by metres at once; in a pilot it made the KL to the reference explode).",
        "{reward}": f"Reward: R = -{w.l2:g} * mean_t L2(tau, expert) - {w.collision:g} * 1[tau's ego box overlaps a "
                    f"logged agent's box at the same step] + {w.progress:g} * EP (progress relative to the expert's, "
                    "clipped to [0, 1]). The L2-only ablation keeps only the first term. Weights, sigma and G are ours "
                    "(the paper's are not known to us).",
        "{grpo}": f"GRPO: group-normalised advantages (unbiased std, eps 1e-6), PPO clip {r.clip_eps:g}, k3 KL to the "
                  f"imitation planner with beta {r.kl_coef:g} (DeepSeekMath's), {r.epochs} optimizer steps per batch of "
                  f"{t.rft_scenes} scenes, AdamW {r.lr:g}, {t.rft_steps} steps. The encoder (world model) is frozen during "
                  "RFT, only the planning heads move (our reading of 'fine-tuning the planner'; it also makes a step "
                  "cheap on a CPU).",
    }
    return [items.get(x, x) for x in OUR_READING]


DEVIATIONS = [
    "No cameras, no VGGT, no Grounded-SAM: a bird's-eye raster of our own simulator is the "
    "input, and the geometry-aware auxiliary target (occupancy, drivable area, distance field) "
    "stands in for the frozen VGGT tokens and the semantic supervision L_sem.",
    "Data: nuScenes and NavSim are replaced by expert logs of our batched driving simulator "
    "(hrlzoo/envs/driving: IDM/MOBIL traffic, cut-ins, stalled cars, closures). Its expert "
    "collides in a few percent of scenes (late reaction to hard cut-ins), and those frames "
    "are imitated too.",
    "Closed-loop evaluation is our simulator with a PDMS-like score (NAVSIM's multiplicative "
    "penalties times a weighted average of EP, TTC and comfort) with three simplifications: "
    "every collision counts (not only at-fault ones), TTC and comfort are shares of frames, and "
    "progress is relative to our rule-based expert (hrlzoo/envs/driving/evaluate.py). The "
    "planner replans every 0.5 s and a tracking controller executes the first 0.5 s.",
    "World-model pretraining is a phase of its own, before imitation, and imitation uses no "
    "world-model loss (the paper trains them together); the scratch variant differs only in "
    "its encoder's initialisation, with the same number of imitation steps and the same batches.",
    "The encoder and HPD's intention branch are frozen during RFT (only the waypoint heads are "
    "fine-tuned), and the Gaussian has a smaller std across the road than along it.",
    "RFT's sampling (issue 15): GRPO batches over-represent interactive training frames, and the "
    "Gaussian's scale, the correlation of its noise between waypoints and G were chosen on the val split "
    "so that the collision term varies inside enough groups (Collision signal); the paper's scene "
    "sampling, sigma and G are not known to us, and nuScenes' far larger data set has many more "
    "interactive scenes than our 560 training scenes.",
    "The expert perceives obstacles only within the raster's view (78 m ahead, `sim.expert_range`): "
    "with unlimited perception it brakes for stopped cars 200 m ahead, which no planner can see.",
    "The closed-loop protocol (NAVSIM-style 4 s handover episodes, replanning every 0.5 s in a "
    "reactive simulator; NAVSIM itself tracks one plan against non-reactive logs) was chosen after "
    "a first pilot; see Diagnosis.",
    "Sizes (`cpu` scale, numbers in Setup): a 0.4M-parameter planner, hundreds of gradient "
    "steps per phase, about 20k frames; the paper's sizes are not known to us and `paper` "
    "scale only means larger.",
    "Seeds: each seed retrains the world model, every planner and both RFT runs; the data "
    "(scenes) are shared by all seeds, so the CIs cover training randomness, not data sampling.",
]


DIAGNOSIS = """Our reading of the run committed in stop 10 (2026-12-03: `cpu` scale, 3 seeds, the tables above
are that run); it was written for that run, so check it still applies to another:

- **RFT and the open-loop collision rate (inconclusive with 3 seeds; the interval, -9% to 0%, lies
  far above the -50% the claim needs).** Collision-aware GRPO changes the
  open-loop collision rate by about -5% (the paper: -83%), L2-only GRPO by about -8%, so the
  collision term does not drive a drop either. The test frames where the fine-tuned planner collides
  are a subset of those where its imitation planner does (seed 0: 51 of 56), and about a quarter
  of them are frames whose logged expert collides as well (hard cut-ins). The training curves say why
  GRPO cannot fix them at this size: the mean plan collides in about 3% of the training scenes and its
  Gaussian samples in about 3.5%, so few groups of G samples contain both colliding and
  collision-free trajectories (in the frames of the first figure, where the plan collides, all or
  all but one of the 16 samples collide too); every other group's advantages come from sampling noise in the L2
  term, which group-std normalisation scales up to the same size. The plan-collision rate on
  training batches does not fall over the 150 GRPO steps while the KL to the reference grows (about
  0.1 to 0.25). A pilot on the val split (seed 0, not part of the pipeline) found the same for a
  4x longer run, a 3x larger learning rate, 5x larger KL weight, 4x larger collision penalty,
  isotropic or doubled longitudinal std and G = 8 or 16: -1% to -6% on the val collision rate, and
  -6% to -10% without the std normalisation (Dr. GRPO-style, which lets the few mixed groups
  dominate). The paper fine-tunes on a far larger data set with many more steps; at our scale the
  collision signal is too sparse for GRPO to find.
- **Closed loop (inconclusive: the interval of the difference just reaches 0).** In the 4 s
  handover episodes the fine-tuned planner
  collides less than its imitation planner (8.5% vs 10.2%, the gain in stalled-car and closure
  scenes) with the same progress and a higher PDMS-like score. L2-only RFT gets most of the way
  there too (8.7%, with a CI as wide as the effect), so this is not clearly the collision term's
  doing either. The protocol was changed after the first pilot: the long 17 s rollouts (still
  reported) collide in 60-70% of the scenes for every learned planner and for constant velocity,
  because errors compound (a planner that brakes too little for a stopped car ends up where no
  training frame is); NAVSIM's 4 s episodes from logged states, which the paper's PDMS uses,
  measure the planner instead. In the last pilot before the change (seed 0) the fine-tuned
  planner also collided less than imitation over 17 s (63.7% vs 69.2% of 240 scenes), so the
  change did not turn the verdict's direction.
- **HPD + LIR vs the global query (both inconclusive with 3 seeds; the L2 interval lies below 0).**
  Decomposition and
  refinement lower L2 by 0.05 m and leave the plan on the road far more often (off-road 1.4% vs
  4.9% of test frames; PDMS 86.6 vs 80.1 in closed loop); the global query's plans hardly bend with
  the road's heading during lane changes. Open-loop collisions are the same within noise.
- **Pretraining (inconclusive; the interval leans against the claim).** At equal imitation steps
  the scratch encoder reaches a lower L2
  than the world-model-pretrained one (0.76 vs 0.81 m). The world model learns little dynamics at this
  size: its latent prediction beats copying the present latent by only 1-6% and uses the plan a
  little (with another frame's plan it is 3-10% worse; World-model diagnostics). The pretrained features, shaped to reconstruct the
  raster's semantics and distance field, are then re-purposed in 600 imitation steps less well than
  features learned for planning from the start. The paper's camera input, frozen VGGT features and
  much longer training are all missing here; our geometry target is built from the raster itself
  and so brings no knowledge the planner could not learn.
"""

def per_seed_table(runs: dict):
    """One row per (method, seed): open-loop means over test frames, closed-loop means over test
    scenes, and the paired col_rel_change of the RFT methods against hpd_lir."""
    import polars as pl

    rows = []
    for seed, r in runs.items():
        ol = r["open_loop"].group_by("method").agg(
            *[pl.col(k).cast(pl.Float64).mean() * (100.0 if k.startswith(("col", "offroad")) else 1.0)
              for k in OPEN if k not in ("l2_avg", "col_avg")])
        ol = ol.with_columns(l2_avg=(pl.col("l2_1s") + pl.col("l2_2s") + pl.col("l2_3s")) / 3,
                             col_avg=(pl.col("col_1s") + pl.col("col_2s") + pl.col("col_3s")) / 3)
        def means(df, names):
            return df.group_by("method").agg(
                *[pl.col(k).cast(pl.Float64).mean() * (100.0 if k in ("collision", "offroad", "pdms") else 1.0)
                  for k in names]).rename(names)

        cl = means(r["closed_loop"], CLOSED).join(means(r["long_rollout"], LONG), on="method", how="left")
        rows.append(ol.join(cl, on="method", how="left").with_columns(seed=pl.lit(seed, pl.Int64)))
    table = pl.concat(rows)
    signal = pl.DataFrame([{"method": m, "seed": seed, "col_signal_share": float(v["signal_share"]),
                            "col_mixed_share": float(v["mixed_share"]), "col_adv_share": float(v["col_adv_share"])}
                           for seed, r in runs.items() for m, v in r["diagnostics"].get("rft_signal", {}).items()],
                          schema={"method": pl.String, "seed": pl.Int64, "col_signal_share": pl.Float64,
                                  "col_mixed_share": pl.Float64, "col_adv_share": pl.Float64})
    table = table.join(signal, on=["method", "seed"], how="left")
    il = table.filter(pl.col("method") == "hpd_lir").select("seed", il_col=pl.col("col_avg"))
    table = table.join(il, on="seed").with_columns(
        col_rel_change=pl.when(pl.col("method").is_in(["worldrft", "rft_l2"]) & (pl.col("il_col") > 0))
        .then(pl.col("col_avg") / pl.col("il_col") - 1.0).otherwise(None)).drop("il_col")
    return order(table)


def order(df):
    import polars as pl

    rank = {m: i for i, m in enumerate(ORDER)}
    keys = [c for c in ("seed",) if c in df.columns]
    return df.with_columns(_o=pl.col("method").replace_strict(rank, default=99)).sort(["_o", *keys]).drop("_o")


def scenario_table(runs: dict):
    """Closed-loop collision rate (%) and PDMS per scenario type (mean over seeds)."""
    import polars as pl

    from hrlzoo.envs.driving.config import SCENARIOS

    cl = pl.concat([r["closed_loop"].with_columns(run=pl.lit(s)) for s, r in runs.items()])
    cl = cl.with_columns(scenario=pl.col("scenario").replace_strict(dict(enumerate(SCENARIOS)), return_dtype=pl.String))
    t = (cl.group_by("method", "scenario").agg((100 * pl.col("collision").cast(pl.Float64).mean()).round(1).alias("c"),
                                               (100 * pl.col("pdms").mean()).round(1).alias("p")))
    t = t.with_columns(cell=pl.format("{} / {}", "c", "p")).pivot("scenario", index="method", values="cell")
    return order(t.select("method", *[s for s in SCENARIOS if s in t.columns]))


def figures(runs: dict, table, summary, meta: dict, p: WorldRFTParams, folder: Path) -> list[str]:
    import numpy as np
    import polars as pl

    from hrlzoo.pipeline.report import plot_curves, plot_intervals

    folder.mkdir(parents=True)
    names = []
    first = next(iter(runs.values()))
    names.append(samples_figure(first["figures"], p, folder / "samples_over_rasters.png", next(iter(runs))))

    panels = ["l2_avg", "col_avg", "cl_collision", "pdms"]
    long = table.unpivot(index=["method", "seed"], on=panels, variable_name="metric", value_name="value")
    plot_intervals(summary.filter(pl.col("metric").is_in(panels)), x="method", group="method", facet="metric",
                   points=long, order=ORDER, ncols=4, path=folder / "results.png",
                   title="Test split: open-loop L2 (m) and collision rate (%), closed-loop collision rate (%) "
                         "and PDMS-like score", ylabel="")
    names.append("results.png")

    curves = pl.concat([r["curves"].with_columns(seed=pl.lit(s)) for s, r in runs.items()])
    for phase, metric, title, fname in (
            ("world_model", None, "World-model pretraining losses", "world_model_loss.png"),
            ("imitation", "l1", "Imitation: L1 of the final plan (m, summed over x, y)", "imitation_l1.png"),
            ("rft", None, "GRPO fine-tuning", "rft.png")):
        part = curves.filter(pl.col("phase") == phase)
        if part.height == 0:
            continue
        if metric is None:
            keep = {"world_model": ["latent", "geometry"],
                    "rft": ["reward", "sample_collision", "plan_collision", "plan_l2"]}[phase]
            part = part.filter(pl.col("metric").is_in(keep))
            plot_curves(part, x="step", y="value", group="method", facet="metric", ncols=4,
                        path=folder / fname, title=title, xlabel="gradient step", ylabel="")
        else:
            plot_curves(part.filter(pl.col("metric") == metric), x="step", y="value", group="method",
                        path=folder / fname, title=title, xlabel="gradient step", ylabel=metric)
        names.append(fname)
    return names


def samples_figure(fig_data: dict, p: WorldRFTParams, path: Path, seed) -> str:
    """Rasters of a few test frames (cropped to the road) with the expert's future, the
    imitation planner's and WorldRFT's plans and Gaussian samples (red: the sample collides
    with an agent's future box), and the agents' boxes at 1, 2, 3 s."""
    import numpy as np

    from hrlzoo.envs.driving.geometry import box_corners
    from hrlzoo.envs.driving.raster import draw, to_pixels
    from hrlzoo.pipeline.report import new_figure, save_figure

    rc = p.sim.raster
    bits = fig_data["raster_bits"]
    rasters = np.unpackbits(bits, axis=-1, count=bits.shape[-2])
    n = len(rasters)
    half = int(np.ceil(p.sim.road_width / rc.resolution)) + 2  # columns each side of the ego: the whole road
    fig, axes = new_figure(2, n, size=(1.9, 4.4))
    for i in range(n):
        for j, m in enumerate(("hpd_lir", "worldrft")):
            ax = axes[j][i]
            samples = fig_data[f"samples_{m}"][i]
            hit = fig_data[f"sample_collision_{m}"][i]
            plans = [*samples, fig_data["expert"][i], fig_data[f"plan_{m}"][i]]
            styles = ([{"color": "red" if h else "0.8", "linewidth": 0.6, "marker": None} for h in hit]
                      + [{"color": "lime", "linewidth": 1.2, "linestyle": "--", "marker": None},
                         {"color": "cyan", "linewidth": 1.2, "markersize": 3}])
            name = "imitation" if m == "hpd_lir" else "WorldRFT"
            draw(ax, rasters[i], rc, plans, styles, f"{name}, frame {int(fig_data['frame'][i])}\n"
                 f"{int(hit.sum())}/{len(hit)} samples collide")
            fut, valid = fig_data["agents_future"][i], fig_data["agents_valid"][i]
            for t, alpha in ((1, 0.35), (3, 0.6), (5, 0.9)):
                for a in np.flatnonzero(valid[t]):
                    px = to_pixels(box_corners(fut[t, a]), rc)
                    ax.plot(np.append(px[:, 1], px[0, 1]), np.append(px[:, 0], px[0, 0]), color="orange",
                            linewidth=0.6, alpha=alpha)
            ax.set_xlim(rc.size // 2 - half - 0.5, rc.size // 2 + half - 0.5)
    fig.suptitle(f"Test frames (seed {seed}) where the imitation plan collides first. Green dashed: expert; "
                 "cyan: plan;\ngrey / red: Gaussian samples (red collides); orange: agents' boxes at 1, 2, 3 s",
                 fontsize=9)
    save_figure(fig, path, dpi=90)
    return path.name


def body(ctx: Stage) -> None:
    """Gather every seed's evaluation, check WorldRFT's claims, write the report."""
    import json

    import numpy as np
    import polars as pl

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, markdown_table, metrics_dict, published_md,
                                        report_md_text, summary_md, write_seeds_csv)
    from stages.worldrft.train import run_dir

    p: WorldRFTParams = ctx.params
    runs = {}
    for seed in ctx.args.seeds:
        d = run_dir(seed)
        with np.load(d / "figures.npz") as z:
            figs = {k: z[k] for k in z.files}
        runs[seed] = {"open_loop": pl.read_parquet(d / "open_loop.parquet"),
                      "closed_loop": pl.read_parquet(d / "closed_loop.parquet"),
                      "long_rollout": pl.read_parquet(d / "long_rollout.parquet"),
                      "curves": pl.read_parquet(d / "curves.parquet"), "figures": figs,
                      "diagnostics": json.loads((d / "diagnostics.json").read_text())}
    meta = json.loads((DATAGEN / "meta.json").read_text())
    table = per_seed_table(runs)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, table, seeds=p.seeds)
    metrics = [*OPEN, *CLOSED.values(), *LONG.values()]
    summary = order(summarise(table, by=["method"], metrics=metrics, single_model=claims.single_model))
    rel = summarise(table.filter(pl.col("col_rel_change").is_not_null()), by=["method"], metrics=["col_rel_change"])
    signal_md = collision_signal_md(runs, table, p)
    wm_diag = pl.DataFrame([{"seed": s, **r["diagnostics"]["world_model"]} for s, r in runs.items()])
    wm_sum = summarise(wm_diag.with_columns(method=pl.lit("world_model")), by=["method"],
                       metrics=[c for c in wm_diag.columns if c != "seed"])

    curves = ctx.out(OUT / "curves")
    curves.mkdir(parents=True)
    allc = pl.concat([r["curves"] for r in runs.values()])
    for phase, metric, fname in (("imitation", "l1", "imitation_l1.csv"), ("rft", "plan_collision", "rft_plan_collision.csv"),
                                 ("rft", "reward", "rft_reward.csv"), ("world_model", None, "world_model_loss.csv")):
        part = allc.filter(pl.col("phase") == phase)
        if metric is None:
            part = part.filter(pl.col("metric").is_in(["latent", "geometry"])).with_columns(method=pl.col("metric"))
        else:
            part = part.filter(pl.col("metric") == metric)
        (part.group_by("method", "step").agg(pl.col("value").mean())
         .pivot("method", index="step", values="value", sort_columns=True).sort("step")
         .write_csv(curves / fname, float_precision=5))
    figs = figures(runs, table, summary, meta, p, ctx.out(OUT / "figures"))

    extra = {"title": TITLE, "col_rel_change": {r["method"]: r["mean"] for r in rel.iter_rows(named=True)},
             "expert_datagen": meta["expert"]["all"]}
    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict("worldrft", p.scale, summary, verdicts, extra)))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), table)

    s, e = sizes(p), sizes(p).eval
    splits = meta["splits"]
    setup = (
        f"Scale `{p.scale}`, training seeds {p.seeds} (each retrains everything). Data: expert logs of our "
        f"driving simulator, {splits['train']['frames']} train / {splits['val']['frames']} val / "
        f"{splits['test']['frames']} test frames from {splits['train']['scenes']} / {splits['val']['scenes']} / "
        f"{splits['test']['scenes']} scenes (split by scene seed), 8-channel 64x64 rasters (1.5 m/pixel), "
        f"3 s futures at 2 Hz. The expert collides in {meta['expert']['all']['collision_pct']}% of the scenes "
        f"(cut-ins: {meta['expert'].get('cut_in', {}).get('collision_pct', 'n/a')}%). Training per seed: "
        f"world model {s.train.wm_steps} steps x {s.train.wm_batch} pairs; every planner {s.train.il_steps} "
        f"imitation steps x {s.train.il_batch} frames (the same batches for all three); GRPO "
        f"{s.train.rft_steps} steps x {s.train.rft_scenes} scenes x G = {p.rft.group}. Evaluation: open loop on "
        f"every test frame; closed loop (traffic reacts, the planner replans every 0.5 s) in NAVSIM-style "
        f"episodes: on {e.closed_loop_scenes} scenes of the test seed range (the {splits['test']['scenes']} logged "
        f"test scenes and new ones) the expert drives {e.handover_starts} frames, then the planner "
        f"{e.handover_frames * p.sim.dt:g} s; and in long rollouts of the logged test scenes from their start "
        f"({e.long_frames * p.sim.dt:g} s). "
        "Every number is the mean over seeds with its 95% t interval (per-seed values: `seeds.csv`); `expert` "
        "(the logged future, its own collisions included) and `constant_velocity` are references, the same "
        "for every seed, so they count as one model (n = 1, no interval).")
    published = published_md([
        {"benchmark": "nuScenes (open loop)", "metric": "collision rate", "before RFT": "0.30%",
         "WorldRFT": "0.05% (-83%)", "source": "paper abstract"},
        {"benchmark": "NavSim (closed loop)", "metric": "PDMS", "before RFT": "unknown", "WorldRFT": "87.8",
         "source": "paper abstract (camera-only; DiffusionDrive, LiDAR: 88.1)"}])
    sections = [
        ("Setup", setup),
        ("Results", "Open loop (test frames; L2 in m, rates in %):\n\n"
         + summary_md(summary.filter(pl.col("metric").is_in(list(OPEN))), single_model=claims.single_model)
         + "\n\nClosed loop in our simulator, NAVSIM-style 4 s episodes handed over from the expert "
         f"({len(e.handover_starts)} handover times x {e.closed_loop_scenes} scenes; rates in %, PDMS x 100):\n\n"
         + summary_md(summary.filter(pl.col("metric").is_in(list(CLOSED.values()))), single_model=claims.single_model)
         + f"\n\nLong closed-loop rollouts of the logged test scenes ({e.long_frames * p.sim.dt:g} s from the "
         "start; errors compound):\n\n"
         + summary_md(summary.filter(pl.col("metric").is_in(list(LONG.values()))), single_model=claims.single_model)
         + "\n\nRelative change of the open-loop collision rate against hpd_lir of the same seed:\n\n"
         + summary_md(rel)),
        ("Collision signal", signal_md),
        *claims_sections(claims, verdicts, diagnosis(table, verdicts, runs) + "\n\n" + DIAGNOSIS),
        ("Closed-loop collision % / PDMS per scenario (mean over seeds)", markdown_table(scenario_table(runs))),
        ("World-model diagnostics (val split)",
         "Latent-prediction MSE with the true plan, with another frame's plan (shuffled), and of copying "
         "the present latent (no dynamics); geometry losses of the decoder:\n\n" + summary_md(wm_sum)),
        ("Figures", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("Published numbers", published),
        ("Our reading of the paper (no official code)", "\n".join(f"- {d}" for d in our_reading(p))),
        ("Deviations from the paper", "\n".join(f"- {d}" for d in DEVIATIONS)),
        ("Reproduce", "```\nmake repro PAPER=worldrft         # or: dvc repro worldrft_report\n"
         "snakemake --cores 2 reports/worldrft/metrics.json\n```"),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


def collision_signal_md(runs: dict, table, p: WorldRFTParams) -> str:
    """The collision signal GRPO gets (method.collision_signal): probed on the imitation planner
    before RFT under the declared and the earlier settings, measured on every training group
    of both RFT runs; the interactive frames; the validation pilot that chose the settings."""
    import polars as pl

    from hrlzoo.pipeline.claims import summarise
    from hrlzoo.pipeline.report import summary_md

    probe = pl.DataFrame([{"method": name, "seed": seed, "signal_share": v["signal_share"], "col_adv_share": v["col_adv_share"],
                           "mixed_share": v["mixed_share"], "sample_collision": v["sample_collision"]}
                          for seed, r in runs.items() for name, v in r["diagnostics"].get("signal_probe", {}).items()])
    r = p.rft
    parts = [
        "GRPO's advantage is linear in the reward's terms, so the collision term's part of it can be measured "
        "exactly: in a group of G samples of one scene it is -w_col (c_i - mean c) / std R, non-zero only where "
        "the group holds both colliding and collision-free samples. Declared sampling (params `rft`): "
        f"G = {r.group}, std {r.sigma_lon[0]:g}-{r.sigma_lon[1]:g} m along and {r.sigma_lat[0]:g}-{r.sigma_lat[1]:g} m "
        f"across the heading, noise correlation rho = {r.noise_corr:g} between waypoints, {100 * r.interactive_share:g}% "
        f"of each batch from the interactive training frames (the ego box grown by {r.interactive_margin:g} m on the "
        "expert's or the constant-velocity path meets an agent's box)."]
    if probe.height:
        names = ", ".join(f"`{n}`" for n in probe["method"].unique(maintain_order=True) if n != "declared")
        parts.append(f"Before RFT, on the imitation planner (`hpd_lir`), {sizes(p).train.probe_steps} training batches "
                     f"drawn as RFT draws them, under the declared setting and under {names} (rft.probe; no training): "
                     "share of groups with a non-zero collision advantage (`signal_share`), whose collision flag varies "
                     "(`mixed_share`), the collision term's share of sum |A| (`col_adv_share`), samples that collide:\n\n"
                     + summary_md(summarise(probe, by=["method"], metrics=["signal_share", "mixed_share", "col_adv_share",
                                                                           "sample_collision"])))
    during = table.filter(pl.col("col_signal_share").is_not_null())
    if during.height:
        parts.append("During RFT, over every training group of each run (the gate `collision_signal` reads "
                     "`col_signal_share` of `worldrft`; `rft_l2` has no collision term, so its signal is 0 by "
                     "construction and `col_mixed_share` shows what a collision term would have found):\n\n"
                     + summary_md(summarise(during, by=["method"], metrics=["col_signal_share", "col_mixed_share",
                                                                            "col_adv_share"])))
    inter = pl.DataFrame([{"method": m, "seed": seed, "val_col_interactive": v.get("col_avg_interactive"),
                           "val_col_other": v.get("col_avg_other")}
                          for seed, r_ in runs.items() for m, v in r_["diagnostics"].get("val", {}).items()
                          if m in ("hpd_lir", "worldrft", "rft_l2")])
    shares = [r_["diagnostics"].get(k) for r_ in runs.values() for k in ("interactive_train_share", "interactive_val_share")]
    if inter.height and None not in shares:
        first = next(iter(runs.values()))["diagnostics"]
        parts.append(f"Interactive frames: {100 * first['interactive_train_share']:.1f}% of the training frames, "
                     f"{100 * first['interactive_val_share']:.1f}% of the val frames (a property of the logs, the same "
                     "for every seed). Open-loop collision rate (%) on the val split in interactive and other frames:\n\n"
                     + summary_md(summarise(inter, by=["method"], metrics=["val_col_interactive", "val_col_other"])))
    if SELECTION.with_suffix(".md").exists():
        parts.append("How the declared setting was chosen (on the val split, before the committed run; "
                     f"`{SELECTION.with_suffix('.md')}`):\n\n" + SELECTION.with_suffix(".md").read_text().strip())
    return "\n\n".join(parts)


def diagnosis(table, verdicts, runs) -> str:
    """What the numbers say (generated from them, so it stays true at any scale)."""
    import polars as pl

    def mean(m, k):
        part = table.filter(pl.col("method") == m)[k].drop_nulls()
        return float(part.mean()) if len(part) else float("nan")

    lines = ["Reading of the numbers above (written from them by the report stage):", ""]
    probes = {}
    for r in runs.values():
        for name, v in r["diagnostics"].get("signal_probe", {}).items():
            probes.setdefault(name, []).append(v["signal_share"])
    if probes:
        lines.append("- Collision signal before RFT (share of GRPO groups with a non-zero collision advantage, "
                     "imitation planner, mean over seeds): " + ", ".join(
                         f"`{k}` {100 * sum(v) / len(v):.1f}%" for k, v in probes.items())
                     + f"; over collision-aware RFT's training groups: {100 * mean('worldrft', 'col_signal_share'):.1f}% "
                     f"(the gate asks for 20%), its collision term {100 * mean('worldrft', 'col_adv_share'):.1f}% of "
                     "sum |A|.")
    lines.append(f"- Open-loop collision rate: imitation `hpd_lir` {mean('hpd_lir', 'col_avg'):.2f}%, "
                 f"collision-aware RFT `worldrft` {mean('worldrft', 'col_avg'):.2f}%, L2-only RFT `rft_l2` "
                 f"{mean('rft_l2', 'col_avg'):.2f}%, the logged expert {mean('expert', 'col_avg'):.2f}%. "
                 f"L2 (mean of 1-3 s): {mean('hpd_lir', 'l2_avg'):.3f} / {mean('worldrft', 'l2_avg'):.3f} / "
                 f"{mean('rft_l2', 'l2_avg'):.3f} m.")
    lines.append(f"- Closed loop: collision {mean('hpd_lir', 'cl_collision'):.1f}% (hpd_lir) vs "
                 f"{mean('worldrft', 'cl_collision'):.1f}% (worldrft) vs {mean('expert', 'cl_collision'):.1f}% (expert); "
                 f"PDMS {mean('hpd_lir', 'pdms'):.1f} / {mean('worldrft', 'pdms'):.1f} / {mean('expert', 'pdms'):.1f}; "
                 f"progress {mean('hpd_lir', 'cl_progress_m'):.1f} / {mean('worldrft', 'cl_progress_m'):.1f} / "
                 f"{mean('expert', 'cl_progress_m'):.1f} m.")
    lines.append(f"- Planners at equal imitation steps: L2 global {mean('global', 'l2_avg'):.3f}, hpd_lir "
                 f"{mean('hpd_lir', 'l2_avg'):.3f}, hpd_lir_scratch {mean('hpd_lir_scratch', 'l2_avg'):.3f} m; "
                 f"collisions {mean('global', 'col_avg'):.2f} / {mean('hpd_lir', 'col_avg'):.2f} / "
                 f"{mean('hpd_lir_scratch', 'col_avg'):.2f}%.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("seeds", nargs="+", type=int)

    def validate(args, p):
        if sorted(args.seeds) != sorted(p.seeds):
            return f"seeds {args.seeds}: expected the params' seeds {p.seeds} (dvc.yaml lists one train stage each)"
        return None

    return run_stage("worldrft_report", "worldrft", WorldRFTParams, body, argv, add_args=add_args,
                     validate_args=validate, outputs=lambda a, p: [
                         str(OUT / "curves"), str(OUT / "figures"), str(OUT / "metrics.json"), str(OUT / "report.md"),
                         str(OUT / "seeds.csv")])


if __name__ == "__main__":
    sys.exit(main())
