"""Stage hamnet_report: success per method and split, learning curves, contact AUROC, module usage,
rendered evaluation episodes, and the claims' verdicts.

    python -m stages.hamnet.report

Reads data/hamnet/encoder/ and data/hamnet/runs/<method>/, writes reports/hamnet/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hamnet.params import SPLITS, HAMNetParams, sizes
from stages.hamnet.train import RUN_ROOT

OUT = Path("reports/hamnet")
ENC_DIR = Path("data/hamnet/encoder")
CLAIMS = Path("stages/hamnet/claims.yaml")
TITLE = "HAMNet: hierarchical and modular network for non-prehensile manipulation (planar pushing, pymunk)"
ORDER = ("hamnet", "monolithic", "hamnet_scratch", "hamnet_vs_monolithic", "hamnet_shuffled", "encoder")

DEVIATIONS = [
    "Substrate: planar pushing in pymunk (2-D rigid bodies, floor friction by pivot + gear joints) instead of a "
    "Franka arm in Isaac Gym; the hand is a disk under planar velocity control (action 2-D, not 7 joint targets + "
    "gains); geometries (wall, pocket, corridor, obstacles) and floor friction patches stand in for the paper's "
    "cabinets, ceilings and steps (spec A §7.5). Goals are planar poses (x, y, yaw).",
    "Scale: 5 seeds x 16 worlds, rollout 32 (HAMNet: 1024 worlds, rollout 8), networks narrower (base 64-64, "
    "modulation 128-128, tokens 32-d; HAMNet 256-128-128-64, 256-256, 128-d); M = 8 modules as HAMNet.",
    "The value head is one scalar (HAMNet's critic has 6 heads, one per reward term).",
    "One environment cloud (the nearest static-geometry points) instead of HAMNet's focal and peripheral clouds; "
    "its tokens are pooled by one cross-attention whose query comes from hand and object state (HAMNet's "
    "cross_big pooling); the object's hand token stands for HAMNet's 'last' cloud token in the context.",
    "Patches: consecutive points of the angularly sorted 2-D clouds (CORN groups 3-D points by FPS + kNN).",
    "Contact labels are geometric (distance < 5 mm), drawn in generated scenes, not from physics rollouts; CORN's "
    "ColModel applies its hand-contact decoder to both heads, ours has one decoder per head.",
    "hamnet_scratch trains the encoder end to end with PPO from random weights (the encoder is part of the policy); "
    "the pretrained encoder is frozen and its tokens enter the observation, as HAMNet's UNICORN embeddings do.",
    "Per-seed KL-adaptive learning rate: Adam steps at the base rate and each seed's parameter change is scaled "
    "by its own lr scale (exact for Adam); an early-stopped seed's parameters and Adam moments are restored, only "
    "Adam's shared step counter advances (hrlzoo/algos/ppo.py).",
    "Our reading: the log-potential constant k = 20 / m, the keypoints (+-r on the object's axes), success "
    "tolerances (3 cm, 0.3 rad), the domain-randomisation ranges mapped to 2-D, the monolithic widths chosen to "
    "match HAMNet's modulation network + module sets in parameters, the module-specialisation statistic and its "
    "permutation null.",
]


def specialisation(probs: np.ndarray, geometry: np.ndarray) -> float:
    """Mean over parameter tensors and geometries of TV(mean p | geometry, mean p) (claims.yaml)."""
    overall = probs.mean(0)                                    # [P, M]
    tv = [0.5 * np.abs(probs[geometry == g].mean(0) - overall).sum(-1).mean() for g in np.unique(geometry)]
    return float(np.mean(tv))


def table(p: HAMNetParams):
    import polars as pl

    ev = pl.concat([pl.read_parquet(RUN_ROOT / m / "eval.parquet") for m in p.methods])
    t = ev.group_by("method", "seed", "split").agg(success=pl.col("success").cast(pl.Float64).mean())
    curve = pl.concat([pl.read_parquet(RUN_ROOT / m / "curve.parquet") for m in p.methods])
    auc = curve.group_by("method", "seed").agg(train_auc=pl.col("success").fill_nan(None).mean()).with_columns(
        split=pl.lit("train"))
    t = t.join(auc, on=["method", "seed", "split"], how="left")
    rows = []
    if {"hamnet", "monolithic"} <= set(p.methods):
        h = t.filter(pl.col("method") == "hamnet").select("seed", "split", h="success")
        m = t.filter(pl.col("method") == "monolithic").select("seed", "split", m="success")
        rows.append(h.join(m, on=["seed", "split"]).select(method=pl.lit("hamnet_vs_monolithic"), seed="seed",
                                                            split="split", success_gap=pl.col("h") - pl.col("m")))
    usage = None
    if (RUN_ROOT / "hamnet" / "usage.npz").exists():
        usage = dict(np.load(RUN_ROOT / "hamnet" / "usage.npz"))
        spec = []
        for seed in p.seeds:
            sel = usage["seed"] == seed
            pr, geo = usage["probs"][sel], usage["geometry"][sel]
            perm = np.random.default_rng([seed, 7]).permutation(len(geo))
            spec.append({"method": "hamnet", "seed": seed, "split": "all", "module_specialisation": specialisation(pr, geo)})
            spec.append({"method": "hamnet_shuffled", "seed": seed, "split": "all",
                         "module_specialisation": specialisation(pr, geo[perm])})
        rows.append(pl.DataFrame(spec))
    enc = json.loads((ENC_DIR / "metrics.json").read_text())
    rows.append(pl.DataFrame([{"method": "encoder", "seed": seed, "split": split, "auroc_hand": enc[split]["auroc_hand"][i],
                               "auroc_env": enc[split]["auroc_env"][i]}
                              for split in ("train", "heldout_shape") for i, seed in enumerate(enc["seeds"])]))
    t = pl.concat([t, *rows], how="diagonal_relaxed")
    return t.sort("method", "seed", "split"), curve, ev, usage, enc


def draw_frames(frames: list, folder: Path, tag: str, per_episode: int = 5) -> list[str]:
    """One PNG per recorded evaluation episode: `per_episode` snapshots from its start to its end."""
    from matplotlib.patches import Polygon, Circle

    from hrlzoo.pipeline.report import new_figure, save_figure

    names = []
    for j, ep in enumerate(frames):
        shots = ep["snapshots"]
        idx = np.unique(np.linspace(0, len(shots) - 1, per_episode).round().astype(int))
        pts = np.concatenate([np.concatenate(sh["parts"] + sh["goal_parts"] + [sh["hand"][None]]) for sh in shots])
        lo, hi = pts.min(0), pts.max(0)
        centre, half = (lo + hi) / 2, max(0.15, float((hi - lo).max()) / 2 + 0.05)   # the view: the episode's region
        fig, axes = new_figure(1, len(idx), size=(2.4, 2.6))
        for ax, i in zip(axes[0], idx):
            s = shots[i]
            if s["patch"] is not None:
                ax.add_patch(Polygon(s["patch"], closed=True, color="#f2c14e" if s["patch_mu"] > 0.5 else "#9ad0f5",
                                     alpha=0.5, lw=0))
            for a, b in s["walls"]:
                ax.plot([a[0], b[0]], [a[1], b[1]], color="k", lw=1.5)
            for part in s["goal_parts"]:
                ax.add_patch(Polygon(part, closed=True, fill=False, ec="tab:green", ls="--", lw=1.2))
            for part in s["parts"]:
                ax.add_patch(Polygon(part, closed=True, color="tab:blue", alpha=0.8))
            ax.add_patch(Circle(s["hand"], s["hand_radius"], color="tab:red"))
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] - half, centre[1] + half)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"step {i}", fontsize=8)
        fig.suptitle(f"{tag}, {ep['split']}: {shots[0]['title']} ({'success' if ep['success'] else 'failure'})",
                     fontsize=9)
        name = f"episode_{tag}_{ep['split']}_{j}.png"
        save_figure(fig, folder / name)
        names.append(name)
    return names


def usage_figure(usage: dict, path: Path, modules: int, seed: int) -> None:
    """Mean module probabilities per geometry (rows) for the actor's and the critic's first weight, of one
    seed (module indices mean nothing across seeds)."""
    from hrlzoo.pipeline.report import new_figure, save_figure

    sel = usage["seed"] == seed
    usage = {k: v[sel] for k, v in usage.items()}
    geos = sorted(np.unique(usage["geometry"]).tolist())
    P = usage["probs"].shape[1]
    fig, axes = new_figure(1, 2, size=(4.5, 3.2))
    for ax, (pi, name) in zip(axes[0], ((0, "actor layer 1 weight"), (P // 2, "critic layer 1 weight"))):
        mat = np.stack([usage["probs"][usage["geometry"] == g][:, pi].mean(0) for g in geos])
        im = ax.imshow(mat, aspect="auto", cmap="viridis", vmin=0)
        ax.set_yticks(range(len(geos)), geos, fontsize=8)
        ax.set_xticks(range(modules), [str(m) for m in range(modules)], fontsize=8)
        ax.set_xlabel("module")
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"HAMNet module usage, seed {seed}: mean softmax over the M modules per environment geometry\n"
                 "(its evaluation episodes, all splits)", fontsize=9)
    save_figure(fig, path)


def body(ctx: Stage) -> None:
    """Gather the runs, judge the claims, write the report."""
    import polars as pl
    import torch

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, metrics_dict, plot_curves, plot_intervals,
                                        report_md_text, summary_md, write_seeds_csv)

    p: HAMNetParams = ctx.params
    sz = sizes(p)
    t, curve, ev, usage, enc = table(p)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, t, seeds=p.seeds)
    metrics = ["success", "train_auc", "success_gap", "module_specialisation", "auroc_hand", "auroc_env"]
    summary = summarise(t, by=["split", "method"], metrics=metrics).filter(pl.col("n") > 0)
    rank = {m: i for i, m in enumerate(ORDER)}
    summary = summary.with_columns(_o=pl.col("method").replace_strict(rank, default=99)).sort("split", "_o").drop("_o")
    curves = ctx.out(OUT / "curves")
    curves.mkdir(parents=True)
    (curve.group_by("method", "step").agg(pl.col("success").fill_nan(None).mean())
     .pivot("method", index="step", values="success", sort_columns=True).sort("step")
     .write_csv(curves / "train_success.csv", float_precision=4))
    figs_dir = ctx.out(OUT / "figures")
    figs_dir.mkdir(parents=True)
    plot_curves(curve.with_columns(pl.col("success").fill_nan(None)).drop_nulls("success"), x="step", y="success",
                group="method",
                path=figs_dir / "train_success.png", title="Training success (episodes between curve points)",
                xlabel="env steps per seed", ylabel="success")
    plot_intervals(summary, x="split", group="method", metric="success", path=figs_dir / "success_by_split.png",
                   title="Evaluation success per split (mean, 95% t interval over seeds)", ylabel="success",
                   order=list(SPLITS))
    figs = ["train_success.png", "success_by_split.png"]
    if usage is not None and len(usage["probs"]):
        usage_figure(usage, figs_dir / "module_usage.png", p.policy.modules, p.seeds[0])
        figs.append("module_usage.png")
    for m in ("hamnet", "monolithic"):
        if (RUN_ROOT / m / "frames.pt").exists():
            figs += draw_frames(torch.load(RUN_ROOT / m / "frames.pt", weights_only=False), figs_dir, m)
    per_geo = (ev.filter(pl.col("split") != "heldout_shape").group_by("method", "seed", "geometry", "floor")
               .agg(success=pl.col("success").cast(pl.Float64).mean()))
    geo_sum = summarise(per_geo.with_columns(env=pl.col("geometry") + "+" + pl.col("floor")), by=["env", "method"],
                        metrics=["success"])
    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict("hamnet", p.scale, summary, verdicts,
                                                                     {"title": TITLE})))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), t)
    held = ", ".join("+".join(c) for c in p.env.heldout_envs)
    setup = (f"Scale `{p.scale}`, seeds {p.seeds} (each method trains every seed in one batched network). Planar "
             f"pushing (pymunk): {p.env.max_steps} control steps of {p.env.substeps} x {p.env.dt} s, success within "
             f"{p.env.pos_tol} m and {p.env.ang_tol} rad; layouts = geometry x floor, held-out combinations {held}, "
             f"held-out shapes {', '.join(p.env.heldout_shapes)}. Contact pretraining: {sz.pretrain_samples} scenes, "
             f"{sz.pretrain_steps} steps of {sz.pretrain_batch}; encoder {p.encoder.layers} layers, {p.encoder.dim}-d, "
             f"patches of {p.encoder.patch} points. PPO (HAMNet's settings): {sz.worlds} worlds x {sz.rollout} steps "
             f"per rollout per seed, {sz.total_steps} env steps per seed, {p.ppo.epochs} full-batch epochs, clip "
             f"{p.ppo.clip}, k_pi {p.ppo.pg_coef}, k_val {p.ppo.vf_coef}, k_bound {p.ppo.bound_coef}, KL target "
             f"{p.ppo.kl_target}. HAMNet M = {p.policy.modules} modules, base {p.policy.hidden}, modulation "
             f"{p.policy.wnet}. Evaluation: {sz.eval_episodes} episodes per seed and split, deterministic policy. "
             f"Every number is the mean over seeds with its 95% t interval.")
    sections = [
        ("Setup", setup),
        ("Results", summary_md(summary)),
        ("Success per environment combination (train and held-out combinations)", summary_md(geo_sum)),
        *claims_sections(claims, verdicts, ""),
        ("Figures", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("Reading of the committed run", READING),
        ("Deviations", "\n".join(f"- {d}" for d in DEVIATIONS)),
        ("Rebuild time", REBUILD_TIME),
        ("Reproduce", "```\nmake repro PAPER=hamnet            # or: dvc repro hamnet_report\n"
         "snakemake --cores 2 reports/hamnet/metrics.json\n```"),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


REBUILD_TIME = (
    "Measured 2026-12-07 (`make repro PAPER=hamnet` under the team's heavy lock, 2 cores): 38:28 wall. Contact "
    "pretraining 1:25; PPO 16:40 (hamnet) and 16:08 (monolithic) side by side, then 20:10 (hamnet_scratch) mostly "
    "alone, because no time was recorded yet to start the longest stage first (`make repro` orders by the recorded "
    "times from now on: about 34 min); the report 0:07. The sizing pilot had projected 25 min.")

READING = """Our reading of the run committed on 2026-12-07 (`cpu`, 5 seeds; written after the results). The contact
pretraining works (hand-contact AUROC 0.96 on fresh scenes of both the training and the held-out shapes), but no
policy learns to push at this budget: 250k env steps per seed give HAMNet 0.08 success on the training layouts
(0.05-0.13 over seeds), HAMNet from scratch 0.10 and the monolithic MLP 0.02 (0.00-0.05), against the gate's 0.3.
So the registered gate fails and every claim is untestable, though HAMNet is ahead of the monolithic MLP on every
split, and on every seed of the training layouts (+0.06 [0.03, 0.09] on train; the paper's direction) and its training curve rises faster (train_auc
+0.026 [0.016, 0.036]). HAMNet trains on 1024 worlds for far more steps; what budget moves the monolithic policy
past 0.3 is not measured. The modules do not specialise measurably (0.022 against 0.022 for shuffled layouts)."""


def main(argv: list[str] | None = None) -> int:
    return run_stage("hamnet_report", "hamnet", HAMNetParams, body, argv, outputs=lambda a, p: [
        str(OUT / "curves"), str(OUT / "figures"), str(OUT / "metrics.json"), str(OUT / "report.md"),
        str(OUT / "seeds.csv")])


if __name__ == "__main__":
    sys.exit(main())
