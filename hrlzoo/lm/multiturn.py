"""Multi-turn rollouts of a language-model agent in a batched text environment.

    act = sampling_actor(model, tok, max_new_tokens=8, temperature=1.0, generator=g)
    games = play(env, tok, act, hidden)          # one list of Turns per game, in turn order
    games[0][0].observation, .action, .reward, .next_observation, .done, .action_ids, .logprobs

The environment is any batched text game with `batch`, `reset(hidden) -> observations` and
`step(utterances) -> (observations, rewards [B], dones [B])` (e.g.
`hrlzoo.envs.twenty_questions.TwentyQuestionsBatch`). Each turn the observations of the games
still running are encoded (BOS + text) and completed in ONE batched call of the actor, which
by default is `hrlzoo.lm.sampler.sample` with the stop token EOS: the utterance is the
completion without its stop token. A `Turn` keeps the text (for utterance-level critics such
as ArCHer's) and the token ids with their sampling log-probs (for token-level learners such as
PPO). The batch layout follows the official ArCHer `batch_interact_environment`
(`archer/environment/env_utils.py`): every game of the batch is played to its end before the
next batch starts, and each trajectory gets its total reward and its discounted Monte-Carlo
returns (`add_trajectory_reward`, `add_mc_return` there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np


@dataclass
class Turn:
    """One utterance-level transition of one game."""

    observation: str
    action: str                 # the utterance as the environment received it
    reward: float
    next_observation: str
    done: bool
    prompt_ids: list[int] = field(default_factory=list)    # BOS + observation tokens
    action_ids: list[int] = field(default_factory=list)    # generated tokens (stop token included)
    logprobs: list[float] = field(default_factory=list)    # their log-probs under the sampler
    mc_return: float = 0.0      # sum_{t' >= t} gamma^(t' - t) r_t' (official add_mc_return)
    trajectory_reward: float = 0.0  # the game's undiscounted return (official add_trajectory_reward)


@dataclass
class Action:
    """What an actor returns for a batch of observations."""

    texts: list[str]
    token_ids: list[list[int]]
    logprobs: list[list[float]]


Actor = Callable[[list[str], list[list[int]]], Action]


def sampling_actor(model, tok, *, max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
                   generator=None) -> Actor:
    """An actor that samples one utterance per observation with `hrlzoo.lm.sampler.sample`
    (temperature 0: greedy), EOS as the stop token."""
    from hrlzoo.lm.sampler import sample

    def act(observations: list[str], prompts: list[list[int]]) -> Action:
        roll = sample(model, prompts, max_new_tokens=max_new_tokens, pad_id=tok.pad_id,
                      stop_ids=[tok.eos_id], temperature=temperature, top_p=top_p, generator=generator)
        return rollout_action(roll, tok)

    return act


def rollout_action(roll, tok) -> Action:
    """The `Action` of a `hrlzoo.lm.sampler.Rollout`: texts without the stop token, token ids and
    log-probs of every generated token (stop token included)."""
    n = roll.lengths.tolist()
    toks, lps = roll.tokens.tolist(), roll.logprobs.tolist()
    return Action(roll.texts(tok), [t[:k] for t, k in zip(toks, n)], [lp[:k] for lp, k in zip(lps, n)])


def discounted_returns(rewards: Sequence[float], gamma: float) -> list[float]:
    """G_t = r_t + gamma G_{t+1}, G_T = 0."""
    out, g = [0.0] * len(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = float(rewards[t]) + gamma * g
        out[t] = g
    return out


def play(env, tok, act: Actor, hidden: Sequence[int] | np.ndarray, *, gamma: float = 0.95,
         max_turns: int | None = None) -> list[list[Turn]]:
    """Play `len(hidden)` games (in batches of `env.batch`) to their end; one list of Turns per
    game. `max_turns` is a safety cap on the loop (the environment's own limit ends games)."""
    hidden = np.asarray(hidden)
    B = env.batch
    if len(hidden) % B:
        raise ValueError(f"{len(hidden)} games is not a multiple of the environment batch {B}")
    games: list[list[Turn]] = []
    cap = max_turns if max_turns is not None else getattr(env, "max_turns", 10_000)
    for start in range(0, len(hidden), B):
        obs = env.reset(hidden[start:start + B])
        done = np.zeros(B, dtype=bool)
        traj: list[list[Turn]] = [[] for _ in range(B)]
        for _ in range(cap):
            live = np.flatnonzero(~done)
            if live.size == 0:
                break
            live_obs = [obs[i] for i in live]
            prompts = [tok.encode(o, bos=True) for o in live_obs]
            a = act(live_obs, prompts)
            utter = [""] * B
            for j, i in enumerate(live):
                utter[i] = a.texts[j]
            nxt, reward, now_done = env.step(utter)
            for j, i in enumerate(live):
                traj[i].append(Turn(obs[i], a.texts[j], float(reward[i]), nxt[i], bool(now_done[i]),
                                    prompts[j], a.token_ids[j], a.logprobs[j]))
            obs, done = nxt, np.asarray(now_done, dtype=bool)
        for t in traj:
            rets = discounted_returns([x.reward for x in t], gamma)
            total = float(sum(x.reward for x in t))
            for x, g in zip(t, rets):
                x.mc_return, x.trajectory_reward = g, total
        games += traj
    return games


def turns_rollout(turns: Sequence[Turn], pad_id: int, device=None):
    """The turns as one `hrlzoo.lm.sampler.Rollout` (prompts left-padded, utterance tokens
    right-padded, sampling log-probs), so the sampler's `completion_logprobs` and the GRPO/PPO
    losses apply to them unchanged."""
    import torch

    from hrlzoo.lm.sampler import Rollout, left_pad

    prompt_ids, prompt_mask = left_pad([t.prompt_ids for t in turns], pad_id, device)
    N = max(1, max(len(t.action_ids) for t in turns))
    tokens = torch.full((len(turns), N), pad_id, dtype=torch.long)
    mask = torch.zeros((len(turns), N), dtype=torch.bool)
    logprobs = torch.zeros((len(turns), N))
    for i, t in enumerate(turns):
        n = len(t.action_ids)
        if n:
            tokens[i, :n] = torch.as_tensor(t.action_ids)
            mask[i, :n] = True
            if t.logprobs:
                logprobs[i, :n] = torch.as_tensor(t.logprobs)
    finished = torch.ones(len(turns), dtype=torch.bool)
    return Rollout(prompt_ids, prompt_mask, tokens.to(device), mask.to(device), logprobs.to(device),
                   finished.to(device))
