"""The datagen stage's splits as a learning stage reads them: rasters kept bit-packed in memory
(8x smaller) and unpacked batch by batch, batches drawn in a seeded order.

    train = Frames.load("data/worldrft/datagen/train.npz")
    b = train.batch(idx)                 # torch tensors: raster, ego_state, command, expert
    for idx in batch_order(len(train), 64, steps=600, seed=0): ...
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hrlzoo.envs.driving.dataset import later_frame

DATAGEN = Path("data/worldrft/datagen")
NUMPY_KEYS = ("expert_future", "agents_future", "agents_valid", "ego_size", "ego_pose")  # what rewards need


class Frames:
    """One split's arrays; `raster_bits` (F, C, H, W/8) stays packed."""

    def __init__(self, arrays: dict):
        self.a = arrays
        self.width = int(arrays["raster_bits"].shape[-1] * 8)

    @classmethod
    def load(cls, path) -> "Frames":
        with np.load(path) as z:
            return cls({k: z[k] for k in z.files})

    def __len__(self) -> int:
        return len(self.a["scene_seed"])

    def __getitem__(self, key: str) -> np.ndarray:
        return self.a[key]

    def raster(self, idx) -> np.ndarray:
        """(B, C, H, W) uint8 0/1 rasters of frames idx."""
        return np.unpackbits(self.a["raster_bits"][idx], axis=-1, count=self.width)

    def batch(self, idx, device="cpu") -> dict:
        """Torch tensors of frames idx: raster (B, C, H, W) float, ego_state (B, 4), command (B,),
        expert (B, T, 2) metres; plus the numpy arrays the reward needs (NUMPY_KEYS, as numpy)."""
        idx = np.asarray(idx)
        out = {"raster": torch.from_numpy(self.raster(idx)).float(),
               "ego_state": torch.from_numpy(self.a["ego_state"][idx]).float(),
               "command": torch.from_numpy(self.a["command"][idx].astype(np.int64)),
               "expert": torch.from_numpy(self.a["expert_future"][idx, :, :2]).float()}
        out = {k: v.to(device) for k, v in out.items()}
        out["idx"] = idx
        return out

    def numpy(self, idx) -> dict:
        return {k: self.a[k][np.asarray(idx)] for k in NUMPY_KEYS}

    def pairs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(frames, the same scene's frames k later) for every frame that has one."""
        later = later_frame(self.a, k)
        ok = np.flatnonzero(later >= 0)
        return ok, later[ok]


def load_splits(root: Path = DATAGEN) -> dict[str, Frames]:
    return {s: Frames.load(root / f"{s}.npz") for s in ("train", "val", "test")}


def batch_order(n: int, batch: int, steps: int, seed: int) -> list[np.ndarray]:
    """`steps` batches of indices into range(n): epochs of a seeded permutation, each cut into
    full batches (the remainder of an epoch is dropped; a batch larger than n takes all n)."""
    rng = np.random.default_rng(seed)
    batch = min(batch, n)
    out: list[np.ndarray] = []
    while len(out) < steps:
        perm = rng.permutation(n)
        out += [perm[i:i + batch] for i in range(0, n - batch + 1, batch)]
    return out[:steps]


def mixed_batch_order(n: int, pool: np.ndarray, share: float, batch: int, steps: int, seed: int) -> list[np.ndarray]:
    """`steps` batches of `batch` indices into range(n) that over-represent the frames of `pool`:
    k = round(share * batch) of each batch (at most len(pool)) come from `pool`, as batch_order
    draws them (epochs of a seeded permutation of the pool, cut into chunks of k), the rest from
    all n frames (batch_order itself, which this is when k is 0 or the pool empty)."""
    pool = np.asarray(pool, dtype=np.int64)
    batch = min(batch, n)
    k = min(int(round(share * batch)), len(pool))
    if k == 0:
        return batch_order(n, batch, steps, seed)
    own = [pool[i] for i in batch_order(len(pool), k, steps, seed + 7919)]
    rest = batch_order(n, batch - k, steps, seed) if batch > k else [np.zeros(0, np.int64)] * steps
    return [np.concatenate([a, b]) for a, b in zip(own, rest)]
