"""What HiCLR's stages share: paths, the generated data, seeds -> generators, the epoch-indexed
minibatch plan, feature extraction from a frozen encoder."""

from __future__ import annotations

from pathlib import Path

DATAGEN = Path("data/hiclr/datagen")
PRETRAIN = Path("data/hiclr/pretrain")
SUPERVISED = Path("data/hiclr/supervised")
EVAL = Path("data/hiclr/eval")

SALT = {"init": 11, "augment": 23, "batches": 37, "head": 41, "dropout": 53}


def pretrain_dir(run: str) -> Path:
    """Where a run's encoder lives: data/hiclr/pretrain/<split>/<run>."""
    return PRETRAIN / run.split("-")[0] / run


def generators(seeds, purpose: str):
    """One torch.Generator per seed for `purpose` (init, augment, batches, head): the same seed
    gives the same stream in every method and stream, so runs are paired by seed."""
    import torch

    return [torch.Generator().manual_seed(1_000_003 * int(s) + SALT[purpose]) for s in seeds]


def load_split(split: str, part: str, stream: str | None = None):
    """(x [N, 3, T, V] float32 tensor, labels [N] int64 tensor) of one split's part ('train' or
    'test'); with `stream`, the stream transform of the clean sequences (evaluation input)."""
    import numpy as np
    import polars as pl
    import torch

    meta = pl.read_parquet(DATAGEN / "meta.parquet")
    x = np.load(DATAGEN / "skeletons.npy", mmap_mode="r")
    rows = np.flatnonzero((meta[split] == part).to_numpy())
    xs = torch.from_numpy(np.ascontiguousarray(x[rows]))
    ys = torch.from_numpy(meta["label"].to_numpy()[rows].astype(np.int64))
    if stream is not None:
        from stages.hiclr.method import to_stream

        xs = to_stream(xs, stream)
    return xs, ys


def epoch_batches(n: int, batch: int, gens, epoch: int):
    """The minibatches of one epoch for every member: [steps, M, batch] indices into n samples,
    a fresh permutation per member and epoch (shuffle=True, drop_last=True as the official
    loaders). Depends only on the member's generator and the epoch."""
    import torch

    steps = n // batch
    if steps == 0:
        raise ValueError(f"{n} samples give no full minibatch of {batch}")
    perms = []
    for g in gens:
        gg = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)) + epoch)
        perms.append(torch.randperm(n, generator=gg)[: steps * batch].view(steps, batch))
    return torch.stack(perms, dim=1)


@__import__("torch").no_grad()
def encode(encoder, x, batch: int = 256):
    """Pooled features [M, N, hidden] of clean inputs x [N, 3, T, V] (every member sees the
    same samples), the encoder in eval mode (BN running statistics, no dropout)."""
    import torch

    was = encoder.training
    encoder.eval()
    feats = []
    for a in range(0, x.shape[0], batch):
        xb = x[a:a + batch].unsqueeze(0).expand(encoder.members, -1, -1, -1, -1)
        feats.append(encoder.features(xb))
    encoder.train(was)
    return torch.cat(feats, dim=1)
