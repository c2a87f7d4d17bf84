"""WorldRFT's params schema: every knob of `params/worldrft.yaml`, with its range and meaning.

The official code is not released (pengxuanyang/WorldRFT holds a readme only); sizes follow
the spec's scaled-down substrate (../shared/papers/specs_A.md §5.5: 20k-50k frames at `cpu`).
The simulator's own knobs are `hrlzoo.envs.driving.config.SimConfig`, nested under `sim:`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.envs.driving.config import SimConfig
from hrlzoo.pipeline.params import SCALES, Common, knob

SPLITS = ("train", "val", "test")
SEED_STRIDE = 1_000_000  # scene seeds of split i are split_seed0 + i * SEED_STRIDE + [0, n)


@dataclass
class DatagenSizes:
    train_scenes: int = knob(560, ge=1, help="scenes whose expert logs make the training split")
    val_scenes: int = knob(80, ge=1, help="scenes of the validation split")
    test_scenes: int = knob(80, ge=1, help="scenes of the test split (also the closed-loop evaluation scenes)")
    frames: int = knob(36, ge=9, help="frames simulated per scene (dt each); frames 2 .. frames - horizon are logged")
    batch: int = knob(256, ge=1, help="scenes simulated together (memory vs speed)")

    def validate(self) -> str | None:
        if max(self.train_scenes, self.val_scenes, self.test_scenes) >= SEED_STRIDE:
            return f"expected fewer than {SEED_STRIDE} scenes per split (seed ranges must not overlap)"
        return None


@dataclass
class ScaleSizes:
    datagen: DatagenSizes = knob(factory=DatagenSizes, help="sizes of the datagen stage")


@dataclass
class WorldRFTParams(Common):
    sim: SimConfig = knob(factory=SimConfig, help="the driving simulator (road, traffic, scenarios, raster)")
    split_seed0: int = knob(0, ge=0, help="first scene seed of the train split; val / test follow at +1e6 / +2e6")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, help="scale -> stage -> sizes")

    def validate(self) -> str | None:
        for scale in SCALES:
            if scale not in self.sizes:
                return f"sizes.{scale}: missing (every paper declares smoke, cpu and paper sizes)"
        return None


def sizes(p: WorldRFTParams) -> ScaleSizes:
    """The sizes at the chosen scale."""
    return p.sizes[p.scale]


def split_seeds(p: WorldRFTParams, split: str) -> list[int]:
    """Scene seeds of one split: disjoint ranges, so no scene is in two splits."""
    d = sizes(p).datagen
    n = {"train": d.train_scenes, "val": d.val_scenes, "test": d.test_scenes}[split]
    start = p.split_seed0 + SPLITS.index(split) * SEED_STRIDE
    return list(range(start, start + n))
