"""Training loops: world-model pretraining and planner imitation with Lightning, GRPO
fine-tuning in plain PyTorch. The losses are in method.py, the networks in nets.py.

    wm, curve = pretrain_world_model(wm, train, p, seed, ...)
    planner, curve = imitate(planner, train, p, seed, anchor_ids, ...)
    policy, curve, signal = finetune(planner, train, p, weights, seed, ..., pool=interactive)

Every curve is a list of {"step", metric: value, ...} rows (a logged row every `log_every`
steps: the mean over those steps). Each loop draws its batches from `data.batch_order` with
its own seed, so runs of one seed that differ only in the method see the same frames.
"""

from __future__ import annotations

import copy
import functools
from typing import Callable

import numpy as np
import torch

from hrlzoo.lm.sft import warmup_cosine
from hrlzoo.pipeline.lightning import make_trainer
from stages.worldrft import method
from stages.worldrft.data import Frames, batch_order, mixed_batch_order

Guard = Callable[[str, float, int], float]


class Averager:
    """Collects per-step metrics; every `every` steps appends their means as one curve row."""

    def __init__(self, every: int, tick: Callable[[], None] | None = None):
        self.every, self.tick, self.rows, self.acc, self.n = every, tick, [], {}, 0

    def add(self, step: int, values: dict) -> None:
        for k, v in values.items():
            self.acc[k] = self.acc.get(k, 0.0) + float(v)
        self.n += 1
        if self.tick:
            self.tick()
        if (step + 1) % self.every == 0:
            self.flush(step + 1)

    def flush(self, step: int) -> None:
        if self.n:
            self.rows.append({"step": step, **{k: v / self.n for k, v in self.acc.items()}})
        self.acc, self.n = {}, 0


class Batches(torch.utils.data.IterableDataset):
    """An iterable over prepared batches (Lightning's DataLoader with batch_size=None)."""

    def __init__(self, make: Callable[[np.ndarray], dict], order: list[np.ndarray]):
        self.make, self.order = make, order

    def __iter__(self):
        return (self.make(idx) for idx in self.order)


def _loader(make, order):
    return torch.utils.data.DataLoader(Batches(make, order), batch_size=None, num_workers=0)


def _adamw_cosine(params, lr: float, weight_decay: float, steps: int):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, max(1, steps // 20), steps))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@functools.cache
def _modules():
    """The two LightningModules, defined (importing pytorch_lightning) on first use."""
    import pytorch_lightning as pl

    class WorldModelModule(pl.LightningModule):
        """Latent prediction + geometry loss (method.world_model_losses)."""

        def __init__(self, wm, lr, weight_decay, steps, geometry_weight, log: Averager, guard: Guard):
            super().__init__()
            self.wm, self.lr, self.wd, self.steps, self.gw = wm, lr, weight_decay, steps, geometry_weight
            self.log_rows, self.guard = log, guard

        def training_step(self, batch, batch_idx):
            out = method.world_model_losses(self.wm, batch["raster"], batch["raster_future"], batch["plan"],
                                            batch["geometry"], self.gw)
            self.guard("world-model loss", out["loss"].item(), self.global_step)
            self.log_rows.add(self.global_step, {k: v.item() for k, v in out.items()})
            return out["loss"]

        def configure_optimizers(self):
            return _adamw_cosine(self.wm.parameters(), self.lr, self.wd, self.steps)

    class ImitationModule(pl.LightningModule):
        """L1 on every stage of the plan + HPD's intention CE (method.imitation_losses)."""

        def __init__(self, planner, lr, weight_decay, steps, intent_weight, log: Averager, guard: Guard):
            super().__init__()
            self.planner, self.lr, self.wd, self.steps, self.iw = planner, lr, weight_decay, steps, intent_weight
            self.log_rows, self.guard = log, guard

        def training_step(self, batch, batch_idx):
            anchor = batch.get("anchor")
            if anchor is not None:
                out = self.planner(batch["raster"], batch["ego_state"], batch["command"], anchor)
            else:
                out = self.planner(batch["raster"], batch["ego_state"], batch["command"])
            res = method.imitation_losses(out, batch["expert"], anchor, self.iw)
            self.guard("imitation loss", res["loss"].item(), self.global_step)
            self.log_rows.add(self.global_step, {k: v.item() for k, v in res.items()})
            return res["loss"]

        def configure_optimizers(self):
            return _adamw_cosine(self.planner.parameters(), self.lr, self.wd, self.steps)

    return WorldModelModule, ImitationModule


def _fit(module, loader, steps: int, device) -> None:
    trainer = make_trainer(device, max_steps=steps, progress=False, gradient_clip_val=1.0, deterministic=True)
    trainer.fit(module, train_dataloaders=loader)


def pretrain_world_model(wm, train: Frames, p, seed: int, steps: int, batch: int, log_every: int, device,
                         guard: Guard, tick=None) -> list[dict]:
    """Self-supervised pretraining of encoder + geometry decoder + latent transition on pairs
    (frame t, frame t + k of the same scene), k = p.world_model.future. Returns the curve."""
    w = p.world_model
    first, later = train.pairs(w.future)
    order = [first_idx for first_idx in batch_order(len(first), batch, steps, seed)]

    def make(j):
        i, f = first[j], later[j]
        b = train.batch(i)
        return {"raster": b["raster"], "raster_future": torch.from_numpy(train.raster(f)).float(),
                "plan": b["expert"],
                "geometry": torch.from_numpy(method.geometry_targets(train.raster(i), p.sim.raster, w.distance_clip))}

    log = Averager(log_every, tick)
    WorldModelModule, _ = _modules()
    _fit(WorldModelModule(wm, w.lr, w.weight_decay, steps, w.geometry_weight, log, guard), _loader(make, order),
         steps, device)
    log.flush(steps)
    return log.rows


def imitate(planner, train: Frames, p, seed: int, steps: int, batch: int, log_every: int, device, guard: Guard,
            anchor_ids: np.ndarray | None = None, tick=None) -> list[dict]:
    """Imitation of the expert's future by `planner` (HPD's target anchors `anchor_ids` per
    frame, None for the global planner). Returns the curve."""
    pl_ = p.planner

    def make(idx):
        b = train.batch(idx)
        b.pop("idx")
        if anchor_ids is not None:
            b["anchor"] = torch.from_numpy(anchor_ids[idx].astype(np.int64))
        return b

    log = Averager(log_every, tick)
    _, ImitationModule = _modules()
    _fit(ImitationModule(planner, pl_.lr, pl_.weight_decay, steps, pl_.intent_weight, log, guard),
         _loader(make, batch_order(len(train), batch, steps, seed)), steps, device)
    log.flush(steps)
    return log.rows


SIGNAL_KEYS = ("groups", "mixed_groups", "signal_groups", "samples", "col_adv_abs", "adv_abs")


def _add_signal(total: dict, part: dict) -> None:
    for k in SIGNAL_KEYS:
        total[k] = total.get(k, 0) + part[k]


def signal_rates(total: dict) -> dict:
    """Shares from summed `method.collision_signal` counts: signal_share (groups with a
    non-zero collision advantage), mixed_share (groups whose collision flag varies),
    col_adv_share (sum |A_col| / sum |A|: the collision term's part of the advantage), and the
    mean |A_col| per sample."""
    g, n = max(total.get("groups", 0), 1), max(total.get("samples", 0), 1)
    return {"signal_share": total.get("signal_groups", 0) / g, "mixed_share": total.get("mixed_groups", 0) / g,
            "col_adv_share": total.get("col_adv_abs", 0.0) / max(total.get("adv_abs", 0.0), 1e-12),
            "col_adv_mean": total.get("col_adv_abs", 0.0) / n}


@torch.no_grad()
def probe_signal(planner, frames: Frames, p, setting, weights, pool: np.ndarray, seed: int, steps: int,
                 scenes: int) -> dict:
    """The collision signal GRPO would see at its first step, without training: `steps`
    batches drawn as `finetune` draws them under the sampling `setting` (a ProbeParams),
    trajectories sampled around `planner`'s plans, scored with `weights`. Returns the summed
    counts of method.collision_signal, with signal_rates and the samples' collision rate."""
    sigma = method.sigma_schedule(p.sim.horizon, setting.sigma_lon, setting.sigma_lat)
    gen = torch.Generator().manual_seed(seed)
    total, hits = {}, 0.0
    for idx in mixed_batch_order(len(frames), pool, setting.interactive_share, scenes, steps, seed):
        b = frames.batch(idx)
        mu = planner(b["raster"], b["ego_state"], b["command"])["plan"]
        tau = method.sample_trajectories(mu, sigma, setting.group, gen, setting.noise_corr)
        out = method.trajectory_outcomes(tau.numpy(), frames.numpy(idx), p.sim)
        rew = method.reward(out, weights.l2, weights.collision, weights.progress)
        _add_signal(total, method.collision_signal(out, rew, weights.collision))
        hits += float(out["collision"].sum())
    return {**total, **signal_rates(total), "sample_collision": hits / max(total.get("samples", 0), 1)}


def finetune(planner, train: Frames, p, weights, seed: int, steps: int, scenes: int, log_every: int, guard: Guard,
             pool: np.ndarray | None = None, tick=None) -> tuple[torch.nn.Module, list[dict], dict]:
    """GRPO fine-tuning of a copy of `planner` (method's RFT formulas), reward `weights`
    (a RewardWeights). The modules in `planner.rft_frozen` (the world model's encoder and
    HPD's intention) are frozen; the imitation planner itself is the KL reference. Batches
    over-represent the frames of `pool` (rft.interactive_share of each batch; None: none).
    Returns (the fine-tuned planner, its curve, the summed collision-signal counts of every
    training group: method.collision_signal, with the collision weight of `weights`)."""
    r = p.rft
    ref = planner.eval().requires_grad_(False)
    policy = copy.deepcopy(planner)
    policy.requires_grad_(True)
    for name in policy.rft_frozen:
        getattr(policy, name).requires_grad_(False)
    params = [q for q in policy.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=r.lr, weight_decay=0.0)
    sigma = method.sigma_schedule(p.sim.horizon, r.sigma_lon, r.sigma_lat)
    gen = torch.Generator().manual_seed(seed)
    log = Averager(log_every, tick)
    pool = np.zeros(0, dtype=np.int64) if pool is None else pool
    total: dict = {}
    for step, idx in enumerate(mixed_batch_order(len(train), pool, r.interactive_share, scenes, steps, seed)):
        b = train.batch(idx)
        with torch.no_grad():
            feats = policy.encoder(b["raster"])  # frozen, and the same weights as the reference's
            mu_old = policy.heads(feats, b["ego_state"], b["command"])["plan"]
            mu_ref = ref.heads(feats, b["ego_state"], b["command"])["plan"]
            tau = method.sample_trajectories(mu_old, sigma, r.group, gen, r.noise_corr)
            old_logp = method.gaussian_logprob(tau, mu_old[:, None], sigma, r.noise_corr)
            ref_logp = method.gaussian_logprob(tau, mu_ref[:, None], sigma, r.noise_corr)
        frames = train.numpy(idx)
        out = method.trajectory_outcomes(tau.numpy(), frames, p.sim)
        rew_np = method.reward(out, weights.l2, weights.collision, weights.progress)
        rew = torch.from_numpy(rew_np).float()
        adv = method.advantages(rew)
        sig = method.collision_signal(out, rew_np, weights.collision)
        _add_signal(total, sig)
        mean_out = method.trajectory_outcomes(mu_old[:, None].numpy(), frames, p.sim)
        stats = {}
        for _ in range(r.epochs):
            mu = policy.heads(feats, b["ego_state"], b["command"])["plan"]
            logp = method.gaussian_logprob(tau, mu[:, None], sigma, r.noise_corr)
            loss, st = method.grpo_loss(logp, old_logp, ref_logp, adv, r.clip_eps, r.kl_coef)
            guard("GRPO loss", loss.item(), step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if r.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, r.grad_clip)
            opt.step()
            stats = st
        rates = signal_rates(sig)
        log.add(step, {"reward": rew.mean().item(), "sample_collision": out["collision"].mean(),
                       "sample_l2": out["l2"].mean(), "plan_collision": mean_out["collision"].mean(),
                       "plan_l2": mean_out["l2"].mean(), "plan_ep": mean_out["ep"].mean(), "loss": loss.item(),
                       "signal_share": rates["signal_share"], "mixed_share": rates["mixed_share"],
                       "col_adv_share": rates["col_adv_share"], **stats})
    log.flush(steps)
    return policy.eval().requires_grad_(False), log.rows, total
