"""ArCHer's core (Zhou et al., ICML 2024), read from the official YifeiZhou02/ArCHer:
the utterance-level double critic, the replay buffer, `ArcherTrainer.update` (critic and
token-level actor), online filtered BC and the CHAI actor. Equations and defaults cite
archer/algorithms/archer/trainer.py (T), archer/models/critic.py (C), archer/models/archer_agent.py
(A), archer/models/chai_agent.py (H), archer/algorithms/online_filteredbc/trainer.py (F),
archer/algorithms/offpolicy_train_loop.py (L) and archer/data/utils.py (D).

Critic (C, `DoubleCritic`): an encoder E reads the state s (the whole history) and, separately,
the utterance a; Q_i(s, a) = MLP_i([E(s), E(a)]) with 2d -> d -> d -> 1 ReLU layers, V_i(s) =
MLP'_i(E(s)) with d -> d -> d -> 1, i = 1, 2, the encoder shared by the four heads and trained
with them. E is RoBERTa's pooled output there; here a TinyGPT's last hidden state at the last
token (a causal encoder pools into its last place), initialised from a pretrained (SFT) model as
RoBERTa is pretrained. The target critic is a copy, updated by Polyak averaging with tau after
every critic step (A `soft_update_target_critic`, T `update`).

Critic loss (T `critic_loss`), on transitions (s, a, r, s', d) from the replay buffer, with a' ~
pi(.|s) sampled fresh (temperature 1) and no gradient through targets:

    L = sum_i MSE(Q_i(s, a), r + gamma (1 - d) Vbar_i(s')) + sum_i MSE(V_i(s), Qbar_i(s, a'))

Actor loss (T `actor_loss` + `update`), token level, on states s from the buffer with a fresh
a' ~ pi(.|s): A(s, a') = min(Q_1, Q_2)(s, a') - min(V_1, V_2)(s) from the ONLINE critic, no grad;

    L_pi = - mean[ A(s, a') * sum_h log pi(a'_h | s, a'_<h) ]

Schedule (T `update`): `critic_epochs` critic steps, each on grad_accum x batch_size transitions
(the official sums the loss of grad_accum micro-batches of batch_size: here the loss of the whole
batch times grad_accum, the same gradient); then, unless in the warm-up iterations, `actor_epochs`
actor steps of the same size; max grad norm clipping before every step; Adam for both.

Online filtered BC (F + L): after each rollout, the trajectories whose return reaches the 0.9
quantile of ALL trajectories so far form a buffer; `actor_epochs` steps of the BC loss
- mean(sum_h log pi(a_h | s, a_<h)) on grad_accum x batch_size of its transitions (also skipped
in the warm-up iterations: L passes no_update_actor = i < warmup_iter to both trainers).

CHAI (H): the critic is trained exactly as ArCHer's, the policy never (run.py sets warmup_iter =
iterations); each action is the one of `k` = 5 samples with the largest min(Qbar_1, Qbar_2).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from hrlzoo.nets.ensemble import ema_update
from hrlzoo.pipeline.stage import NonFiniteError


def _mlp(d_in: int, d: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))


class DoubleCritic(nn.Module):
    """Q1, Q2 (state + utterance) and V1, V2 (state) heads on one shared encoder (C)."""

    def __init__(self, encoder):
        super().__init__()
        d = encoder.cfg.d_model
        self.encoder = encoder
        self.q1, self.q2 = _mlp(2 * d, d), _mlp(2 * d, d)
        self.v1, self.v2 = _mlp(d, d), _mlp(d, d)

    def embed(self, seqs: Sequence[Sequence[int]]) -> torch.Tensor:
        """E of token sequences (BOS included): the last place's hidden state, [B, d]."""
        from hrlzoo.lm.sampler import left_pad
        from hrlzoo.nets.tinygpt import positions_from_mask

        device = next(self.parameters()).device
        ids, mask = left_pad(seqs, 0, device)
        return self.encoder.hidden(ids, pos=positions_from_mask(mask), key_mask=mask)[:, -1].float()

    def forward(self, states: Sequence[Sequence[int]], actions: Sequence[Sequence[int]]):
        """(q1, q2, v1, v2), each [B]."""
        es, ea = self.embed(states), self.embed(actions)
        sa = torch.cat([es, ea], 1)
        return (self.q1(sa).squeeze(1), self.q2(sa).squeeze(1), self.v1(es).squeeze(1),
                self.v2(es).squeeze(1))


@dataclass
class Transition:
    """One utterance-level transition as the critic and actor read it (token ids, BOS first)."""

    state: list[int]         # BOS + history
    action: list[int]        # BOS + utterance words + EOS (the critic's view of the utterance)
    reward: float
    next_state: list[int]
    done: bool
    utterance: list[int]     # the generated tokens (stop token included): what the policy emitted


class ReplayBuffer:
    """Uniform replay of utterance-level transitions (D `ReplayBuffer`: a ring of `capacity`)."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.items: list[Transition] = []
        self.next = 0

    def __len__(self) -> int:
        return len(self.items)

    def add(self, t: Transition) -> None:
        if len(self.items) < self.capacity:
            self.items.append(t)
        else:
            self.items[self.next] = t
        self.next = (self.next + 1) % self.capacity

    def sample(self, n: int, rng: np.random.Generator) -> list[Transition]:
        return [self.items[i] for i in rng.integers(len(self.items), size=n)]


def transitions(games, tok) -> list[Transition]:
    """Transitions of played games (`hrlzoo.lm.multiturn.Turn` lists)."""
    out = []
    for g in games:
        for t in g:
            out.append(Transition(t.prompt_ids, tok.encode(t.action, bos=True, eos=True), t.reward,
                                  tok.encode(t.next_observation, bos=True), t.done, list(t.action_ids)))
    return out


@dataclass
class ArcherConfig:
    """The trainer's knobs (official defaults in the comments: default.yaml / archer_20q.yaml)."""

    gamma: float = 0.95          # discount (0.95)
    tau: float = 0.1             # Polyak rate of the target critic (0.1)
    critic_lr: float = 2e-5      # Adam lr of the critic (archer_20q: 2e-5)
    lm_lr: float = 1e-6          # Adam lr of the policy (archer_20q: 1e-6)
    critic_epochs: int = 50      # critic steps per iteration (50)
    actor_epochs: int = 3        # actor steps per iteration (3)
    batch_size: int = 8          # micro-batch (8)
    grad_accum: int = 32         # micro-batches per step (32): 256 transitions per step
    max_grad_norm: float = 1.0   # (1.0)
    max_new_tokens: int = 8      # utterance cap (official 32 subword tokens)
    temperature: float = 1.0     # sampling temperature of a' (1.0)


def _sample_utterances(model, tok, states: Sequence[Sequence[int]], cfg: ArcherConfig, gen):
    """Fresh utterances a' ~ pi(.|s): the sampler's Rollout and the critic's view of each."""
    from hrlzoo.lm.sampler import sample

    roll = sample(model, states, max_new_tokens=cfg.max_new_tokens, pad_id=tok.pad_id, stop_ids=[tok.eos_id],
                  temperature=cfg.temperature, generator=gen)
    views = [[tok.bos_id, *row[: n - 1 if fin else n], tok.eos_id] for row, n, fin in
             zip(roll.tokens.tolist(), roll.lengths.tolist(), roll.finished.tolist())]
    return roll, views


def _check(name: str, value: float, step: int) -> float:
    if not math.isfinite(value):
        raise NonFiniteError(f"archer: {name} is {value} at step {step}")
    return value


class ArcherTrainer:
    """`update(buffer, update_actor)`: T `ArcherTrainer.update` (see the module docstring)."""

    def __init__(self, policy, critic: DoubleCritic, tok, cfg: ArcherConfig, seed: int):
        self.policy, self.critic, self.tok, self.cfg = policy, critic, tok, cfg
        self.target = copy.deepcopy(critic).requires_grad_(False)
        self.critic_opt = torch.optim.Adam(critic.parameters(), lr=cfg.critic_lr)
        self.lm_opt = torch.optim.Adam(policy.parameters(), lr=cfg.lm_lr)
        self.rng = np.random.default_rng([seed, 77])
        device = next(policy.parameters()).device
        self.gen = torch.Generator(device=device).manual_seed(seed + 7)
        self.steps = 0

    @property
    def n(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum

    def critic_step(self, batch: list[Transition]) -> dict:
        cfg = self.cfg
        s = [t.state for t in batch]
        a = [t.action for t in batch]
        r = torch.tensor([t.reward for t in batch])
        d = torch.tensor([float(t.done) for t in batch])
        self.critic.train()
        q1, q2, v1, v2 = self.critic(s, a)
        with torch.no_grad():
            _, pi_views = _sample_utterances(self.policy, self.tok, s, cfg, self.gen)
            tq1, tq2, _, _ = self.target(s, pi_views)
            _, _, tv1, tv2 = self.target([t.next_state for t in batch], a)
            y1 = r.to(tv1) + (1 - d.to(tv1)) * cfg.gamma * tv1
            y2 = r.to(tv2) + (1 - d.to(tv2)) * cfg.gamma * tv2
        mse = nn.functional.mse_loss
        losses = {"q1": mse(q1, y1), "q2": mse(q2, y2), "v1": mse(v1, tq1), "v2": mse(v2, tq2)}
        loss = cfg.grad_accum * sum(losses.values())
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        _check("critic loss", loss.item(), self.steps)
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
        self.critic_opt.step()
        ema_update(self.target, self.critic, cfg.tau)
        return {f"{k}_loss": v.item() for k, v in losses.items()} | {"q_mean": q1.mean().item(),
                                                                  "v_mean": v1.mean().item()}

    def actor_step(self, batch: list[Transition]) -> dict:
        from hrlzoo.lm.sampler import completion_logprobs

        cfg = self.cfg
        s = [t.state for t in batch]
        roll, views = _sample_utterances(self.policy, self.tok, s, cfg, self.gen)
        with torch.no_grad():
            self.critic.eval()
            q1, q2, v1, v2 = self.critic(s, views)
            adv = torch.minimum(q1, q2) - torch.minimum(v1, v2)
        self.policy.train()
        logp = completion_logprobs(self.policy, roll.trimmed()).sum(1)
        loss = -cfg.grad_accum * (logp * adv.to(logp)).mean()
        self.lm_opt.zero_grad(set_to_none=True)
        loss.backward()
        _check("actor loss", loss.item(), self.steps)
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
        self.lm_opt.step()
        return {"pg_loss": loss.item() / cfg.grad_accum, "advantage_mean": adv.mean().item(),
                "advantage_std": adv.std().item() if adv.numel() > 1 else 0.0}

    def update(self, buffer: ReplayBuffer, update_actor: bool) -> dict:
        logs: dict[str, list[float]] = {}
        for _ in range(self.cfg.critic_epochs):
            for k, v in self.critic_step(buffer.sample(self.n, self.rng)).items():
                logs.setdefault(k, []).append(v)
        if update_actor:
            for _ in range(self.cfg.actor_epochs):
                for k, v in self.actor_step(buffer.sample(self.n, self.rng)).items():
                    logs.setdefault(k, []).append(v)
        self.steps += 1
        return {k: float(np.mean(v)) for k, v in logs.items()}


class FilteredBC:
    """Online filtered BC (F + L): BC on the top (1 - quantile) of all trajectories so far."""

    def __init__(self, policy, tok, cfg: ArcherConfig, seed: int, quantile: float = 0.9):
        self.policy, self.tok, self.cfg, self.quantile = policy, tok, cfg, quantile
        self.opt = torch.optim.Adam(policy.parameters(), lr=cfg.lm_lr)
        self.rng = np.random.default_rng([seed, 78])
        self.steps = 0

    def update(self, games: list, update_actor: bool) -> dict:
        """`games`: every trajectory collected so far (lists of Turns)."""
        from hrlzoo.lm.multiturn import turns_rollout
        from hrlzoo.lm.sampler import completion_logprobs

        cfg = self.cfg
        returns = np.array([g[0].trajectory_reward for g in games])
        cutoff = float(np.quantile(returns, self.quantile))
        kept = [t for g, R in zip(games, returns) if R >= cutoff for t in g]
        logs: dict[str, list[float]] = {"cutoff": [cutoff], "kept_turns": [float(len(kept))]}
        if update_actor:
            n = cfg.batch_size * cfg.grad_accum
            device = next(self.policy.parameters()).device
            for _ in range(cfg.actor_epochs):
                batch = [kept[i] for i in self.rng.integers(len(kept), size=n)]
                self.policy.train()
                roll = turns_rollout(batch, self.tok.pad_id, device).trimmed()
                loss = -cfg.grad_accum * completion_logprobs(self.policy, roll).sum(1).mean()
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                _check("bc loss", loss.item(), self.steps)
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                self.opt.step()
                logs.setdefault("bc_loss", []).append(loss.item() / cfg.grad_accum)
        self.steps += 1
        return {k: float(np.mean(v)) for k, v in logs.items()}


def chai_actor(policy, target: DoubleCritic, tok, *, k: int, max_new_tokens: int, temperature: float, gen):
    """The CHAI actor (H `get_action`): `k` sampled utterances per state, the one with the largest
    min(Qbar_1, Qbar_2) of the target critic."""
    from hrlzoo.lm.multiturn import Action, rollout_action
    from hrlzoo.lm.sampler import sample

    def act(observations, prompts):
        rolls, qs = [], []
        with torch.no_grad():
            for _ in range(k):
                roll = sample(policy, prompts, max_new_tokens=max_new_tokens, pad_id=tok.pad_id,
                              stop_ids=[tok.eos_id], temperature=temperature, generator=gen)
                a = rollout_action(roll, tok)
                views = [[tok.bos_id, *tok.encode(t), tok.eos_id] for t in a.texts]  # the critic's view
                q1, q2, _, _ = target(prompts, views)
                rolls.append(a)
                qs.append(torch.minimum(q1, q2))
        best = torch.stack(qs).argmax(0).tolist()
        return Action([rolls[b].texts[i] for i, b in enumerate(best)],
                      [rolls[b].token_ids[i] for i, b in enumerate(best)],
                      [rolls[b].logprobs[i] for i, b in enumerate(best)])

    return act
