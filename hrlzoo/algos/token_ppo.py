"""Token-level PPO for a language-model agent in a multi-turn text game (ArCHer's PPO baseline).

    ppo = TokenPPO(model, TokenPPOConfig(lr=1e-5), pad_id=tok.pad_id, seed=0)
    games = play(env, tok, sampling_actor(model, tok, ...), hidden)   # hrlzoo.lm.multiturn
    stats = ppo.update(games)

Every generated token is an action (the token-level MDP that ArCHer's paper compares against:
"token-level PPO", spec A §4.5). The environment's reward of a turn arrives on the last token of
its utterance; the discount is `token_gamma` between tokens of one utterance (1: the utterance is
one decision in time) and `gamma` from the last token of an utterance to the first of the next
(the utterance-level discount, 0.95 in ArCHer's configs), so a token's return is the
utterance-level discounted return. Values come from a scalar head on the policy's last hidden
state (`ValueHead`, the trunk shared as TRL's `AutoModelForCausalLMWithValueHead`), read at the
place that predicts the token. Advantages: GAE(lambda) over each game's token sequence
(Schulman et al. 2016), whitened over the batch; the game's last token bootstraps from 0 (every
game ends with done, the official env counting the turn limit as terminal). Loss per token
(Schulman et al. 2017, as TRL's PPOTrainer): the clipped ratio objective of
`hrlzoo.algos.grpo.clipped_token_loss` (symmetric clip) plus `vf_coef` x the clipped value loss
0.5 max((V - R)^2, (V_clip - R)^2), V_clip = V_old + clip(V - V_old, -value_clip, value_clip),
both token-mean (`hrlzoo.algos.grpo.aggregate`); `epochs` passes of `minibatches` optimizer steps
over the batch's utterances.

Why here and not in `hrlzoo/algos/ppo.py` (the control-task PPO of issue 16): this one acts on
token sequences of an LM with the sampler's log-probs, the rollout layout of
`hrlzoo.lm.multiturn`, and GRPO's token losses, so it reuses the LM pieces, not the MLP ones;
GAE is the only formula the two share (15 lines here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from hrlzoo.algos.grpo import aggregate, clipped_token_loss, microbatches
from hrlzoo.algos.ppo import value_loss
from hrlzoo.pipeline.stage import NonFiniteError


@dataclass
class TokenPPOConfig:
    """Every knob of token-level PPO (defaults: TRL's PPOTrainer where it has one)."""

    gamma: float = 0.95          # discount from one utterance to the next (ArCHer: 0.95)
    token_gamma: float = 1.0     # discount between tokens of one utterance
    lam: float = 0.95            # GAE lambda (TRL: 0.95)
    epochs: int = 4              # PPO epochs over each batch (TRL: 4)
    minibatches: int = 4         # optimizer steps per epoch
    clip: float = 0.2            # ratio clip (TRL cliprange: 0.2)
    value_clip: float = 0.2      # value clip (TRL cliprange_value: 0.2)
    vf_coef: float = 0.1         # weight of the value loss (TRL: 0.1)
    whiten: bool = True          # normalise advantages over the batch (TRL: yes)
    lr: float = 1e-5             # Adam learning rate
    grad_clip: float = 1.0       # max global grad norm (0 = off)
    microbatch_rows: int = 64    # utterances per forward/backward (exact: gradients accumulate)


class ValueHead(nn.Module):
    """A scalar value per place from the policy's last hidden state (initialised at 0)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.linear = nn.Linear(d_model, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h).squeeze(-1)


def logprobs_and_values(model, head: ValueHead, roll) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced log-probs and values [B, N] of a rollout's completion tokens: the value of
    token h is read at the place that predicts it (the state before the token). 0 where ~mask."""
    from hrlzoo.nets.tinygpt import positions_from_mask

    ids, mask = roll.sequences()
    P = roll.prompt_ids.shape[1]
    h = model.hidden(ids, pos=positions_from_mask(mask), key_mask=mask)[:, P - 1:-1]
    lp = model.head(h).float().log_softmax(-1).gather(-1, roll.tokens[..., None]).squeeze(-1)
    return lp * roll.mask, head(h).float() * roll.mask


def token_gae(values: Sequence[float], rewards: Sequence[float], discounts: Sequence[float],
              lam: float) -> tuple[list[float], list[float]]:
    """GAE over one token sequence: discounts[j] multiplies the value of token j + 1 (the last
    token's next value is 0). Returns (advantages, returns = advantages + values)."""
    n = len(values)
    adv = [0.0] * n
    last = 0.0
    for j in range(n - 1, -1, -1):
        nxt = values[j + 1] if j + 1 < n else 0.0
        delta = rewards[j] + discounts[j] * nxt - values[j]
        last = delta + discounts[j] * lam * last
        adv[j] = last
    return adv, [a + v for a, v in zip(adv, values)]


class TokenPPO:
    """Owns the value head and one Adam over policy + head (see the module docstring)."""

    def __init__(self, model, cfg: TokenPPOConfig, *, pad_id: int, seed: int = 0):
        self.model, self.cfg, self.pad_id = model, cfg, pad_id
        device = next(model.parameters()).device
        self.head = ValueHead(model.cfg.d_model).to(device)
        self.params = [p for p in model.parameters() if p.requires_grad] + list(self.head.parameters())
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(seed)
        self.updates = 0

    def targets(self, games: Sequence[Sequence]) -> tuple[list, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(turns, advantages [T, N], returns [T, N], old values [T, N]) of played games."""
        from hrlzoo.lm.multiturn import turns_rollout

        cfg = self.cfg
        turns = [t for g in games for t in g]
        roll = turns_rollout(turns, self.pad_id, next(self.model.parameters()).device)
        with torch.no_grad():
            _, values = logprobs_and_values(self.model, self.head, roll)
        adv = torch.zeros_like(values)
        ret = torch.zeros_like(values)
        row = 0
        for g in games:
            vals, rews, disc, places = [], [], [], []
            for t in g:
                n = len(t.action_ids)
                for h in range(n):
                    vals.append(float(values[row, h]))
                    last = h == n - 1
                    rews.append(t.reward if last else 0.0)
                    disc.append(0.0 if (last and t.done) else (cfg.gamma if last else cfg.token_gamma))
                    places.append((row, h))
                row += 1
            a, r = token_gae(vals, rews, disc, cfg.lam)
            for (i, h), ai, ri in zip(places, a, r):
                adv[i, h], ret[i, h] = ai, ri
        if cfg.whiten:
            m = roll.mask
            mean, std = adv[m].mean(), adv[m].std()
            adv = torch.where(m, (adv - mean) / (std + 1e-8), torch.zeros_like(adv))
        return turns, adv, ret, values

    def update(self, games: Sequence[Sequence], step: int = -1) -> dict:
        """PPO epochs on the token-level targets of `games` (lists of `Turn`s)."""
        from hrlzoo.lm.multiturn import turns_rollout

        cfg = self.cfg
        turns, adv, ret, old_v = self.targets(games)
        roll = turns_rollout(turns, self.pad_id, adv.device)
        old_lp = roll.logprobs
        B = len(turns)
        self.model.train()
        logs: dict[str, list[float]] = {}
        for _ in range(cfg.epochs):
            order = torch.randperm(B, generator=self.gen)
            for rows in order.chunk(cfg.minibatches):
                part = roll.select(rows)
                n_tok = part.mask.sum().clamp(min=1)
                self.opt.zero_grad(set_to_none=True)
                st = {"loss": 0.0, "pg_loss": 0.0, "vf_loss": 0.0, "clipfrac": 0.0}
                for idx in microbatches(part.lengths, cfg.microbatch_rows):
                    mb = part.select(idx).trimmed()
                    n = mb.tokens.shape[1]
                    r_idx = rows[idx]
                    lp, v = logprobs_and_values(self.model, self.head, mb)
                    a, R, v0, lp0 = adv[r_idx][:, :n], ret[r_idx][:, :n], old_v[r_idx][:, :n], old_lp[r_idx][:, :n]
                    pg, clipped = clipped_token_loss(lp, lp0, a, eps_low=cfg.clip, eps_high=cfg.clip)
                    vf = 0.5 * value_loss(v, v0, R, cfg.value_clip, pessimistic=True)
                    w = mb.mask.float() / n_tok  # token-mean over the minibatch, split exactly
                    pg_l, vf_l = (pg * w).sum(), (vf * w).sum()
                    loss = pg_l + cfg.vf_coef * vf_l
                    loss.backward()
                    st["loss"] += loss.item()
                    st["pg_loss"] += pg_l.item()
                    st["vf_loss"] += vf_l.item()
                    st["clipfrac"] += float((clipped.float() * w).sum())
                if not math.isfinite(st["loss"]):
                    raise NonFiniteError(f"token_ppo: loss is {st['loss']} at step {step}")
                if cfg.grad_clip:
                    st["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip))
                self.opt.step()
                for k, val in st.items():
                    logs.setdefault(k, []).append(val)
        self.updates += 1
        out = {k: sum(v) / len(v) for k, v in logs.items()}
        out["adv_abs"] = float(aggregate(adv.abs(), roll.mask, "token-mean"))
        return out
