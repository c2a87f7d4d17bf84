"""Stage hiclr_evaluate: linear evaluation and kNN of every pretraining run of one split, and the
three-stream ensemble.

    python -m stages.hiclr.evaluate <split>

For each run of the split (params `runs`): the frozen query encoder (projector dropped, as the
linear-eval config's `ignore_weights: [encoder_q.fc, encoder_k, queue]`, eval mode) encodes the
clean train and test sequences of the run's stream (no augmentation: shear and crop are off in
linear_eval_*.yaml), a linear classifier per seed is trained on the train features (standardised by the train part's
mean and std per dimension: learners.standardise) with
Lightning, and top-1 is measured on the test part at the last epoch; a weighted kNN classifier
on the same features gives knn_top1. A method with all three streams on the split also gets the
ensemble: the test logits of joint, motion and bone, weighted by `eval.ensemble_weights`
(ensemble_ntu_cs.py's average fusion), summed.

Writes data/hiclr/eval/<split>/: results.parquet (split, method, stream incl. 'ensemble', seed,
linear_top1, knn_top1), logits.npz (test logits per run [M, N, classes], labels),
curves.parquet (linear-evaluation loss per epoch, run and seed).
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hiclr.common import EVAL, generators, load_split, pretrain_dir
from stages.hiclr.params import SPLITS, STREAMS, HiCLRParams, parse_run, sizes


def load_encoder(run: str):
    """The pretrained query encoder of a run (members = seeds), without its projector."""
    from hrlzoo.nets.stgcn import STGCN
    from hrlzoo.pipeline.artifacts import load_pt

    ck = load_pt(pretrain_dir(run) / "encoder.pt")
    enc = STGCN(len(ck["seeds"]), ck["channels"], ck["strides"], head=[ck["channels"][-1], ck["feature_dim"]],
                dropout=ck["dropout"])
    enc.load_state_dict(ck["encoder"])
    enc.head = type(enc.head)()  # ignore_weights: encoder_q.fc
    return enc.eval(), ck["seeds"]


def body(ctx: Stage) -> None:
    """Linear evaluation, kNN and the ensemble of one split's runs."""
    import numpy as np
    import polars as pl
    import torch

    from hrlzoo.pipeline.lightning import make_trainer
    from hrlzoo.pipeline.npz import save_npz
    from stages.hiclr.common import encode
    from stages.hiclr.learners import knn_predict, make_linear, standardise

    p: HiCLRParams = ctx.params
    split = ctx.args.split
    s = sizes(p)
    out = ctx.out(EVAL / split)
    out.mkdir(parents=True)
    classes = len(p.data.classes)
    runs = [r for r in p.runs if parse_run(r)[0] == split]
    rows, curves, logits_all = [], [], {}
    yt = None
    for run in runs:
        _, method, stream = parse_run(run)
        enc, seeds = load_encoder(run)
        if list(seeds) != list(p.seeds):
            raise RuntimeError(f"{run}: trained for seeds {seeds}, params say {p.seeds}")
        x, y = load_split(split, "train", stream)
        xt, yt = load_split(split, "test", stream)
        f, ft = encode(enc, x), encode(enc, xt)
        fs, fts = standardise(f, ft)                                         # train-part statistics
        module = make_linear(fs, y, classes, p.linear, s.linear_epochs, generators(p.seeds, "head"),
                             generators(p.seeds, "init"), ctx.guard)
        make_trainer(ctx.device, max_epochs=s.linear_epochs, progress=False).fit(module)
        with torch.no_grad():
            lt = module.head.cpu()(fts)                                         # [M, N, classes]
        top1 = ((lt.argmax(-1) == yt).float().mean(1) * 100).tolist()
        knn = ((knn_predict(f, y, ft, classes, p.eval.knn_k, p.eval.knn_temperature) == yt).float().mean(1)
               * 100).tolist()
        for sd, a, k in zip(p.seeds, top1, knn):
            rows.append({"split": split, "method": method, "stream": stream, "seed": int(sd), "linear_top1": a,
                         "knn_top1": k})
        curves += [{**r, "run": run, "seed": int(p.seeds[r["member"]])} for r in module.rows]
        logits_all[run] = lt.numpy().astype(np.float32)
        ctx.log(f"{run}: linear top-1 " + ", ".join(f"{a:.1f}" for a in top1) + " | kNN "
                + ", ".join(f"{a:.1f}" for a in knn))
    w = dict(zip(STREAMS, p.eval.ensemble_weights))
    for method in dict.fromkeys(parse_run(r)[1] for r in runs):
        streams = {parse_run(r)[2]: r for r in runs if parse_run(r)[1] == method}
        if set(streams) != set(STREAMS):
            continue
        fused = sum(w[st] * torch.from_numpy(logits_all[streams[st]]) for st in STREAMS)
        top1 = ((fused.argmax(-1) == yt).float().mean(1) * 100).tolist()
        for sd, a in zip(p.seeds, top1):
            rows.append({"split": split, "method": method, "stream": "ensemble", "seed": int(sd), "linear_top1": a,
                         "knn_top1": None})
        ctx.log(f"{split}-{method}: three-stream ensemble top-1 " + ", ".join(f"{a:.1f}" for a in top1))
    schema = {"split": pl.String, "method": pl.String, "stream": pl.String, "seed": pl.Int64,
              "linear_top1": pl.Float64, "knn_top1": pl.Float64}
    pl.DataFrame(rows, schema=schema).write_parquet(out / "results.parquet")
    pl.DataFrame(curves).drop("member").write_parquet(out / "curves.parquet")
    save_npz({**{r.replace("-", "__"): v for r, v in logits_all.items()}, "labels": yt.numpy()}, out / "logits.npz")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("split", choices=SPLITS)

    def validate(args, p):
        if not any(parse_run(r)[0] == args.split for r in p.runs):
            return f"runs: no pretraining run on split {args.split}"
        return None

    return run_stage("hiclr_evaluate", "hiclr", HiCLRParams, body, argv, add_args=add_args, validate_args=validate,
                     outputs=lambda a, p: [str(EVAL / a.split)])


if __name__ == "__main__":
    sys.exit(main())
