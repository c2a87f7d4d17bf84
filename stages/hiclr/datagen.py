"""Stage hiclr_datagen: the procedural NTU-layout skeleton data set and its two protocols.

    python -m stages.hiclr.datagen

Writes data/hiclr/datagen/:
    skeletons.npy   [N, 3, T, 25] float32, preprocessed as the official NTU60 frame-50 data
                    (centred on joint 21 per frame, resized to T, shoulders rotated onto x)
    meta.parquet    one row per sequence: label, action, family, subject, camera (1-3),
                    repetition, performance, left_handed, length (recorded frames), xsub and
                    xview ('train' / 'test')
    summary.json    counts per split and part, classes, frames
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hiclr.common import DATAGEN
from stages.hiclr.params import HiCLRParams, sizes


def config(p: HiCLRParams):
    """The generator's config from params."""
    from hrlzoo.envs.skeleton import SkeletonConfig

    d, s = p.data, sizes(p).data
    return SkeletonConfig(classes=list(d.classes), subjects=s.subjects, repetitions=s.repetitions,
                          xsub_train_fraction=d.xsub_train_fraction, length_s=tuple(d.length_s), idle_s=tuple(d.idle_s),
                          height=tuple(d.height), proportions=d.proportions, style_amplitude=tuple(d.style_amplitude),
                          style_tempo=tuple(d.style_tempo), left_handed=d.left_handed, amp_jitter=d.amp_jitter,
                          freq_jitter=d.freq_jitter, phase_jitter=d.phase_jitter, warp=d.warp, sway_deg=d.sway_deg,
                          facing_deg=d.facing_deg, camera_yaw_jitter=d.camera_yaw_jitter,
                          camera_height=tuple(d.camera_height), camera_distance=tuple(d.camera_distance),
                          camera_pitch_jitter=d.camera_pitch_jitter, noise=d.noise, occluded_noise=d.occluded_noise,
                          drop_rate=d.drop_rate, drop_frames=tuple(d.drop_frames), frames=s.frames)


def body(ctx: Stage) -> None:
    """Generate every (subject, action, repetition, camera) sequence and the split columns."""
    import json

    import numpy as np
    import polars as pl

    from hrlzoo.envs.skeleton import FAMILY_OF, generate

    p: HiCLRParams = ctx.params
    cfg = config(p)
    out = ctx.out(DATAGEN)
    out.mkdir(parents=True)
    total = cfg.subjects * len(cfg.classes) * cfg.repetitions
    bar = ctx.progress(total, "performances", unit="perf")
    x, meta = generate(cfg, p.data.seed, progress=bar.update)
    bar.close()
    if not np.isfinite(x).all():
        raise RuntimeError("hiclr_datagen: non-finite joint positions")
    np.save(out / "skeletons.npy", x)
    table = pl.DataFrame({
        "label": meta["label"].astype(np.int64), "action": [cfg.classes[i] for i in meta["label"]],
        "family": [FAMILY_OF[cfg.classes[i]] for i in meta["label"]], "subject": meta["subject"].astype(np.int64),
        "camera": meta["camera"].astype(np.int64), "repetition": meta["repetition"].astype(np.int64),
        "performance": meta["performance"].astype(np.int64), "left_handed": meta["left_handed"].astype(bool),
        "length": meta["length"].astype(np.int64), "xsub": meta["xsub"].tolist(), "xview": meta["xview"].tolist()})
    table.write_parquet(out / "meta.parquet")
    summary = {"sequences": int(x.shape[0]), "frames": int(x.shape[2]), "joints": int(x.shape[3]),
               "classes": list(cfg.classes), "subjects": cfg.subjects,
               "parts": {s: {part: int((table[s] == part).sum()) for part in ("train", "test")} for s in ("xsub", "xview")},
               "recorded_frames": {"min": int(table["length"].min()), "max": int(table["length"].max()),
                                   "mean": float(table["length"].mean())}}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    ctx.log(f"{x.shape[0]} sequences of {x.shape[2]} frames; " + ", ".join(
        f"{s}: {v['train']} train / {v['test']} test" for s, v in summary["parts"].items()))


def main(argv: list[str] | None = None) -> int:
    return run_stage("hiclr_datagen", "hiclr", HiCLRParams, body, argv, outputs=lambda a, p: [str(DATAGEN)])


if __name__ == "__main__":
    sys.exit(main())
