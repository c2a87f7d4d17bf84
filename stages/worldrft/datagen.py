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
crash_frame in scenes.parquet is the frame during which the expert's ego crashed (-1: never);
frames from crash_frame + 1 on are not logged.
Scene seeds: train split_seed0 + [0, n), val + 1e6, test + 2e6, so the splits never share a scene.
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.worldrft.params import SPLITS, WorldRFTParams

OUT = "data/worldrft/datagen"


def body(ctx: Stage) -> None:
    """Roll out the rule-based expert in the batched simulator and write train/val/test frames."""
    import json

    import polars as pl

    from hrlzoo.pipeline.npz import save_npz
    from stages.worldrft.params import split_seeds

    p: WorldRFTParams = ctx.params
    out = ctx.out(OUT)
    out.mkdir(parents=True)
    rows, counts = [], {}
    for split in SPLITS:
        frames, scene_rows = expert_frames(ctx, split_seeds(p, split), split)
        save_npz(frames, out / f"{split}.npz")
        rows += scene_rows
        counts[split] = {"scenes": len(scene_rows), "frames": int(len(frames["scene_seed"])),
                         "seed_first": split_seeds(p, split)[0]}
        ctx.log(f"{split}: {counts[split]['scenes']} scenes, {counts[split]['frames']} frames")
    scenes = pl.DataFrame(rows)
    scenes.write_parquet(out / "scenes.parquet")
    meta = describe(p, counts, expert_rates(scenes))
    (out / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    ctx.log("expert collision rate " + ", ".join(f"{s} {v['collision_pct']}%" for s, v in meta["expert"].items()))


def expert_frames(ctx: Stage, seeds: list[int], split: str) -> tuple[dict, list[dict]]:
    """Frames of the expert's logs of `seeds` (simulated `batch` scenes at a time; rasters
    bit-packed chunk by chunk, to keep memory low), and one row per scene for scenes.parquet."""
    import numpy as np

    from hrlzoo.envs.driving.config import SCENARIOS
    from hrlzoo.envs.driving.dataset import frames_from_log, pack_raster, record
    from stages.worldrft.params import sizes

    p: WorldRFTParams = ctx.params
    d = sizes(p).datagen
    parts, rows = [], []
    bar = ctx.progress(len(seeds) * d.frames, f"{split} scenes x frames", unit="frame")
    for a in range(0, len(seeds), d.batch):
        chunk = seeds[a:a + d.batch]
        log = record(p.sim, chunk, d.frames, on_frame=lambda n=len(chunk): bar.update(n))
        fr = frames_from_log(log, p.sim)
        fr["raster_bits"] = pack_raster(fr.pop("raster"))
        parts.append(fr)
        logged = np.bincount(np.searchsorted(log["seeds"], fr["scene_seed"]), minlength=len(chunk))
        progress = log["boxes"][:, -1, 0, 0] - log["boxes"][:, 0, 0, 0]
        rows += [{"split": split, "seed": int(sd), "scenario": SCENARIOS[log["scenario"][i]],
                  "frames_logged": int(logged[i]), "expert_collision": bool(log["crashed"][i, -1]),
                  "expert_offroad": bool(log["offroad"][i, -1]), "crash_frame": int(log["crash_frame"][i]),
                  "expert_progress_m": float(progress[i])} for i, sd in enumerate(log["seeds"])]
    bar.close()
    return {k: np.concatenate([f[k] for f in parts]) for k in parts[0]}, rows


def expert_rates(scenes) -> dict:
    """The expert's collision and off-road rates (%) over all scenes and per scenario type."""
    import polars as pl

    from hrlzoo.envs.driving.config import SCENARIOS

    def rates(g):
        return {"scenes": g.height, "collision_pct": round(100 * float(g["expert_collision"].mean()), 3),
                "offroad_pct": round(100 * float(g["expert_offroad"].mean()), 3)}

    groups = {s: scenes.filter(pl.col("scenario") == s) for s in SCENARIOS}
    return {"all": rates(scenes), **{s: rates(g) for s, g in groups.items() if g.height}}


def describe(p: WorldRFTParams, counts: dict, expert: dict) -> dict:
    """meta.json: what the files hold (no timings: the same params give the same bytes)."""
    import dataclasses

    from hrlzoo.envs.driving.config import COMMANDS, SCENARIOS
    from hrlzoo.envs.driving.dataset import FRAME_KEYS
    from hrlzoo.envs.driving.raster import CHANNELS

    keys = {k: {"shape": f"(F, {shape})" if shape else "(F,)", "dtype": dtype, "meaning": meaning}
            for k, (shape, dtype, meaning) in FRAME_KEYS.items()}
    return {"sim": dataclasses.asdict(p.sim), "scale": p.scale, "channels": list(CHANNELS), "commands": list(COMMANDS),
            "scenarios": list(SCENARIOS), "keys": keys, "splits": counts, "expert": expert,
            "raster_storage": "raster_bits = numpy.packbits(raster, axis=-1); dataset.load_split unpacks it"}


def main(argv: list[str] | None = None) -> int:
    return run_stage("worldrft_datagen", "worldrft", WorldRFTParams, body, argv, outputs=lambda a, p: [OUT])


if __name__ == "__main__":
    sys.exit(main())
