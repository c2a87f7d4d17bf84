"""Stage hiclr_pretrain: self-supervised pretraining of every run of one split (params `runs`:
'<split>-<method>-<stream>'), one after the other; each run trains every seed at once (the seeds
are the members of one batched ST-GCN), with Lightning.

    python -m stages.hiclr.pretrain <split>

(One stage per split rather than per run: a stage costs a few seconds of imports, and the smoke
scale must stay under a minute.) Reads the split's training sequences (labels unused) from
data/hiclr/datagen/; writes data/hiclr/pretrain/<split>/<run>/:
    encoder.pt      the query encoder (state dict, widths, seeds) and the mask tokens
    curves.parquet  per epoch and seed: total, info, h1, h2 losses, the learning rate, and the
                    share of queries whose own key is the most similar entry (instance accuracy)
    run.json        sizes and steps (the wall time goes to the log: outputs stay deterministic)

One step is processor/pretrain_hiclr.py's (stages/hiclr/method.py `pretrain_step`): views,
queries, momentum update, key, logits against the queue, losses, enqueue; then SGD.
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hiclr.common import PRETRAIN, generators, load_split
from stages.hiclr.learners import sgd_by_epoch
from stages.hiclr.params import SPLITS, HiCLRParams, parse_run, sizes


def make_module(p: HiCLRParams, method: str, stream: str, x, guard, device):
    """The LightningModule of one pretraining run (a function so its import stays lazy)."""
    import pytorch_lightning as pl
    import torch

    from stages.hiclr import method as hm
    from stages.hiclr.common import epoch_batches

    s = sizes(p)
    epochs = s.pretrain_epochs
    mining_epoch = hm.scaled_epoch(p.moco.mining_fraction, epochs) if hm.MINING[method] else None
    lr_steps = [hm.scaled_epoch(f, epochs) for f in p.pretrain.steps]

    class Pretrain(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = hm.MoCo(len(p.seeds), s.encoder.channels, s.encoder.strides, p.moco.feature_dim,
                                 s.queue_size, s.momentum, p.moco.temperature, p.moco.dropout,
                                 generators(p.seeds, "init"))
            self.aug = generators(p.seeds, "augment")
            self.batch_gens = generators(p.seeds, "batches")
            self.x = x
            self.rows: list[dict] = []
            self.sums: dict = {}

        def train_dataloader(self):
            steps = self.x.shape[0] // s.pretrain_batch
            return torch.utils.data.DataLoader(list(range(steps)), batch_size=None, shuffle=False)

        def on_train_epoch_start(self):
            self.plan = epoch_batches(self.x.shape[0], s.pretrain_batch, self.batch_gens, self.current_epoch)
            self.sums = {}

        def training_step(self, step, _):
            e = self.current_epoch
            mining = mining_epoch is not None and e > mining_epoch
            xb = self.x[self.plan[int(step)]]                                # [M, B, 3, T, V]
            out = hm.pretrain_step(self.model, method, xb, self.aug, stream, mining, p.moco.mask_ratio,
                                   p.moco.topk, device=device)
            loss = out["total"].sum()
            guard("pretraining loss", loss.item(), self.global_step)
            for k, v in out.items():
                self.sums[k] = self.sums.get(k, 0.0) + v.detach().cpu()
            self.sums["n"] = self.sums.get("n", 0) + 1
            return loss

        def on_train_epoch_end(self):
            n = self.sums.pop("n")
            lr = self.trainer.optimizers[0].param_groups[0]["lr"]
            for k, v in self.sums.items():
                for i, seed in enumerate(p.seeds):
                    self.rows.append({"epoch": self.current_epoch, "seed": int(seed), "metric": k,
                                      "value": float(v[i]) / n})
            for seed in p.seeds:
                self.rows.append({"epoch": self.current_epoch, "seed": int(seed), "metric": "lr", "value": float(lr)})

        def configure_optimizers(self):
            params = [q for q in self.model.parameters() if q.requires_grad]
            return sgd_by_epoch(params, p.pretrain, lambda ep: hm.step_lr(1.0, ep, lr_steps))

    return Pretrain()


def body(ctx: Stage) -> None:
    """Pretrain every run of one split for every seed of params."""
    p: HiCLRParams = ctx.params
    split = ctx.args.split
    root = ctx.out(PRETRAIN / split)
    root.mkdir(parents=True)
    x, _ = load_split(split, "train")  # labels are not used
    for run in runs_of(p, split):
        pretrain_run(ctx, run, x, root / run)


def runs_of(p: HiCLRParams, split: str) -> list[str]:
    return [r for r in p.runs if parse_run(r)[0] == split]


def pretrain_run(ctx: Stage, run: str, x, out) -> None:
    """One (split, method, stream): train, then write encoder.pt, curves.parquet, run.json."""
    import json
    import time

    import polars as pl
    import torch

    from hrlzoo.pipeline.artifacts import save_pt
    from hrlzoo.pipeline.lightning import make_trainer

    p: HiCLRParams = ctx.params
    _, method, stream = parse_run(run)
    s = sizes(p)
    out.mkdir()
    torch.manual_seed(min(p.seeds))    # dropout's draws (global generator)
    module = make_module(p, method, stream, x, ctx.guard, ctx.device)
    steps = x.shape[0] // s.pretrain_batch
    ctx.log(f"{run}: {x.shape[0]} sequences, {len(p.seeds)} seeds, {s.pretrain_epochs} epochs x {steps} steps")
    start = time.time()
    trainer = make_trainer(ctx.device, max_epochs=s.pretrain_epochs, progress=True)
    trainer.fit(module)
    seconds = time.time() - start
    enc = module.model.encoder_q
    save_pt({"encoder": enc.state_dict(), "mask_param": module.model.mask_param.detach().cpu(),
             "channels": list(s.encoder.channels), "strides": list(s.encoder.strides),
             "feature_dim": p.moco.feature_dim, "dropout": p.moco.dropout, "seeds": list(p.seeds),
             "run": run}, out / "encoder.pt")
    pl.DataFrame(module.rows, schema={"epoch": pl.Int64, "seed": pl.Int64, "metric": pl.String,
                                      "value": pl.Float64}).write_parquet(out / "curves.parquet")
    (out / "run.json").write_text(json.dumps({"run": run, "sequences": int(x.shape[0]), "epochs": s.pretrain_epochs,
                                              "steps_per_epoch": steps, "seeds": list(p.seeds)},
                                             indent=1, sort_keys=True) + "\n")
    ctx.log(f"{run}: trained in {seconds:.0f}s")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("split", choices=SPLITS)

    def validate(args, p):
        if not runs_of(p, args.split):
            return f"runs: no pretraining run on split {args.split}"
        return None

    return run_stage("hiclr_pretrain", "hiclr", HiCLRParams, body, argv, add_args=add_args, validate_args=validate,
                     outputs=lambda a, p: [str(PRETRAIN / a.split)])


if __name__ == "__main__":
    sys.exit(main())
