"""Group-relative policy optimisation for language models: GRPO and DAPO in one readable file.

    cfg = GRPOConfig.dapo(group_size=8, max_new_tokens=96, lr=1e-4)
    trainer = GRPOTrainer(model, cfg, prompt_fn=lambda item, j: tok.encode(direct_prompt(item), bos=True),
                          reward_fn=correctness_reward, pad_id=tok.pad_id, stop_ids=[tok.eos_id], seed=0)
    stats = trainer.step(problems)          # sample G per problem, score, (filter), update

One step = `rollout_groups` (G completions of every prompt, scored by `reward_fn`, a plain
callable on a `Sample`) -> `drop_uniform_groups` (DAPO's dynamic sampling, optional refill)
-> `group_advantages` (or a paper's own `advantage_fn`, e.g. HBPO's) -> `ppo_update`
(several epochs x minibatches of clipped-ratio updates against the sampling-time log-probs).

Formulas (o_i = the i-th of G completions of prompt q, R_i its reward, rho_i,t =
pi_theta(o_i,t | q, o_i,<t) / pi_old(o_i,t | q, o_i,<t)):

- Advantage, GRPO (DeepSeekMath, Shao et al. 2024, Sec. 4.1.2 "outcome supervision"; DAPO
  Eq. 9; spec_B 6.3): A_i = (R_i - mean_j R_j) / (std_j R_j + eps), the mean and std over
  the G samples of the SAME prompt only, every token of o_i gets A_i. std is the unbiased one
  (torch.std, as verl's `compute_grpo_outcome_advantage`; eps = 1e-6 there too).
- Token loss, PPO clip with clip-higher (DAPO Eq. 10, Yu et al. 2025; HBPO Eq. 6):
  l_i,t = -min(rho_i,t A_i, clip(rho_i,t, 1 - eps_low, 1 + eps_high) A_i), eps_low = 0.2,
  eps_high = 0.28 for DAPO (GRPO/PPO: eps_low = eps_high = 0.2). Optional dual clip (verl,
  Ye et al. 2020) for A < 0: l = min(l, -c A).
- KL to a reference (GRPO Eq. 3-4), k3 estimator (Schulman 2020):
  D_KL = pi_ref/pi_theta - log(pi_ref/pi_theta) - 1 per token, added as + beta * D_KL.
  DAPO drops it (beta = 0, no reference model).
- Aggregation: GRPO (Eq. 3) averages tokens within each sequence, then sequences:
  (1/G) sum_i (1/|o_i|) sum_t l_i,t  ("seq-mean-token-mean"). DAPO (Eq. 12, token-level
  policy-gradient loss) averages over all tokens of the (mini)batch:
  (1 / sum_i |o_i|) sum_i sum_t l_i,t  ("token-mean").
- Dynamic sampling (DAPO Eq. 11): keep only groups with 0 < #correct < G, i.e. whose rewards
  are not all equal (they have zero advantage, so no gradient); refill from more prompts
  until the batch is full or `max_refill_rounds` is spent.
- Overlong reward shaping (DAPO Eq. 13): `overlong_penalty`, for a reward callable to add.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from hrlzoo.lm.sampler import Rollout, completion_logprobs, sample
from hrlzoo.pipeline.stage import NonFiniteError

AGGREGATIONS = ("token-mean", "seq-mean-token-mean")


@dataclass
class GRPOConfig:
    """Every knob of one group-relative RL run. `GRPOConfig.grpo()` and `.dapo()` give the two
    papers' settings; any field can be overridden by keyword."""

    group_size: int = 8              # G: completions sampled per prompt
    max_new_tokens: int = 96         # completion cap (a cut completion has finished=False)
    temperature: float = 1.0         # rollout temperature (the policy in the loss uses it too)
    top_p: float = 1.0               # rollout nucleus; < 1 makes old log-probs a recompute
    loss_agg: str = "token-mean"     # "token-mean" (DAPO) | "seq-mean-token-mean" (GRPO)
    eps_low: float = 0.2             # ratio clipped below at 1 - eps_low
    eps_high: float = 0.28           # ratio clipped above at 1 + eps_high (clip-higher)
    dual_clip: float | None = None   # c of the dual clip for A < 0 (verl uses 3.0); None = off
    kl_coef: float = 0.0             # beta of the k3 KL to the reference (0 = no reference)
    dynamic_sampling: bool = True    # drop groups whose rewards are all equal (DAPO)
    max_refill_rounds: int = 0       # extra rollout rounds to refill dropped groups (needs refill)
    std_normalize: bool = True       # divide advantages by the group std (False: Dr. GRPO)
    adv_eps: float = 1e-6            # eps in (R - mean) / (std + eps)
    epochs: int = 1                  # passes over the step's rollouts (PPO epochs)
    minibatches: int = 1             # optimizer steps per epoch (rows split evenly)
    microbatch_rows: int = 32        # rows per forward/backward, grouped by length and trimmed
                                     # of padding (exact: gradients accumulate); 0 = all at once
    share_prompts: bool = True       # run each distinct prompt of a minibatch once in the update
                                     # (its keys/values serve every completion of it; exact)
    lr: float = 1e-4                 # AdamW learning rate
    weight_decay: float = 0.0        # AdamW weight decay
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0           # max global grad norm (0 = off)

    def __post_init__(self):
        if self.loss_agg not in AGGREGATIONS:
            raise ValueError(f"loss_agg must be one of {AGGREGATIONS}, got {self.loss_agg!r}")
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2 (advantages are relative within a group)")

    @classmethod
    def grpo(cls, **kw) -> "GRPOConfig":
        """DeepSeekMath's GRPO: symmetric clip 0.2, per-sequence mean, all groups kept.
        (The paper's beta = 0.04 KL needs a reference: pass kl_coef=0.04 to use it.)"""
        base = dict(loss_agg="seq-mean-token-mean", eps_low=0.2, eps_high=0.2,
                    dynamic_sampling=False, kl_coef=0.0)
        return cls(**{**base, **kw})

    @classmethod
    def dapo(cls, **kw) -> "GRPOConfig":
        """DAPO: token-mean, clip-higher 0.2 / 0.28, dynamic sampling, no KL."""
        base = dict(loss_agg="token-mean", eps_low=0.2, eps_high=0.28, dynamic_sampling=True,
                    kl_coef=0.0)
        return cls(**{**base, **kw})


@dataclass
class Sample:
    """What a reward function sees about one completion."""

    item: Any          # the prompt's item (e.g. a `hrlzoo.lm.tasks.Problem`)
    index: int         # which of the G samples of its group (0..G-1)
    text: str          # completion text, stop token removed
    n_tokens: int      # generated tokens, stop token included
    finished: bool     # ended with a stop token (False: cut at max_new_tokens)


@dataclass
class GroupBatch:
    """G scored completions of each of n prompts; rollout rows are group-major (row g*G + j)."""

    items: list
    rollout: Rollout
    rewards: torch.Tensor            # [n, G]
    samples: list[Sample]            # n * G, in row order
    group_size: int

    @property
    def n_groups(self) -> int:
        return len(self.items)

    def select_groups(self, groups: Sequence[int]) -> "GroupBatch":
        G = self.group_size
        rows = torch.as_tensor([g * G + j for g in groups for j in range(G)], dtype=torch.long)
        return GroupBatch([self.items[g] for g in groups], self.rollout.select(rows),
                          self.rewards[list(groups)], [self.samples[int(r)] for r in rows], G)

    @staticmethod
    def concat(batches: Sequence["GroupBatch"], pad_id: int) -> "GroupBatch":
        """Groups of several batches in one (prompts and completions re-padded)."""
        if len(batches) == 1:
            return batches[0]
        parts = [b.rollout for b in batches]
        P = max(r.prompt_ids.shape[1] for r in parts)
        N = max(r.tokens.shape[1] for r in parts)

        def pad(x, width, value, left):
            extra = width - x.shape[1]
            if extra == 0:
                return x
            fill = torch.full((x.shape[0], extra), value, dtype=x.dtype, device=x.device)
            return torch.cat([fill, x] if left else [x, fill], 1)

        roll = Rollout(
            torch.cat([pad(r.prompt_ids, P, pad_id, True) for r in parts]),
            torch.cat([pad(r.prompt_mask, P, False, True) for r in parts]),
            torch.cat([pad(r.tokens, N, pad_id, False) for r in parts]),
            torch.cat([pad(r.mask, N, False, False) for r in parts]),
            torch.cat([pad(r.logprobs, N, 0.0, False) for r in parts]),
            torch.cat([r.finished for r in parts]))
        return GroupBatch([i for b in batches for i in b.items], roll,
                          torch.cat([b.rewards for b in batches]),
                          [s for b in batches for s in b.samples], batches[0].group_size)


# ------------------------------------------------------------------------------ the formulas
def group_advantages(rewards: torch.Tensor, *, std_normalize: bool = True,
                     eps: float = 1e-6) -> torch.Tensor:
    """A[g, j] = (R[g, j] - mean_j R[g, :]) / (std_j R[g, :] + eps) for rewards [n_groups, G]:
    normalised within each group only. A group whose rewards are all equal gets A = 0."""
    mean = rewards.mean(1, keepdim=True)
    adv = rewards - mean
    if std_normalize:
        adv = adv / (rewards.std(1, keepdim=True) + eps)
    return adv


def overlong_penalty(n_tokens: int, max_len: int, cache_len: int) -> float:
    """DAPO's soft overlong punishment (Eq. 13), added to the task reward:
    0 if n <= max_len - cache_len; ((max_len - cache_len) - n) / cache_len (from 0 down to -1)
    inside the last `cache_len` tokens; -1 beyond max_len."""
    if n_tokens <= max_len - cache_len:
        return 0.0
    if n_tokens <= max_len:
        return ((max_len - cache_len) - n_tokens) / cache_len
    return -1.0


def uniform_groups(rewards: torch.Tensor) -> torch.Tensor:
    """[n_groups] bool: every reward of the group is the same (zero advantage, no gradient)."""
    return (rewards == rewards[:, :1]).all(1)


def drop_uniform_groups(batch: GroupBatch) -> GroupBatch:
    """DAPO's dynamic-sampling filter: the groups whose rewards are not all equal."""
    keep = (~uniform_groups(batch.rewards)).nonzero().squeeze(1).tolist()
    return batch.select_groups(keep)


def clipped_token_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, *,
                       eps_low: float, eps_high: float,
                       dual_clip: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss with asymmetric clipping (DAPO Eq. 10):
    l = -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A), rho = exp(logp - old_logp);
    with `dual_clip` = c: l = min(l, -c A) where A < 0. Returns (l, clipped) where `clipped`
    marks tokens whose clipped term was the active one."""
    ratio = torch.exp(logp - old_logp)
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    if dual_clip is not None:
        loss = torch.where(adv < 0, torch.minimum(loss, -adv * dual_clip), loss)
    return loss, clipped > unclipped


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi_theta || pi_ref): exp(ref - logp) - (ref - logp) - 1 >= 0
    (GRPO Eq. 4)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def token_weights(mask: torch.Tensor, how: str) -> torch.Tensor:
    """Weights w [B, N] with aggregate = sum_i,t w_i,t l_i,t:
    "token-mean": w = 1 / (number of real tokens in the batch) (DAPO Eq. 12);
    "seq-mean-token-mean": w = 1 / (|o_i| * number of non-empty rows) (GRPO Eq. 3).
    As plain weights they let a minibatch be split into microbatches exactly."""
    m = mask.float()
    if how == "token-mean":
        return m / m.sum().clamp(min=1)
    if how == "seq-mean-token-mean":
        n = m.sum(1, keepdim=True)
        return m / n.clamp(min=1) / (n > 0).sum().clamp(min=1)
    raise ValueError(f"unknown aggregation {how!r}")


def aggregate(token_loss: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """The loss of a batch from per-token losses: sum of `token_weights(mask, how)` * loss."""
    return (token_loss * token_weights(mask, how).to(token_loss.dtype)).sum()


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
                cfg: GRPOConfig, ref_logp: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """The aggregated objective of one (mini)batch: clipped policy-gradient loss plus
    kl_coef * k3 KL. logp/old_logp/ref_logp/mask: [B, N]; adv: [B] or [B, N]. `weights`
    (default `token_weights(mask, cfg.loss_agg)`) are given when this is one microbatch of a
    larger minibatch: the returned loss and statistics are then that microbatch's share."""
    if adv.dim() == 1:
        adv = adv[:, None].expand_as(logp)
    w = token_weights(mask, cfg.loss_agg) if weights is None else weights
    tok, clipped = clipped_token_loss(logp, old_logp, adv, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                                      dual_clip=cfg.dual_clip)
    stats = {}
    if cfg.kl_coef > 0:
        if ref_logp is None:
            raise ValueError("kl_coef > 0 needs reference log-probs")
        kl = k3_kl(logp, ref_logp)
        tok = tok + cfg.kl_coef * kl
        stats["kl"] = (kl.detach() * w).sum().item()
    stats["clipfrac"] = (clipped.float() * w).sum().item()
    return (tok * w).sum(), stats


# ------------------------------------------------------------------------------ the loop
def rollout_groups(model, items: Sequence, cfg: GRPOConfig, *, prompt_fn: Callable[[Any, int], list[int]],
                   reward_fn: Callable[[Sample], float], tok, pad_id: int, stop_ids: Sequence[int],
                   generator: torch.Generator | None = None) -> GroupBatch:
    """G completions of every item's prompt(s) (`prompt_fn(item, j)` gives the token ids of
    sample j, BOS included), each scored by `reward_fn`."""
    G = cfg.group_size
    prompts = [prompt_fn(item, j) for item in items for j in range(G)]
    roll = sample(model, prompts, max_new_tokens=cfg.max_new_tokens, pad_id=pad_id, stop_ids=stop_ids,
                  temperature=cfg.temperature, top_p=cfg.top_p, generator=generator)
    texts = roll.texts(tok)
    samples = [Sample(items[r // G], r % G, texts[r], n, fin) for r, (n, fin) in
               enumerate(zip(roll.lengths.tolist(), roll.finished.tolist()))]
    rewards = torch.tensor([float(reward_fn(s)) for s in samples]).view(len(items), G)
    return GroupBatch(list(items), roll, rewards, samples, G)


class SharedPrompts:
    """The update's forward and backward over the prompts of a minibatch, once per DISTINCT
    prompt instead of once per completion (a group's G completions share one prompt).

        shared = SharedPrompts(model, part, temperature)    # prompts' forward, graph kept
        logp = shared.logprobs(idx, n)                      # completions of rows idx, [b, n]
        ... loss(logp).backward() for every microbatch ...
        shared.backward()                                   # the prompts' share of the gradient

    The prompts' keys and values of every layer (and the logits of their last place, which
    predict the first completion token) are handed to the completions as leaf tensors; each
    microbatch's backward leaves their gradients in `.grad`, and `backward` runs them once
    through the prompts' graph. Parameter gradients equal those of running every row's prompt
    and completion together (`completion_logprobs`; tested), for less compute when prompts
    repeat."""

    def __init__(self, model, roll: Rollout, temperature: float = 1.0):
        from hrlzoo.nets.tinygpt import positions_from_mask

        self.model, self.roll, self.temperature = model, roll, temperature
        key = torch.cat([roll.prompt_ids, roll.prompt_mask.long()], 1)
        uniq, self.group = torch.unique(key, dim=0, return_inverse=True)
        P = roll.prompt_ids.shape[1]
        ids, self.mask = uniq[:, :P], uniq[:, P:].bool()
        self.n_real = self.mask.sum(1)
        cache = model.new_cache(ids.shape[0], P, chunk=None)
        last = model(ids, pos=positions_from_mask(self.mask), key_mask=self.mask, cache=cache)[:, -1]
        self.made = [*cache.k, *cache.v, last]
        self.cache = cache.detached()
        self.last = last.detach().requires_grad_()

    @property
    def n_prompts(self) -> int:
        return int(self.mask.shape[0])

    def logprobs(self, rows: torch.Tensor, n: int) -> torch.Tensor:
        """Log-probs [b, n] of the first n completion tokens of rollout rows `rows` (0 where
        ~mask), with grad."""
        g = self.group[rows]
        tokens, mask = self.roll.tokens[rows, :n], self.roll.mask[rows, :n]
        logits = self.last[g][:, None]                                   # predicts token 0
        if n > 1:
            cache = self.cache.rows(g, room=n - 1)
            pos = self.n_real[g][:, None] + torch.arange(n - 1, device=tokens.device)[None]
            key_mask = torch.cat([self.mask[g], mask[:, :n - 1]], 1)
            logits = torch.cat([logits, self.model(tokens[:, :n - 1], pos=pos, key_mask=key_mask, cache=cache)], 1)
        logits = logits.float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        return logits.log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1) * mask

    def backward(self) -> None:
        """Carry the gradients the completions left on the prompts' keys, values and last
        logits through the prompts' forward (call once, after every microbatch's backward)."""
        leaves = [*self.cache.k, *self.cache.v, self.last]
        pairs = [(t, leaf.grad) for t, leaf in zip(self.made, leaves) if leaf.grad is not None]
        if pairs:
            torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])


def microbatches(lengths: torch.Tensor, rows: int) -> list[torch.Tensor]:
    """Row indices in chunks of about `rows`, sorted by length so that each chunk, trimmed of
    the columns that are padding in all its rows, carries little padding."""
    order = torch.argsort(lengths, stable=True)
    n = 1 if rows <= 0 else max(1, -(-len(order) // rows))
    return list(order.chunk(n))


def ppo_update(model, opt: torch.optim.Optimizer, batch: GroupBatch, adv: torch.Tensor,
               cfg: GRPOConfig, *, ref_model=None, generator: torch.Generator | None = None,
               extra_loss: Callable[[], torch.Tensor] | None = None, step: int = -1) -> dict:
    """`cfg.epochs` passes of `cfg.minibatches` optimizer steps each over the batch's rows,
    maximising the clipped objective against the log-probs of the sampling policy.
    adv: [n_groups, G] (or [n_groups, G, N] per token). Each minibatch's loss is accumulated
    over microbatches of `cfg.microbatch_rows` rows with the minibatch's own aggregation
    weights, so the gradient is that of the whole minibatch. `extra_loss()` (e.g. lambda *
    L_SFT) is added once per optimizer step. Returns mean statistics over the steps; a
    non-finite loss raises NonFiniteError naming `step` before any parameter moves.
    Keep dropout at 0 for RL: the ratio compares a train-mode forward with the sampler's."""
    roll = batch.rollout
    B = roll.tokens.shape[0]
    adv = adv.reshape(B, *adv.shape[2:]).to(roll.logprobs.device)
    with torch.no_grad():
        if cfg.top_p < 1.0:  # the sampler's log-probs are of the nucleus-truncated policy
            old = completion_logprobs(model, roll, temperature=cfg.temperature)
        else:
            old = roll.logprobs
        ref = completion_logprobs(ref_model, roll, temperature=cfg.temperature) \
            if cfg.kl_coef > 0 else None
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    logs: dict[str, list[float]] = {}
    for _ in range(cfg.epochs):
        order = torch.randperm(B, generator=generator) if cfg.minibatches > 1 else torch.arange(B)
        for rows in order.chunk(cfg.minibatches):
            part = roll.select(rows)
            weights = token_weights(part.mask, cfg.loss_agg)
            opt.zero_grad(set_to_none=True)
            stats: dict[str, float] = {}
            shared = SharedPrompts(model, part, cfg.temperature) if cfg.share_prompts else None
            for idx in microbatches(part.lengths, cfg.microbatch_rows):
                mb = part.select(idx).trimmed()
                n = mb.tokens.shape[1]
                a = adv[rows][idx]
                if shared is not None:
                    logp = shared.logprobs(idx, n)
                else:
                    logp = completion_logprobs(model, mb, temperature=cfg.temperature)
                loss, st = policy_loss(logp, old[rows][idx][:, :n], a[:, :n] if a.dim() == 2 else a,
                                       mb.mask, cfg, None if ref is None else ref[rows][idx][:, :n],
                                       weights=weights[idx][:, :n])
                loss.backward()
                st["loss"] = loss.item()
                for k, v in st.items():
                    stats[k] = stats.get(k, 0.0) + v
            if shared is not None:
                shared.backward()
            if extra_loss is not None:
                extra = extra_loss()
                extra.backward()
                stats["extra_loss"] = extra.item()
                stats["loss"] += stats["extra_loss"]
            if not math.isfinite(stats["loss"]):
                raise NonFiniteError(f"grpo: loss is {stats['loss']} at step {step}")
            if cfg.grad_clip:
                stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
            opt.step()
            for k, v in stats.items():
                logs.setdefault(k, []).append(v)
    return {k: sum(v) / len(v) for k, v in logs.items()}


@dataclass
class GRPOTrainer:
    """Owns the optimizer, the reference model (when kl_coef > 0) and the sampling RNG.

    prompt_fn(item, j) -> prompt token ids of sample j of the item's group;
    reward_fn(Sample) -> float; advantage_fn(rewards [n, G], batch) -> advantages [n, G]
    (default: `group_advantages`). `step` returns a dict of floats and keeps the last
    GroupBatch (unfiltered, all rounds) in `last_batch` for a paper's own bookkeeping."""

    model: Any
    cfg: GRPOConfig
    prompt_fn: Callable[[Any, int], list[int]]
    reward_fn: Callable[[Sample], float]
    tok: Any
    stop_ids: Sequence[int]
    advantage_fn: Callable[[torch.Tensor, GroupBatch], torch.Tensor] | None = None
    ref_model: Any = None
    seed: int = 0
    opt: torch.optim.Optimizer | None = None
    steps_done: int = 0
    generated_tokens: int = 0
    last_batch: GroupBatch | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.opt is None:
            from hrlzoo.nets.optim import AdamW  # torch.optim.AdamW, bit for bit, without its import cost

            self.opt = AdamW(self.model.parameters(), lr=self.cfg.lr, betas=self.cfg.betas,
                             weight_decay=self.cfg.weight_decay)
        if self.cfg.kl_coef > 0 and self.ref_model is None:
            self.ref_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        device = next(self.model.parameters()).device
        self.gen = torch.Generator(device=device).manual_seed(self.seed)
        self.shuffle_gen = torch.Generator().manual_seed(self.seed + 1)

    @property
    def pad_id(self) -> int:
        return self.tok.pad_id

    def rollout(self, items: Sequence) -> GroupBatch:
        batch = rollout_groups(self.model, items, self.cfg, prompt_fn=self.prompt_fn,
                               reward_fn=self.reward_fn, tok=self.tok, pad_id=self.pad_id,
                               stop_ids=self.stop_ids, generator=self.gen)
        self.generated_tokens += int(batch.rollout.mask.sum())
        return batch

    def step(self, items: Sequence, *, refill: Callable[[int], Sequence] | None = None,
             extra_loss: Callable[[], torch.Tensor] | None = None) -> dict:
        """One RL step on `items` (n prompts -> n * G rollouts). With dynamic sampling, groups
        whose rewards are all equal are dropped and, while fewer than n remain and rounds are
        left, `refill(k)` supplies k more items to roll out. No update if no group remains."""
        t0 = time.perf_counter()
        target = len(items)
        rounds = [self.rollout(items)]
        kept = [drop_uniform_groups(rounds[0])] if self.cfg.dynamic_sampling else [rounds[0]]
        while (self.cfg.dynamic_sampling and refill is not None and len(rounds) <= self.cfg.max_refill_rounds
               and sum(b.n_groups for b in kept) < target):
            more = list(refill(target - sum(b.n_groups for b in kept)))
            if not more:
                break
            rounds.append(self.rollout(more))
            kept.append(drop_uniform_groups(rounds[-1]))
        everything = GroupBatch.concat(rounds, self.pad_id)
        batch = GroupBatch.concat([b for b in kept if b.n_groups] or [kept[0]], self.pad_id)
        if batch.n_groups > target:
            batch = batch.select_groups(range(target))
        self.last_batch = everything
        t_sample = time.perf_counter() - t0

        stats = {"reward_mean": everything.rewards.mean().item(),
                 "length_mean": everything.rollout.lengths.float().mean().item(),
                 "groups_kept": float(batch.n_groups), "groups_sampled": float(everything.n_groups),
                 "sample_seconds": t_sample}
        if batch.n_groups:
            adv = (self.advantage_fn(batch.rewards, batch) if self.advantage_fn is not None else
                   group_advantages(batch.rewards, std_normalize=self.cfg.std_normalize, eps=self.cfg.adv_eps))
            stats.update(ppo_update(self.model, self.opt, batch, adv, self.cfg, ref_model=self.ref_model,
                                    generator=self.shuffle_gen, extra_loss=extra_loss,
                                    step=self.steps_done))
        self.steps_done += 1
        stats["seconds"] = time.perf_counter() - t0
        stats["generated_tokens"] = float(self.generated_tokens)
        return stats
