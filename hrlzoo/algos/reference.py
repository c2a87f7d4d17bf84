"""Rollouts of a GRPO group replaced by given completions: rescued solutions entering their
group (Cog-Rethinker's `rescued_to_group`), and the `smoke` scales' reference rollouts.

At `smoke` a language model trained for a few steps never answers right, so every group's
rewards are equal, every advantage is 0 and the RL update path the `cpu` scale runs (non-zero
advantages through the clipped loss, an optimizer step that moves the weights) is never taken.
`with_references(batch, n, ...)` puts the item's reference solution (`hrlzoo.lm.tasks.solution`,
the standard trace) in the first `n` rows of every group whose rewards are all equal, scored by
the run's own reward function, so the update sees a rewarded sample among unrewarded ones.
It is a `smoke`-only knob (`sizes.smoke.rl.reference_rows`; 0 at `cpu` and `paper`: the method).

A replaced row keeps its prompt; its completion is the given token ids (EOS included), marked
finished, and its old log-probs are the current policy's (teacher-forced at the sampling
temperature), so the importance ratio starts at 1 as for a sampled row.
"""

from __future__ import annotations

from typing import Callable

import torch

from hrlzoo.algos.grpo import GroupBatch, Sample, uniform_groups
from hrlzoo.lm.sampler import Rollout, completion_logprobs


def splice_completions(batch: GroupBatch, completions: dict[int, list[int]], model, tok, temperature: float,
                       reward: float | Callable[[Sample], float]) -> GroupBatch:
    """The batch with row r's completion replaced by `completions[r]` (rows in the flat
    [n_groups * G] order) and its reward set to `reward` (a number, or reward(sample))."""
    if not completions:
        return batch
    G = batch.group_size
    rows = sorted(completions)
    comps = [completions[r] for r in rows]
    roll = batch.rollout
    B, N0 = roll.tokens.shape
    N = max(N0, max(len(c) for c in comps))
    tokens = torch.full((B, N), tok.pad_id, dtype=roll.tokens.dtype, device=roll.tokens.device)
    tokens[:, :N0] = roll.tokens
    mask = torch.zeros((B, N), dtype=torch.bool, device=roll.mask.device)
    mask[:, :N0] = roll.mask
    logprobs = torch.zeros((B, N), dtype=roll.logprobs.dtype, device=roll.logprobs.device)
    logprobs[:, :N0] = roll.logprobs
    finished = roll.finished.clone()
    for r, c in zip(rows, comps):
        tokens[r] = tok.pad_id
        tokens[r, :len(c)] = torch.as_tensor(c, dtype=tokens.dtype)
        mask[r] = False
        mask[r, :len(c)] = True
        finished[r] = True
    new = Rollout(roll.prompt_ids, roll.prompt_mask, tokens, mask, logprobs, finished)
    idx = torch.as_tensor(rows, dtype=torch.long)
    with torch.no_grad():
        logprobs[idx] = completion_logprobs(model, new.select(idx), temperature=temperature).to(logprobs.dtype)
    rewards = batch.rewards.clone()
    samples = list(batch.samples)
    for r, c in zip(rows, comps):
        old = samples[r]
        samples[r] = Sample(old.item, old.index, tok.decode(c[:-1]), len(c), True)
        rewards[r // G, r % G] = float(reward(samples[r]) if callable(reward) else reward)
    return GroupBatch(list(batch.items), new, rewards, samples, G)


def with_references(batch: GroupBatch, n_rows: int, model, tok, temperature: float,
                    reward: Callable[[Sample], float]) -> GroupBatch:
    """`smoke` only: the first `n_rows` rollouts of every group whose rewards are all equal
    replaced by the item's reference solution (standard style), scored by `reward`."""
    from hrlzoo.lm.tasks import solution

    if n_rows <= 0:
        return batch
    G = batch.group_size
    comps = {}
    for g in uniform_groups(batch.rewards).nonzero().flatten().tolist():
        ids = tok.encode(solution(batch.items[g]), eos=True)
        comps.update({g * G + j: ids for j in range(min(n_rows, G - 1))})
    return splice_completions(batch, comps, model, tok, temperature, reward)
