"""Stage hiclr_supervised: the supervised upper bound of one split: the same ST-GCN encoder plus a
linear classifier trained with labels from scratch (the official finetune recipe), every seed
at once, with Lightning; then top-1 on the split's test part.

    python -m stages.hiclr.supervised <split>

Writes data/hiclr/supervised/<split>/: results.parquet (split, method 'supervised', stream
'joint', seed, linear_top1 = test top-1 %), logits.npy (test logits [M, N, classes]),
curves.parquet (per epoch and seed: train loss and top-1), model.pt.
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hiclr.common import SUPERVISED, generators, load_split
from stages.hiclr.params import SPLITS, HiCLRParams, sizes


def body(ctx: Stage) -> None:
    """Train and test the supervised encoders of one split."""
    import numpy as np
    import polars as pl
    import torch

    from hrlzoo.pipeline.artifacts import save_pt
    from hrlzoo.pipeline.lightning import make_trainer
    from stages.hiclr.learners import make_supervised

    p: HiCLRParams = ctx.params
    split = ctx.args.split
    s = sizes(p)
    out = ctx.out(SUPERVISED / split)
    out.mkdir(parents=True)
    x, y = load_split(split, "train", "joint")
    xt, yt = load_split(split, "test", "joint")
    classes = len(p.data.classes)
    torch.manual_seed(min(p.seeds) + 7)  # dropout
    module = make_supervised(x, y, classes, s.encoder.channels, s.encoder.strides, p.moco.dropout, p.supervised,
                             s.supervised_epochs, generators(p.seeds, "batches"), generators(p.seeds, "init"),
                             ctx.guard)
    ctx.log(f"{split}: {x.shape[0]} labelled train / {xt.shape[0]} test sequences, {s.supervised_epochs} epochs")
    make_trainer(ctx.device, max_epochs=s.supervised_epochs, progress=True).fit(module)
    net = module.net.cpu().eval()
    with torch.no_grad():
        logits = torch.cat([net(xt[a:a + 256].unsqueeze(0).expand(net.members, -1, -1, -1, -1))[1]
                            for a in range(0, xt.shape[0], 256)], dim=1)
    top1 = (logits.argmax(-1) == yt).float().mean(1) * 100
    rows = [{"split": split, "method": "supervised", "stream": "joint", "seed": int(sd), "linear_top1": float(a),
             "knn_top1": None} for sd, a in zip(p.seeds, top1.tolist())]
    pl.DataFrame(rows, schema={"split": pl.String, "method": pl.String, "stream": pl.String, "seed": pl.Int64,
                               "linear_top1": pl.Float64, "knn_top1": pl.Float64}).write_parquet(out / "results.parquet")
    np.save(out / "logits.npy", logits.numpy().astype(np.float32))
    curves = pl.DataFrame(module.rows).with_columns(seed=pl.col("member").replace_strict(dict(enumerate(p.seeds)),
                                                                                          return_dtype=pl.Int64))
    curves.drop("member").write_parquet(out / "curves.parquet")
    save_pt({"net": net.state_dict(), "seeds": list(p.seeds)}, out / "model.pt")
    ctx.log(f"{split}: supervised test top-1 " + ", ".join(f"{a:.1f}" for a in top1.tolist()))


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("split", choices=SPLITS)

    return run_stage("hiclr_supervised", "hiclr", HiCLRParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [str(SUPERVISED / a.split)])


if __name__ == "__main__":
    sys.exit(main())
