"""Stage hiclr_report: linear and kNN top-1 per split, method and stream, the supervised upper
bound, pretraining curves, rendered skeletons, the claims' verdicts.

    python -m stages.hiclr.report

Reads data/hiclr/{datagen, pretrain/<split>, supervised/<split>, eval/<split>}; writes
reports/hiclr/ (metrics.json, report.md, seeds.csv, curves/*.csv for `dvc plots`, figures/*.png).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hiclr.common import DATAGEN, EVAL, SUPERVISED, pretrain_dir
from stages.hiclr.params import SPLITS, HiCLRParams, parse_run, sizes

OUT = Path("reports/hiclr")
CLAIMS = Path("stages/hiclr/claims.yaml")
TITLE = "HiCLR: Hierarchical Consistent Contrastive Learning for Skeleton-Based Action Recognition"
ORDER = ("skeletonclr", "naive_strong", "no_h2", "hiclr", "supervised")
STREAM_ORDER = ("joint", "motion", "bone", "ensemble")

DEVIATIONS = [
    "Data: procedural actions on the NTU RGB+D 25-joint layout (hrlzoo/envs/skeleton.py: motion programs over "
    "joint angles in 8 families of 3 classes, subjects with body shape, style and handedness, three cameras "
    "at -45/0/+45 degrees, depth-sensor artefacts), preprocessed as the official NTU pipeline (centre on joint "
    "21, resize to T frames, y-rotation of the shoulders); one actor per sequence (the official tensor has two "
    "person slots). NTU-60 itself cannot be downloaded here.",
    "Seeds are trained together as the members of one batched ST-GCN (grouped convolutions, per-member "
    "BatchNorm and edge importances, hrlzoo/nets/stgcn.py): each member sees its own minibatches, views and "
    "initial weights, so this equals separate runs; dropout draws come from one global generator.",
    "Initialisation: the official `weights_init` (conv/linear N(0, 0.02), BN N(1, 0.02)) is applied to the "
    "whole model after HiCLR.__init__ copies q into k, so the official query and key encoders start from "
    "independent draws; ours do the same.",
    "Baselines are our reading: SkeletonCLR = MoCo on the basic views only (no mining, as net/skeletonclr.py); "
    "`naive_strong` = MoCo with the strong view (basic + flip, rotate, noise, blur, axis mask) as the query "
    "and a basic key; `no_h2` = HiCLR without its masked branch (L = L_info + L_h1, mining over two branches). "
    "The paper's AimCLR comparison and its other strong augmentations (edge drop/add, SkeleAdaIN) are not run "
    "(the release config uses only the joint mask).",
    "The supervised upper bound trains the same encoder with labels from scratch using the finetune recipe "
    "(the official finetune starts from the pretext weights).",
    "Linear evaluation standardises the frozen features (train part's mean and std per dimension, applied to "
    "train and test; learners.standardise) before the official SGD head (lr 3, momentum 0.9, wd 0). A fixed "
    "affine map folded into a linear classifier leaves its function class unchanged. Found in the pilot "
    "(2026-12-07): pooled features of our encoders vary across samples by ~1e-4 of their norm (measured: "
    "norm 1.37, across-sample std 2e-4 on a 4-block encoder), so the raw-feature head stayed at chance (4.2%) "
    "after its ~1k steps while kNN (cosine) reached 29-59%; standardised, the same head reaches 53-57% on a "
    "random encoder. The official head runs ~30k steps on NTU-60. Changed after the pilot, before the committed "
    "run; kNN still uses the raw features.",
    "kNN (k = 20, temperature 0.07, InstDisc's weighting) is ours: the official code evaluates only linear, "
    "finetune and semi-supervised protocols. The three-stream ensemble sums the test logits with weights "
    "0.5/0.5/0.5 (ensemble_ntu_cs.py's average fusion), fixed before results.",
]


READING = """Our reading of the run committed on 2026-12-08 (`cpu` scale, 5 seeds; the tables above are
that run; rebuilt in 28:21 with `make repro PAPER=hiclr` on 2 cores, nothing else running). It was
written for that run, so check it still applies to another:

- **The gates hold, so every claim is judged.** The run of 2026-12-07 trained the supervised bound
  for 15 epochs (a cut for time) and read `supervised >= 90%` inconclusive (x-sub 91.3
  [88.6, 94.0], x-view 90.3 [87.4, 93.2]), which left every claim untestable. This run trains the
  official finetune's 70 epochs and reaches 96.5 [96.1, 96.9] (x-sub) and 97.7 [95.3, 100.0]
  (x-view). The gates' text and value did not change; because the recipe changed after a result,
  they and the claims naming them are marked post-hoc. SkeletonCLR stays in its registered room
  (47% x-sub, 53% x-view).
- **Reproduced:** HiCLR beats SkeletonCLR by 19.6 (x-sub) and 18.0 (x-view) points, more than the
  paper's 9; the first hierarchy level (the strong branch pulled toward the basic one) adds 21
  points; the three-stream ensemble beats the joint stream by 24 points.
- **Not reproduced:** strong augmentation placed directly in InfoNCE does not hurt here: it beats
  SkeletonCLR by 25 points, and HiCLR does not beat it (-5.9 [-12.5, 0.7] on x-sub). The paper's
  premise is that strong augmentations distort skeletons enough to hurt when used directly; on our
  generated data they do not. Our reading: the generator's nuisances (camera yaw and pitch, body
  shape, handedness) are what flip and rotation undo, so the strong views are simply better views
  here. That is a property of our substrate, a hypothesis we have not tested, and it is the
  likeliest reason the hierarchy's advantage over direct use does not show.
- **Inconclusive:** the second level (the masked branch) adds nothing measurable on either split
  (-1.6 [-4.7, 1.4] x-sub, 0.6 [-5.5, 6.7] x-view).
- **Streams.** The bone stream (80%) beats the joint stream (67%) on x-sub, where the released
  models have joint 77.3 above bone 75.6; the three-stream ensemble (90%) is above every single
  stream, as the released 3s-HiCLR is.
- **Run to run.** The self-supervised rows moved by up to 1.1 points per seed against the
  2026-12-07 run although their code and params did not change (kNN of SkeletonCLR is identical,
  the linear heads on it are not): `cpu`-scale training is not bit-identical between those two
  runs, which ran on different hosts (this workspace is rebuilt between sittings). The novelty
  recommender's report measures the likely cause: each stage is deterministic on one host, but its
  bytes depend on the CPU's vector kernels (forcing torch's or MKL's AVX2 kernels on this AVX-512
  host changes them). Every verdict but the supervised
  gates' is the same in both runs (the 2026-12-07 claims table's "without the gate" column).
  `smoke` outputs are byte-identical between the Snakemake and DVC runs in CI."""

def differs(ours, official, what: str) -> str:
    """'<ours> <what> instead of <official>, ' where the scale departs from the paper, else ''."""
    return "" if ours == official else f"{ours} {what} instead of {official}, "


def sizes_deviation(p: HiCLRParams) -> str:
    """The size deviations of the run's scale against the `paper` sizes, from params."""
    s, o = sizes(p), p.sizes["paper"]
    return (f"Sizes at `{p.scale}` scale (see Setup): a {len(s.encoder.channels)}-block ST-GCN instead of "
            f"{len(o.encoder.channels)} blocks, T = {s.data.frames} frames instead of {o.data.frames}, a queue of "
            f"{s.queue_size} instead of {o.queue_size}, batch {s.pretrain_batch} instead of {o.pretrain_batch}, "
            f"{s.pretrain_epochs} pretraining epochs instead of {o.pretrain_epochs}, {s.linear_epochs} linear-eval "
            f"epochs instead of {o.linear_epochs}, {differs(s.supervised_epochs, o.supervised_epochs, 'supervised epochs')}"
            f"key-encoder momentum {s.momentum} instead of {o.momentum} (with few epochs of "
            "about 20 steps, 0.999 would leave the key encoder near its initialisation: our reading). Epoch "
            "boundaries (LR step at 250/300, nearest-neighbour mining from 150/300, linear-eval step at 80/100, "
            "finetune warm-up and steps) are kept as fractions.")


def results_table(p: HiCLRParams):
    """One row per (split, method, stream, seed): linear_top1, knn_top1 (supervised: top-1, no kNN)."""
    import polars as pl

    parts = [pl.read_parquet(EVAL / s / "results.parquet") for s in SPLITS]
    parts += [pl.read_parquet(SUPERVISED / s / "results.parquet") for s in SPLITS]
    return pl.concat(parts, how="vertical_relaxed").sort("split", "method", "stream", "seed")


def pretrain_curves(p: HiCLRParams):
    import polars as pl

    frames = []
    for run in p.runs:
        split, method, stream = parse_run(run)
        df = pl.read_parquet(pretrain_dir(run) / "curves.parquet")
        frames.append(df.with_columns(split=pl.lit(split), method=pl.lit(method), stream=pl.lit(stream)))
    return pl.concat(frames)


def order(df, col="method"):
    import polars as pl

    rank = {m: i for i, m in enumerate(ORDER)}
    srank = {m: i for i, m in enumerate(STREAM_ORDER)}
    return (df.with_columns(_o=pl.col(col).replace_strict(rank, default=99),
                            _s=pl.col("stream").replace_strict(srank, default=99))
            .sort("split", "_s", "_o").drop("_o", "_s"))


def render_skeletons(folder: Path, p: HiCLRParams) -> str:
    """One sequence per class (camera 2, the first subject), five frames overlaid, front view."""
    import numpy as np
    import polars as pl

    from hrlzoo.envs.skeleton import draw_skeleton
    from hrlzoo.pipeline.report import new_figure, save_figure

    meta = pl.read_parquet(DATAGEN / "meta.parquet").with_row_index("row")
    x = np.load(DATAGEN / "skeletons.npy", mmap_mode="r")
    classes = list(p.data.classes)
    cols = 6
    rows = (len(classes) + cols - 1) // cols
    fig, axes = new_figure(rows, cols, size=(1.9, 2.1))
    t = x.shape[2]
    frames = [int(f) for f in np.linspace(0, t - 1, 5).round()]
    for i, name in enumerate(classes):
        ax = axes[i // cols][i % cols]
        pick = meta.filter((pl.col("action") == name) & (pl.col("camera") == 2)).sort("subject", "repetition")
        seq = np.asarray(x[int(pick["row"][0])])  # [3, T, V]
        for k, f in enumerate(frames):
            draw_skeleton(ax, seq[:, f], color=f"C{k}", lw=1.0, alpha=0.35 + 0.65 * k / (len(frames) - 1))
        ax.set_title(name, fontsize=8)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    for j in range(len(classes), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"Generated actions after preprocessing (camera 2, frames {list(frames)} of {t}, "
                 "early = faint)", fontsize=10)
    save_figure(fig, folder / "skeletons.png")
    return "skeletons.png"


def figures(summary, curves, lin_curves, folder: Path, p: HiCLRParams) -> list[str]:
    import polars as pl

    from hrlzoo.pipeline.report import plot_curves, plot_intervals

    folder.mkdir(parents=True)
    names = [render_skeletons(folder, p)]
    lin = summary.filter(pl.col("metric") == "linear_top1").with_columns(
        panel=pl.col("split") + " / " + pl.col("stream"))
    plot_intervals(lin, x="method", group="method", facet="panel", path=folder / "linear_top1.png",
                   title="Linear evaluation top-1 (%), mean over seeds with the 95% t interval",
                   ylabel="top-1 (%)", order=[m for m in ORDER if m in lin["method"].to_list()], ncols=3)
    names.append("linear_top1.png")
    knn = summary.filter((pl.col("metric") == "knn_top1") & (pl.col("n") > 0)).with_columns(
        panel=pl.col("split") + " / " + pl.col("stream"))
    if knn.height:
        plot_intervals(knn, x="method", group="method", facet="panel", path=folder / "knn_top1.png",
                       title="kNN top-1 (%), mean over seeds with the 95% t interval", ylabel="top-1 (%)",
                       order=[m for m in ORDER if m in knn["method"].to_list()], ncols=3)
        names.append("knn_top1.png")
    for metric, label in (("total", "pretraining loss"), ("acc", "instance accuracy (own key ranked first)")):
        part = curves.filter(pl.col("metric") == metric).with_columns(run=pl.col("method") + " " + pl.col("stream"))
        plot_curves(part, x="epoch", y="value", group="run", facet="split", path=folder / f"pretrain_{metric}.png",
                    title=f"Self-supervised {label} per epoch (mean over seeds, 95% t band)", xlabel="epoch",
                    ylabel=label)
        names.append(f"pretrain_{metric}.png")
    plot_curves(lin_curves, x="epoch", y="value", group="run", facet="split", path=folder / "linear_loss.png",
                title="Linear-evaluation training loss (mean over seeds, 95% t band)", xlabel="epoch",
                ylabel="cross-entropy")
    names.append("linear_loss.png")
    return names


def body(ctx: Stage) -> None:
    """Gather the evaluations, judge HiCLR's claims, write the report."""
    import polars as pl

    from hrlzoo.pipeline.claims import evaluate, load_claims, summarise
    from hrlzoo.pipeline.report import (claims_sections, dumps_json, metrics_dict, published_md, report_md_text,
                                        summary_md, write_seeds_csv)

    p: HiCLRParams = ctx.params
    s = sizes(p)
    table = results_table(p)
    claims = load_claims(CLAIMS)
    verdicts = evaluate(claims, table, seeds=p.seeds)
    summary = order(summarise(table, by=["split", "stream", "method"], metrics=["linear_top1", "knn_top1"]))
    curves = pretrain_curves(p)
    lin_curves = pl.concat([pl.read_parquet(EVAL / sp / "curves.parquet").with_columns(split=pl.lit(sp))
                            for sp in SPLITS])
    lin_curves = lin_curves.with_columns(run=pl.col("run").str.split("-").list.slice(1).list.join(" "))

    cdir = ctx.out(OUT / "curves")
    cdir.mkdir(parents=True)
    for sp in SPLITS:
        part = curves.filter((pl.col("metric") == "total") & (pl.col("split") == sp) & (pl.col("stream") == "joint"))
        (part.group_by("method", "epoch").agg(pl.col("value").mean())
         .pivot("method", index="epoch", values="value", sort_columns=True).sort("epoch")
         .write_csv(cdir / f"pretrain_total_{sp}.csv", float_precision=4))
    figs = figures(summary, curves, lin_curves, ctx.out(OUT / "figures"), p)

    summ = json.loads((DATAGEN / "summary.json").read_text())
    ctx.out(OUT / "metrics.json").write_text(dumps_json(metrics_dict("hiclr", p.scale, summary, verdicts,
                                                                     {"title": TITLE})))
    write_seeds_csv(ctx.out(OUT / "seeds.csv"), table)
    parts = "; ".join(f"{k}: {v['train']} train / {v['test']} test" for k, v in summ["parts"].items())
    runs = ", ".join(f"`{r}`" for r in p.runs)
    setup = (
        f"Scale `{p.scale}`, seeds {list(p.seeds)} (every method and stream trained from each seed). Data: "
        f"{summ['sequences']} generated sequences of {summ['frames']} frames x {summ['joints']} joints, "
        f"{len(summ['classes'])} classes, {summ['subjects']} subjects x 3 cameras ({parts}; recorded lengths "
        f"{summ['recorded_frames']['min']}-{summ['recorded_frames']['max']} frames before resizing). Encoder: "
        f"ST-GCN with block widths {list(s.encoder.channels)}, temporal strides {list(s.encoder.strides)}, "
        f"dropout {p.moco.dropout}, MLP projector to {p.moco.feature_dim}. MoCo: queue {s.queue_size}, "
        f"momentum {s.momentum}, temperature {p.moco.temperature}, joint-mask ratio {p.moco.mask_ratio}, "
        f"nearest-neighbour mining (top-{p.moco.topk}) after {p.moco.mining_fraction:.0%} of the epochs for "
        f"`no_h2` and `hiclr`. Pretraining: SGD lr {p.pretrain.lr}, momentum {p.pretrain.momentum}, wd "
        f"{p.pretrain.weight_decay}, batch {s.pretrain_batch}, {s.pretrain_epochs} epochs, x0.1 after "
        f"{[round(f, 3) for f in p.pretrain.steps]} of them. Linear evaluation: frozen encoder (projector "
        f"dropped), clean inputs, SGD lr {p.linear.lr}, batch {p.linear.batch}, {s.linear_epochs} epochs. "
        f"Supervised: SGD lr {p.supervised.lr} Nesterov, batch {p.supervised.batch}, {s.supervised_epochs} "
        f"epochs. Runs: {runs}. Every number is the mean over seeds with its 95% t interval (per-seed values: "
        f"`seeds.csv`).")
    published = published_md([
        {"model": "HiCLR (GCN) joint", "NTU-60 x-sub": "77.30", "source": "JHang2020/HiCLR README.md (released model)"},
        {"model": "HiCLR (GCN) motion", "NTU-60 x-sub": "70.29", "source": "JHang2020/HiCLR README.md"},
        {"model": "HiCLR (GCN) bone", "NTU-60 x-sub": "75.59", "source": "JHang2020/HiCLR README.md"},
        {"model": "3s-HiCLR", "NTU-60 x-sub": "80.94", "source": "JHang2020/HiCLR README.md"},
    ])
    lin = summary.filter(pl.col("metric") == "linear_top1")
    knn = summary.filter((pl.col("metric") == "knn_top1") & (pl.col("n") > 0))
    sections = [
        ("Setup", setup),
        ("Results: linear evaluation top-1 (%)", summary_md(lin)),
        ("Results: kNN top-1 (%)", summary_md(knn)),
        *claims_sections(claims, verdicts),
        ("Our reading", READING),
        ("Figures", "\n".join(f"![{f}](figures/{f})" for f in figs)),
        ("Published numbers (NTU-60 linear evaluation; for scale only: different data, sizes and epochs)", published),
        ("Deviations from the paper and the official code", "\n".join(f"- {d}" for d in [sizes_deviation(p), *DEVIATIONS])),
        ("Reproduce", "```\nmake repro PAPER=hiclr            # or: dvc repro hiclr_report\n"
         "snakemake --cores 2 reports/hiclr/metrics.json\n```"),
    ]
    ctx.out(OUT / "report.md").write_text(report_md_text(title=TITLE, sections=sections))
    ctx.log(" | ".join(f"{v.id}: {v.verdict}" for v in verdicts))


def main(argv: list[str] | None = None) -> int:
    return run_stage("hiclr_report", "hiclr", HiCLRParams, body, argv,
                     outputs=lambda a, p: [str(OUT / n) for n in ("curves", "figures", "metrics.json", "seeds.csv",
                                                                  "report.md")])


if __name__ == "__main__":
    sys.exit(main())
