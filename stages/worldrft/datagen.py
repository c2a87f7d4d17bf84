"""Stage worldrft_datagen: expert driving logs, cut into frames, split by scene seed.

    python -m stages.worldrft.datagen

Writes data/worldrft/datagen/:
    train.npz, val.npz, test.npz   per-frame arrays (hrlzoo.envs.driving.dataset.FRAME_KEYS);
                                   the raster is stored bit-packed along its width as
                                   `raster_bits` (F, C, H, W/8): read splits with
                                   `hrlzoo.envs.driving.dataset.load_split`, which unpacks it
    scenes.parquet                 one row per scene: split, seed, scenario, frames logged,
                                   the expert's collision / off-road / progress
    meta.json                      the simulator config, channel and command names, array
                                   shapes, counts, and the expert's collision rate per scenario
Scene seeds: train split_seed0 + [0, n), val + 1e6, test + 2e6, so the splits never share a scene.
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.worldrft.params import SPLITS, WorldRFTParams

OUT = "data/worldrft/datagen"


def body(ctx: Stage) -> None:
    """Roll out the rule-based expert in the batched simulator and write train/val/test frames."""
    import dataclasses
    import json
    import time

    import numpy as np
    import polars as pl

    from hrlzoo.envs.driving.config import COMMANDS, SCENARIOS
    from hrlzoo.envs.driving.dataset import FRAME_KEYS, frames_from_log, pack_raster, record
    from hrlzoo.envs.driving.raster import CHANNELS
    from hrlzoo.pipeline.artifacts import save_npz
    from stages.worldrft.params import sizes, split_seeds

    p: WorldRFTParams = ctx.params
    d = sizes(p).datagen
    out = ctx.out(OUT)
    out.mkdir(parents=True)
    rows, counts, timing = [], {}, {}
    for split in SPLITS:
        t0 = time.perf_counter()
        seeds = split_seeds(p, split)
        parts = []
        bar = ctx.progress(len(seeds) * d.frames, f"{split} scenes x frames", unit="frame")
        for a in range(0, len(seeds), d.batch):
            chunk = seeds[a:a + d.batch]
            log = record(p.sim, chunk, d.frames, on_frame=lambda n=len(chunk): bar.update(n))
            fr = frames_from_log(log, p.sim)
            parts.append(fr)
            logged = np.bincount(np.searchsorted(log["seeds"], fr["scene_seed"]), minlength=len(chunk))
            progress = log["boxes"][:, -1, 0, 0] - log["boxes"][:, 0, 0, 0]
            for i, sd in enumerate(log["seeds"]):
                rows.append({"split": split, "seed": int(sd), "scenario": SCENARIOS[log["scenario"][i]],
                             "frames_logged": int(logged[i]), "expert_collision": bool(log["crashed"][i, -1]),
                             "expert_offroad": bool(log["offroad"][i, -1]), "crash_frame": int(log["crash_frame"][i]),
                             "expert_progress_m": float(progress[i])})
        bar.close()
        frames = {k: np.concatenate([f[k] for f in parts]) for k in parts[0]}
        frames["raster_bits"] = pack_raster(frames.pop("raster"))
        save_npz(frames, out / f"{split}.npz")
        counts[split] = {"scenes": len(seeds), "frames": int(len(frames["scene_seed"]))}
        timing[split] = round(time.perf_counter() - t0, 2)
        ctx.log(f"{split}: {counts[split]['scenes']} scenes, {counts[split]['frames']} frames, {timing[split]} s")
    scenes = pl.DataFrame(rows)
    scenes.write_parquet(out / "scenes.parquet")
    expert = {s: {"scenes": int(g.height), "collision_pct": round(100 * float(g["expert_collision"].mean()), 3),
                  "offroad_pct": round(100 * float(g["expert_offroad"].mean()), 3)}
              for s, g in ((s, scenes.filter(pl.col("scenario") == s)) for s in SCENARIOS) if g.height}
    expert["all"] = {"scenes": scenes.height, "collision_pct": round(100 * float(scenes["expert_collision"].mean()), 3),
                     "offroad_pct": round(100 * float(scenes["expert_offroad"].mean()), 3)}
    meta = {"sim": dataclasses.asdict(p.sim), "scale": p.scale, "channels": list(CHANNELS), "commands": list(COMMANDS),
            "scenarios": list(SCENARIOS), "keys": {k: {"shape": f"(F, {s})" if s else "(F,)",
                                                       "dtype": t, "meaning": m} for k, (s, t, m) in FRAME_KEYS.items()},
            "raster_storage": "raster_bits = numpy.packbits(raster, axis=-1); load_split unpacks",
            "splits": {s: {**counts[s], "seed_first": split_seeds(p, s)[0] if counts[s]["scenes"] else None}
                       for s in SPLITS}, "expert": expert}
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    ctx.log(f"expert collision rate {expert['all']['collision_pct']}% over {scenes.height} scenes "
            + ", ".join(f"{s} {v['collision_pct']}%" for s, v in expert.items() if s != "all"))


def main(argv: list[str] | None = None) -> int:
    return run_stage("worldrft_datagen", "worldrft", WorldRFTParams, body, argv, outputs=lambda a, p: [OUT])


if __name__ == "__main__":
    sys.exit(main())
