"""The supervised pieces of HiCLR's evaluation, as Lightning modules: the linear classifier on a
frozen encoder's features (processor/linear_evaluation.py) and the supervised encoder, the upper
bound (processor/finetune_evaluation.py from scratch). Both train every seed at once (members)
on per-member minibatches (stages/hiclr/common.py `epoch_batches`)."""

from __future__ import annotations

from stages.hiclr.common import epoch_batches


def lr_factor(epoch: int, epochs: int, steps, warmup: float, inclusive: bool) -> float:
    """The official schedules: linear warm-up from 0 over `warmup` x epochs (finetune), then
    x0.1 at each step (a share of the epochs). Linear evaluation and pretraining decay after
    the step epoch (`epoch > step`), finetuning from it (`epoch >= step`)."""
    from stages.hiclr.method import scaled_epoch

    w = scaled_epoch(warmup, epochs)
    if epoch < w:
        return epoch / w
    bounds = [scaled_epoch(f, epochs) for f in steps]
    return 0.1 ** sum((epoch >= b) if inclusive else (epoch > b) for b in bounds)


def sgd_by_epoch(parameters, opt, factor) -> dict:
    """Lightning's optimiser config for every HiCLR learner: SGD with the recipe's lr, momentum,
    Nesterov flag and weight decay (`opt`: params' pretrain, linear or supervised block), its lr
    multiplied by `factor(epoch)` once per epoch."""
    import torch

    o = torch.optim.SGD(parameters, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov,
                        weight_decay=opt.weight_decay)
    s = torch.optim.lr_scheduler.LambdaLR(o, factor)
    return {"optimizer": o, "lr_scheduler": {"scheduler": s, "interval": "epoch"}}


def standardise(train_f, *others):
    """Features [M, N, H] centred and scaled per member and dimension by the train part's mean and
    std (eps 1e-8), the same map applied to `others`. A fixed affine map folded into the linear
    classifier: the function class is unchanged, only its conditioning. Needed because pooled
    ST-GCN features vary across samples by ~1e-4 of their magnitude (measured on our encoders in
    eval mode), which the official lr 3 reaches only over its ~30k NTU steps, not our ~1k."""
    d = train_f.double()                          # float64: the spread sits in float32's last digits
    mu = d.mean(1, keepdim=True)
    sd = d.std(1, keepdim=True) + 1e-8
    return tuple(((f.double() - mu) / sd).to(train_f.dtype) for f in (train_f, *others))


def make_linear(features, labels, classes: int, opt, epochs: int, gens_batches, gens_init, guard):
    """Linear heads [M, hidden -> classes] on fixed features [M, N, hidden]; SGD as the
    linear-eval config (lr 3, momentum 0.9, wd 0, batch 128, x0.1 after 80% of the epochs)."""
    import pytorch_lightning as pl
    import torch

    from hrlzoo.nets.ensemble import EnsembleLinear
    from hrlzoo.nets.stgcn import official_init

    class Linear(pl.LightningModule):
        def __init__(self):
            super().__init__()
            m, _, h = features.shape
            self.head = EnsembleLinear(m, h, classes)
            official_init(self.head, gens_init)   # weights_init: N(0, 0.02), bias 0
            self.f, self.y = features, labels
            self.rows, self.sum, self.count = [], 0.0, 0

        def train_dataloader(self):
            return torch.utils.data.DataLoader(list(range(self.f.shape[1] // opt.batch)), batch_size=None)

        def on_train_epoch_start(self):
            self.plan = epoch_batches(self.f.shape[1], opt.batch, gens_batches, self.current_epoch)
            self.sum, self.count = 0.0, 0

        def training_step(self, step, _):
            idx = self.plan[int(step)]                                    # [M, B]
            fb = torch.gather(self.f, 1, idx[..., None].expand(-1, -1, self.f.shape[2]))
            logits = self.head(fb)                                        # [M, B, classes]
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), self.y[idx].flatten(), reduction="none")
            loss = loss.view(idx.shape).mean(1)                           # per member
            guard("linear-evaluation loss", loss.sum().item(), self.global_step)
            self.sum = self.sum + loss.detach()
            self.count += 1
            return loss.sum()

        def on_train_epoch_end(self):
            for i, v in enumerate((self.sum / self.count).tolist()):
                self.rows.append({"epoch": self.current_epoch, "member": i, "metric": "linear_loss", "value": v})

        def configure_optimizers(self):
            return sgd_by_epoch(self.head.parameters(), opt, lambda e: lr_factor(e, epochs, opt.steps, opt.warmup, False))

    return Linear()


def make_supervised(x, labels, classes: int, channels, strides, dropout: float, opt, epochs: int,
                    gens_batches, gens_init, guard):
    """ST-GCN encoders + linear classifier trained with labels from scratch: the finetune recipe
    (SGD lr 0.1, Nesterov, wd 1e-4, batch 64, warm-up 5 of 70 epochs, x0.1 at 30 and 55 of 70)."""
    import pytorch_lightning as pl
    import torch

    from hrlzoo.nets.stgcn import STGCN, official_init

    members = len(gens_init)

    class Supervised(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = STGCN(members, channels, strides, head=[classes], dropout=dropout)
            official_init(self.net, gens_init)
            self.x, self.y = x, labels
            self.rows, self.sum, self.correct, self.count = [], 0.0, 0.0, 0

        def train_dataloader(self):
            return torch.utils.data.DataLoader(list(range(self.x.shape[0] // opt.batch)), batch_size=None)

        def on_train_epoch_start(self):
            self.plan = epoch_batches(self.x.shape[0], opt.batch, gens_batches, self.current_epoch)
            self.sum, self.correct, self.count = 0.0, 0.0, 0

        def training_step(self, step, _):
            idx = self.plan[int(step)]
            _, logits = self.net(self.x[idx].to(self.device))
            y = self.y[idx].to(self.device)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            loss = loss.view(idx.shape).mean(1)
            guard("supervised loss", loss.sum().item(), self.global_step)
            self.sum = self.sum + loss.detach().cpu()
            self.correct = self.correct + (logits.argmax(-1) == y).float().mean(1).detach().cpu()
            self.count += 1
            return loss.sum()

        def on_train_epoch_end(self):
            for i in range(members):
                self.rows.append({"epoch": self.current_epoch, "member": i, "metric": "train_loss",
                                  "value": float(self.sum[i] / self.count)})
                self.rows.append({"epoch": self.current_epoch, "member": i, "metric": "train_top1",
                                  "value": float(100 * self.correct[i] / self.count)})

        def configure_optimizers(self):
            return sgd_by_epoch(self.net.parameters(), opt, lambda e: lr_factor(e, epochs, opt.steps, opt.warmup, True))

    return Supervised()


def knn_predict(train_f, train_y, test_f, classes: int, k: int, tau: float, batch: int = 512):
    """Weighted kNN (InstDisc): cosine similarity of L2-normalised features, the k nearest
    training samples vote with weight exp(sim / tau). Features [M, N, H]; returns the predicted
    labels [M, N_test]."""
    import torch

    tr = torch.nn.functional.normalize(train_f, dim=-1)
    te = torch.nn.functional.normalize(test_f, dim=-1)
    preds = []
    for a in range(0, te.shape[1], batch):
        sim = torch.bmm(te[:, a:a + batch], tr.transpose(1, 2))            # [M, b, N]
        w, idx = sim.topk(min(k, tr.shape[1]), dim=-1)
        votes = torch.zeros(*w.shape[:2], classes, dtype=w.dtype)
        votes.scatter_add_(-1, train_y[idx], torch.exp(w / tau))
        preds.append(votes.argmax(-1))
    return torch.cat(preds, dim=1)
