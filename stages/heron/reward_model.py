"""HERON's reward model r_phi and its periodic Bradley-Terry refit (trained with Lightning).

r_phi is an MLP in -> hidden -> hidden -> 1 (ReLU), as `RewardModel` in the official
ClassicControl/cleanrl/ddpg_rm.py; its input is the observation concatenated with the
factor vector (`inputs: obs_factors`, the classic-control code) or the observation alone
(`inputs: obs`, the robots code).

One refit (official `train_rm`), run every `rm_refit_every` env steps:
  1. margins delta_k = sigma_mult_k * std(z_k) over the WHOLE buffer so far;
  2. `batches_per_refit` minibatches, each `batch` indices drawn uniformly WITH replacement
     from the whole buffer (the caller owns the np.random.Generator: runs are deterministic);
  3. on each: label every pair j < i (hierarchical decision tree for HERON, flat signed sum
     for the RLHF baseline), Bradley-Terry loss, one Adam step; a minibatch with no labelled
     pair takes no step;
  4. with `normalize`, mu/sigma <- mean/std of the model's outputs seen in this refit, and
     r_phi(x) = (raw(x) - mu) / sigma from then on.

The Adam optimizer (and its moments) persists across refits, as the official model owns one
optimizer for the whole run.

`RewardModelModule` (the LightningModule) is built on first access so that importing this
file does not import pytorch_lightning (~6 s); `RewardMLP` and `refit`'s helpers are plain
torch.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from stages.heron.labels import (bradley_terry_loss, flat_sum_labels, hierarchical_labels,
                                 level_histogram, margins)

LABELS = ("hierarchical", "flat")


class RewardMLP(nn.Module):
    """r_phi(x): in -> hidden -> hidden -> 1 with ReLU; optional output standardisation."""

    def __init__(self, in_dim: int, hidden: int = 256, normalize: bool = False):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 1))
        self.normalize = normalize
        self.register_buffer("mu", torch.zeros(()))
        self.register_buffer("sigma", torch.ones(()))

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.raw(x)
        if self.normalize:
            r = (r - self.mu) / self.sigma
        return r


@dataclass
class RefitStats:
    """Diagnostics of one refit."""

    loss: float          # mean BT loss over the minibatches that took a step (official train_rm)
    accuracy: float      # fraction of labelled pairs the model ordered right (before each step)
    n_pairs: int         # labelled pairs over all minibatches
    steps: int           # optimizer steps taken (minibatches with >= 1 labelled pair)
    level_hist: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # ^ [n_levels + 1]: deciding level of every candidate pair j < i, last entry = undecided
    seconds: float = 0.0  # wall time of the whole refit, Lightning included


def _module_class():
    """Define the LightningModule (importing pytorch_lightning) once, on first use."""
    global _MODULE_CLASS
    if _MODULE_CLASS is not None:
        return _MODULE_CLASS
    import pytorch_lightning as pl

    class RewardModelModule(pl.LightningModule):
        """r_phi plus the labelling rule and the BT objective; `refit` drives it."""

        def __init__(self, in_dim: int, n_factors: int, *, hidden: int = 256, lr: float = 1e-3,
                     labels: str = "hierarchical", signs: Sequence[int] = (),
                     ranking: Sequence[int] = (), sigma_mult: Sequence[float] = (),
                     normalize: bool = False, batch: int = 16, batches_per_refit: int = 16):
            super().__init__()
            if labels not in LABELS:
                raise ValueError(f"labels: expected one of {LABELS}, got {labels!r}")
            self.net = RewardMLP(in_dim, hidden, normalize)
            self.n_factors, self.lr, self.labels = n_factors, lr, labels
            self.signs, self.ranking = list(signs), list(ranking)
            self.sigma_mult = list(sigma_mult)
            self.batch, self.batches_per_refit = batch, batches_per_refit
            self.margins = torch.zeros(n_factors, dtype=torch.float64)  # set by `refit`
            self._opt: torch.optim.Optimizer | None = None
            self._reset_stats()

        def _reset_stats(self):
            self._losses: list[float] = []
            self._correct = 0
            self._pairs = 0
            self._hist = torch.zeros(self.n_factors + 1, dtype=torch.int64)
            self._outs: list[torch.Tensor] = []

        def forward(self, x):
            return self.net(x)

        def configure_optimizers(self):
            # one Adam for the whole run: Lightning asks at every fit, we hand back the same one
            if self._opt is None:
                self._opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
            return self._opt

        def label(self, z: torch.Tensor):
            if self.labels == "hierarchical":
                return hierarchical_labels(z, self.signs, self.ranking, self.margins.to(z))
            return flat_sum_labels(z, self.signs)

        def training_step(self, batch, batch_idx):
            x, z = batch
            pref, level = self.label(z)
            self._hist += level_histogram(level, self.n_factors).cpu()
            raw = self.net.raw(x)
            r = (raw - self.net.mu) / self.net.sigma if self.net.normalize else raw
            loss, acc, n = bradley_terry_loss(r, pref)
            n = int(n)
            if n == 0:
                # official `if loss <= 0: continue`: no labelled pair, no step. Deviation: the
                # official test would also skip a batch whose loss underflows to exactly 0.
                return None  # automatic optimisation skips backward and step
            self._losses.append(loss.item())
            self._correct += round(acc.item() * n)
            self._pairs += n
            self._outs.append(raw.detach())
            return loss

    _MODULE_CLASS = RewardModelModule
    return RewardModelModule


_MODULE_CLASS = None


def __getattr__(name: str):  # PEP 562: `from stages.heron.reward_model import RewardModelModule`
    if name == "RewardModelModule":
        return _module_class()
    raise AttributeError(name)


def make_reward_module(in_dim: int, n_factors: int, **kw):
    """A `RewardModelModule` (see its __init__ for the keywords)."""
    return _module_class()(in_dim, n_factors, **kw)


class _Minibatches:
    """Ready-made minibatches as one iterable (a bare list would be read by Lightning as a
    collection of dataloaders)."""

    def __init__(self, items: list):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


_QUIET = False


def _quiet_lightning() -> None:
    """Silence Lightning's per-fit banner lines ("GPU available ...") and the hint warnings
    that a list of ready-made minibatches triggers."""
    global _QUIET
    if _QUIET:
        return
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*is smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*`srun` command is available.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    _QUIET = True


def refit(module, x_buffer, z_buffer, rng: np.random.Generator) -> RefitStats:
    """One reward-model refit on the buffer so far (see the module docstring).

    module: a `RewardModelModule` (left on the device it came on); x_buffer: [N, in_dim]
    model inputs; z_buffer: [N, n] the (scaled) factors; rng: draws the minibatch indices.
    """
    import pytorch_lightning as pl

    _quiet_lightning()
    t0 = time.perf_counter()
    device = next(module.parameters()).device
    x_all = torch.as_tensor(np.asarray(x_buffer), dtype=torch.float32)
    z_all = torch.as_tensor(np.asarray(z_buffer), dtype=torch.float64)
    N = x_all.shape[0]

    # delta_k over the WHOLE buffer (official train_rm: reward_buffer.std(0) * sigma_mult)
    module.margins = margins(z_all, module.sigma_mult)
    # minibatch indices, uniform with replacement (official np.random.choice(N, bsz))
    idx = torch.as_tensor(rng.integers(0, N, size=(module.batches_per_refit, module.batch)))
    batches = _Minibatches([(x_all[i], z_all[i]) for i in idx])

    module._reset_stats()
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
        max_epochs=1, max_steps=module.batches_per_refit,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=batches)
    module.to(device)  # Lightning's teardown parks the model on the CPU

    if module.net.normalize and module._outs:
        outs = torch.cat(module._outs)
        # Deviation: the official statistics are of outputs already normalised by the previous
        # mu/sigma (so they undo themselves every other refit) and may be 0; we use the raw
        # outputs and floor sigma at 1e-6. np.std in the official code: biased std.
        module.net.mu.fill_(outs.mean().item())
        module.net.sigma.fill_(max(outs.std(unbiased=False).item(), 1e-6))

    steps = len(module._losses)
    return RefitStats(
        loss=float(np.mean(module._losses)) if steps else 0.0,
        accuracy=module._correct / module._pairs if module._pairs else 0.0,
        n_pairs=module._pairs, steps=steps, level_hist=module._hist.numpy().copy(),
        seconds=time.perf_counter() - t0,
    )
