"""Supervised fine-tuning of a `TinyGPT` on (prompt, completion) pairs, loss on the completion.

    pairs = encode_pairs(tok, prompts, completions)     # BOS + prompt ids, completion ids + EOS
    history = train_sft(model, pairs, max_steps=300, batch_size=64, lr=1e-3, seed=0)
    history["loss"]                                     # one float per optimizer step
    buckets = LengthBuckets([len(p) + len(c) for p, c in pairs], batch_size=64, seed=0, pool=4)
    train_sft(model, pairs, max_steps=300, batch_sampler=buckets)   # batches of similar lengths

`completion_nll` is the loss, reusable outside Lightning (Cog-Rethinker adds it to the DAPO
loss): the mean negative log-likelihood of completion tokens only (prompt and padding carry
no loss), averaged over all completion tokens of the batch (`reduction="token"`, plain SFT) or
per sequence first and then over sequences (`reduction="sequence"`, spec_B 6.3's
L_SFT = -(1/|D|) sum_(q,o) (1/|o|) sum_t log pi(o_t | q, o_<t)).

Batches are right-padded (`collate_pairs`): padding follows every real token, so plain causal
attention is exact and positions 0.. match the sampler's. Lightning drives the loop
(AdamW, linear warm-up then cosine decay, gradient clipping); `SFTModule` is built on first
use so that importing this file does not import Lightning.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
import torch.nn.functional as F

from hrlzoo.pipeline.lightning import make_trainer
from hrlzoo.pipeline.stage import NonFiniteError

Pair = tuple[list[int], list[int]]


def encode_pairs(tok, prompts: Sequence[str], completions: Sequence[str]) -> list[Pair]:
    """(BOS + prompt, completion + EOS) token ids for every text pair."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    return [(tok.encode(p, bos=True), tok.encode(c, eos=True)) for p, c in zip(prompts, completions)]


def collate_pairs(pairs: Sequence[Pair], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ids [B, L] = prompt + completion, right-padded; loss_mask [B, L - 1], True where the
    next token ids[:, t + 1] is a completion token."""
    L = max(len(p) + len(c) for p, c in pairs)
    ids = torch.full((len(pairs), L), pad_id, dtype=torch.long)
    loss_mask = torch.zeros((len(pairs), L - 1), dtype=torch.bool)
    for i, (p, c) in enumerate(pairs):
        ids[i, : len(p) + len(c)] = torch.as_tensor(list(p) + list(c))
        loss_mask[i, len(p) - 1: len(p) + len(c) - 1] = True
    return ids, loss_mask


def completion_nll(model, ids: torch.Tensor, loss_mask: torch.Tensor,
                   reduction: str = "token") -> torch.Tensor:
    """Mean NLL of the completion tokens of a right-padded batch (see the module docstring)."""
    logits = model(ids[:, :-1])
    nll = F.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten(), reduction="none")
    nll = nll.view_as(loss_mask) * loss_mask
    if reduction == "token":
        return nll.sum() / loss_mask.sum().clamp(min=1)
    if reduction == "sequence":
        per_seq = nll.sum(1) / loss_mask.sum(1).clamp(min=1)
        return per_seq[loss_mask.any(1)].mean()
    raise ValueError(f"reduction must be 'token' or 'sequence', got {reduction!r}")


class LengthBuckets:
    """A batch sampler for pairs of very different lengths: every epoch, shuffle (from `seed`
    and the epoch number), sort each pool of `pool` batches' worth of pairs by length, cut it into
    batches, and shuffle the batches. Batches then carry little padding (a small pool keeps the
    templates and levels mixed inside a batch), and every pair is seen once per epoch."""

    def __init__(self, lengths, batch_size: int, seed: int = 0, pool: int = 32):
        self.lengths, self.batch_size, self.seed, self.pool = list(lengths), batch_size, seed, pool
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        import numpy as np

        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        span = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start:start + span].tolist(), key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for i in rng.permutation(len(batches)).tolist():
            yield batches[i]


def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.1) -> float:
    """LR multiplier: linear warm-up over `warmup` steps, then cosine from 1 down to `floor`."""
    if step < warmup:
        return (step + 1) / warmup
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac))


@functools.cache
def _module_class():
    """Define `SFTModule` (importing pytorch_lightning) once, on first use."""
    import pytorch_lightning as pl

    class SFTModule(pl.LightningModule):
        """A model + the completion-only NLL; AdamW with warm-up/cosine schedule."""

        def __init__(self, model, *, lr: float = 1e-3, weight_decay: float = 0.1,
                     betas: tuple[float, float] = (0.9, 0.95), warmup_steps: int = 20,
                     total_steps: int = 1000, reduction: str = "token"):
            super().__init__()
            self.model = model
            self.lr, self.weight_decay, self.betas = lr, weight_decay, betas
            self.warmup_steps, self.total_steps, self.reduction = warmup_steps, total_steps, reduction
            self.losses: list[float] = []

        def training_step(self, batch, batch_idx):
            ids, loss_mask = batch
            loss = completion_nll(self.model, ids, loss_mask, self.reduction)
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteError(f"sft: loss is {value} at step {self.global_step}")
            self.losses.append(value)
            return loss

        def configure_optimizers(self):
            # no weight decay on biases, LayerNorms and embeddings' 1-D params (nanoGPT)
            decay = [p for p in self.model.parameters() if p.dim() >= 2]
            no_decay = [p for p in self.model.parameters() if p.dim() < 2]
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": self.weight_decay},
                                     {"params": no_decay, "weight_decay": 0.0}],
                                    lr=self.lr, betas=self.betas)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: warmup_cosine(s, self.warmup_steps, self.total_steps))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    return SFTModule


def __getattr__(name: str):  # PEP 562: `from hrlzoo.lm.sft import SFTModule`
    if name == "SFTModule":
        return _module_class()
    raise AttributeError(name)


def train_sft(model, pairs: Sequence[Pair], *, max_steps: int, batch_size: int = 64,
              lr: float = 1e-3, weight_decay: float = 0.1, warmup_steps: int = 20,
              grad_clip: float = 1.0, reduction: str = "token", pad_id: int = 0, seed: int = 0,
              progress: bool = False, device: str | torch.device = "cpu", batch_sampler=None) -> dict:
    """Train `model` in place for `max_steps` optimizer steps on shuffled minibatches of
    `pairs` (reshuffled every epoch from `seed`), or on the batches of `batch_sampler` (lists of
    pair indices, e.g. `LengthBuckets`; then `batch_size` and `seed` are the sampler's).
    Returns {"loss": [float per step]}. Raises NonFiniteError when a loss is NaN/inf."""
    from torch.utils.data import DataLoader

    collate = functools.partial(collate_pairs, pad_id=pad_id)
    if batch_sampler is not None:
        loader = DataLoader(list(pairs), batch_sampler=batch_sampler, collate_fn=collate)
    else:
        loader = DataLoader(list(pairs), batch_size=batch_size, shuffle=True, drop_last=len(pairs) > batch_size,
                            generator=torch.Generator().manual_seed(seed), collate_fn=collate)
    module = _module_class()(model, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps,
                             total_steps=max_steps, reduction=reduction)
    trainer = make_trainer(device, max_steps=max_steps, progress=progress,
                           gradient_clip_val=grad_clip or None)
    trainer.fit(module, train_dataloaders=loader)
    model.to(torch.device(device))  # Lightning's teardown parks the model on the CPU
    return {"loss": list(module.losses)}
