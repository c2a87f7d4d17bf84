"""Batched sampling with a KV cache, and teacher-forced per-token log-probs.

    roll = sample(model, [tok.encode(p, bos=True) for p in prompts], max_new_tokens=96,
                  pad_id=tok.pad_id, stop_ids=[tok.eos_id], temperature=1.0, top_p=1.0,
                  generator=torch.Generator().manual_seed(0))
    roll.tokens, roll.mask, roll.logprobs      # [B, N] each; N <= max_new_tokens
    roll.texts(tok)                            # completions as text, stop token removed
    lp = completion_logprobs(model, roll)      # the same log-probs, teacher-forced (with grad)
    outs = complete(model, tok, ["Q:1+2<think>"], max_new_tokens=96)   # text in, text out (eval)

Prompts of different lengths are left-padded into one [B, P] block; each row's positions
start at 0 at its first real token, so padding changes nothing. The prompt is run once
(prefill; a prompt that several rows share, e.g. the G samples of a group, runs once for
all of them and its keys and values are copied to each) and every new token costs one forward of ONE position per row against the cached
keys and values: the prefix is never recomputed. A row stops after it emits a token of
`stop_ids` (the stop token is kept and counted in the mask); later places hold `pad_id`,
mask False, log-prob 0. Decoding ends when every row has stopped or after `max_new_tokens`.
Finished rows are dropped from the batch (and from the cache) once at least a quarter of the
live rows have stopped, so long tails cost only what the unfinished rows need.

Sampling policy: logits / temperature, then top-p (nucleus) filtering: keep the smallest set
of most likely tokens whose mass reaches top_p, renormalise. `logprobs` are log-probs of the
chosen tokens under exactly that distribution; at temperature 1 and top_p 1 they equal the
model's teacher-forced log-probs (tested). temperature 0 is greedy decoding, and its
`logprobs` are then the model's own (temperature 1) log-probs of the argmax tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from hrlzoo.nets.tinygpt import positions_from_mask


@dataclass
class Rollout:
    prompt_ids: torch.Tensor    # [B, P] left-padded prompts
    prompt_mask: torch.Tensor   # [B, P] bool, real prompt tokens
    tokens: torch.Tensor        # [B, N] generated tokens, pad after a row's stop token
    mask: torch.Tensor          # [B, N] bool, generated tokens (stop token included)
    logprobs: torch.Tensor      # [B, N] log-probs under the sampling policy (0 where ~mask)
    finished: torch.Tensor      # [B] bool, the row ended with a stop token

    @property
    def lengths(self) -> torch.Tensor:
        """Generated tokens per row (stop token included)."""
        return self.mask.sum(1)

    def sequences(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt + completion ids [B, P + N] and their real-token mask."""
        return (torch.cat([self.prompt_ids, self.tokens], 1),
                torch.cat([self.prompt_mask, self.mask], 1))

    def texts(self, tok, *, strip_stop: bool = True) -> list[str]:
        """Completion texts; `strip_stop` drops the final stop token of finished rows."""
        out = []
        for row, n, fin in zip(self.tokens.tolist(), self.lengths.tolist(), self.finished.tolist()):
            out.append(tok.decode(row[: n - 1 if (fin and strip_stop) else n]))
        return out

    def select(self, rows) -> "Rollout":
        """The rollout restricted to batch rows `rows` (indices or a bool mask)."""
        return Rollout(*(getattr(self, f)[rows] for f in
                         ("prompt_ids", "prompt_mask", "tokens", "mask", "logprobs", "finished")))

    def trimmed(self) -> "Rollout":
        """The same rows without the columns that are padding in every row (prompt columns on
        the left, completion columns on the right)."""
        p = int(self.prompt_mask.any(0).float().argmax()) if self.prompt_mask.any() else 0
        n = int(self.lengths.max()) if self.mask.numel() else 0
        return Rollout(self.prompt_ids[:, p:], self.prompt_mask[:, p:], self.tokens[:, :n],
                       self.mask[:, :n], self.logprobs[:, :n], self.finished)


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths as one left-padded [B, P] block and its bool mask."""
    P = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), P), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), P), dtype=torch.bool)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, P - len(s):] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, P - len(s):] = True
    return ids.to(device), mask.to(device)


def filter_top_p(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Logits with every token outside the top-p nucleus set to -inf (the most likely token
    is always kept)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(-1, descending=True)
    probs = sorted_logits.softmax(-1)
    outside = probs.cumsum(-1) - probs >= top_p  # mass before this token already reaches top_p
    sorted_logits = sorted_logits.masked_fill(outside, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def _pick(logits: torch.Tensor, temperature: float, top_p: float, generator):
    """(token [B], log-prob [B]) of one decoding step from last-position logits [B, V].
    NaN or +inf logits (a diverged model) raise NonFiniteError before anything samples them;
    the stage adds its name and step."""
    if not bool((logits < float("inf")).all()):  # False for NaN and +inf alike
        from hrlzoo.pipeline.stage import NonFiniteError

        raise NonFiniteError("rollout logits are nan or inf (the policy diverged)")
    if temperature == 0:
        tok = logits.argmax(-1)
        logp = logits.log_softmax(-1)
    else:
        logp = filter_top_p(logits / temperature, top_p).log_softmax(-1)
        tok = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
    return tok, logp.gather(1, tok[:, None]).squeeze(1)


def _distinct(prompts: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """(the first row of every distinct prompt, in order; each row's index into that list)."""
    seen: dict[tuple, int] = {}
    first, inverse = [], []
    for i, p in enumerate(prompts):
        key = tuple(p)
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        inverse.append(seen[key])
    return first, inverse


def sample(model, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, pad_id: int,
           stop_ids: Sequence[int] = (), temperature: float = 1.0, top_p: float = 1.0,
           generator: torch.Generator | None = None, compact: bool = True,
           share_prefill: bool = True) -> Rollout:
    """Complete every prompt (token ids, BOS included); see the module docstring.

    `share_prefill=False` runs every row's prompt, repeated or not (the same numbers: each
    row of a forward is computed on its own; tested).

    `compact=False` keeps finished rows in the batch to the end: the same greedy output and
    the same sampling distribution, but a different random stream (and slower)."""
    with torch.inference_mode():  # no autograd bookkeeping per op; the results are cloned out of it
        roll = _sample(model, prompts, max_new_tokens=max_new_tokens, pad_id=pad_id, stop_ids=stop_ids,
                       temperature=temperature, top_p=top_p, generator=generator, compact=compact,
                       share_prefill=share_prefill)
    return Rollout(*(t.clone() for t in (roll.prompt_ids, roll.prompt_mask, roll.tokens, roll.mask,
                                         roll.logprobs, roll.finished)))


def _sample(model, prompts, *, max_new_tokens, pad_id, stop_ids, temperature, top_p, generator, compact,
            share_prefill) -> Rollout:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    prompt_ids, prompt_mask = left_pad(prompts, pad_id, device)
    B, P = prompt_ids.shape
    cfg = getattr(model, "cfg", None)
    longest = max(len(p) for p in prompts) + max_new_tokens
    if cfg is not None and not cfg.rotary and longest > cfg.max_seq_len:
        raise ValueError(f"a prompt of {longest - max_new_tokens} tokens + {max_new_tokens} new tokens "
                         f"exceeds the model's {cfg.max_seq_len} learned positions")
    stop = torch.as_tensor(list(stop_ids), dtype=torch.long, device=device)

    tokens = torch.full((B, max_new_tokens), pad_id, dtype=torch.long, device=device)
    logprobs = torch.zeros((B, max_new_tokens), device=device)
    lengths = torch.full((B,), max_new_tokens, dtype=torch.long, device=device)
    finished = torch.zeros(B, dtype=torch.bool, device=device)

    key_mask = torch.zeros((B, P + max_new_tokens), dtype=torch.bool, device=device)
    key_mask[:, :P] = prompt_mask
    pos = positions_from_mask(prompt_mask)
    first, inverse = _distinct(prompts) if share_prefill else (range(B), None)
    if len(first) < B:  # repeated prompts (a group's G samples): each distinct one runs once
        rows = torch.as_tensor(first, device=device)
        cache = model.new_cache(len(first), P + max_new_tokens)
        logits = model(prompt_ids[rows], pos=pos[rows], key_mask=prompt_mask[rows], cache=cache)[:, -1]
        expand = torch.as_tensor(inverse, device=device)
        cache.select(expand)
        logits = logits[expand]
    else:
        cache = model.new_cache(B, P + max_new_tokens)
        logits = model(prompt_ids, pos=pos, key_mask=key_mask[:, :P], cache=cache)[:, -1]
    next_pos = pos[:, -1:] + 1  # [B, 1]: a left-padded row's last place is its last real token
    # the live rows' own buffers (row i of them is batch row live[i]); a row that stops leaves
    # them at the next compaction, its tokens copied out
    live = torch.arange(B, device=device)
    live_tok, live_lp = tokens.clone(), logprobs.clone()
    live_len = lengths.clone()
    live_done = torch.zeros(B, dtype=torch.bool, device=device)

    def flush(rows, upto: int):
        tokens[live[rows], :upto] = live_tok[rows, :upto]
        logprobs[live[rows], :upto] = live_lp[rows, :upto]
        lengths[live[rows]] = live_len[rows]
        finished[live[rows]] = live_done[rows]

    steps = 0
    for t in range(max_new_tokens):
        tok, lp = _pick(logits.float(), temperature, top_p, generator)
        tok = tok.masked_fill_(live_done, pad_id)
        live_tok[:, t] = tok
        live_lp[:, t] = lp.masked_fill_(live_done, 0.0)
        steps = t + 1
        if stop.numel():
            stopped = torch.isin(tok, stop) & ~live_done
            live_len.masked_fill_(stopped, t + 1)
            live_done |= stopped
        if t == max_new_tokens - 1:
            break
        n_done = int(live_done.sum()) if stop.numel() else 0
        if n_done == live.numel():
            break
        if compact and n_done and n_done * 4 >= live.numel():
            flush(live_done, steps)
            keep = (~live_done).nonzero().squeeze(1)
            live, tok, next_pos, key_mask = live[keep], tok[keep], next_pos[keep], key_mask[keep]
            live_tok, live_lp, live_len, live_done = live_tok[keep], live_lp[keep], live_len[keep], live_done[keep]
            cache.select(keep)
        key_mask[:, P + t] = True
        logits = model(tok[:, None], pos=next_pos, key_mask=key_mask[:, :P + t + 1], cache=cache)[:, -1]
        next_pos += 1
    flush(slice(None), steps)

    model.train(was_training)
    tokens, logprobs = tokens[:, :steps], logprobs[:, :steps]
    lengths = lengths.clamp(max=steps)
    mask = torch.arange(steps, device=device)[None, :] < lengths[:, None]
    return Rollout(prompt_ids, prompt_mask, tokens, mask, logprobs, finished)


def token_logprobs(model, ids: torch.Tensor, mask: torch.Tensor, *, start: int = 0,
                   temperature: float = 1.0) -> torch.Tensor:
    """Teacher-forced log-probs [B, L - start] of ids[:, start:] (start >= 1), each given the
    tokens before it, for rows with real-token mask `mask` (left padding allowed). The model's
    logits are divided by `temperature` (the sampling policy's without top-p). Keeps grad.

    When every row's real tokens are one contiguous run (a left-padded prompt followed by its
    completion, as in a `Rollout`), the rows are shifted left to start at column 0 and run
    with plain causal attention (SDPA's fast path, no mask: padding then only follows real
    tokens), and the log-probs are read back at the original columns; otherwise the rows run
    with their key mask. Both give the same numbers (tested); places that are not real tokens
    hold finite junk."""
    B, L = ids.shape
    first = mask.float().argmax(1)                                   # first real column per row
    n_real = mask.sum(1)
    cols = torch.arange(L, device=ids.device)
    contiguous = bool(((cols[None] >= first[:, None]) & (cols[None] < (first + n_real)[:, None]) == mask).all())
    if not contiguous:
        pos = positions_from_mask(mask)
        logits = model(ids, pos=pos, key_mask=mask)[:, start - 1:-1].float()
    else:
        src = (cols[None] + first[:, None]).clamp(max=L - 1)         # shifted column j reads column j + first
        shifted = ids.gather(1, src)
        out = model(shifted)                                          # [B, L, V], causal
        want = (cols[None, start - 1:L - 1] - first[:, None]).clamp(min=0)   # logits predicting column c sit at c - 1 - first
        logits = out.gather(1, want[..., None].expand(-1, -1, out.shape[-1])).float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits.log_softmax(-1).gather(-1, ids[:, start:, None]).squeeze(-1)


def completion_logprobs(model, roll: Rollout, *, temperature: float = 1.0) -> torch.Tensor:
    """Teacher-forced log-probs [B, N] of a rollout's completion tokens (0 where ~mask)."""
    ids, mask = roll.sequences()
    lp = token_logprobs(model, ids, mask, start=roll.prompt_ids.shape[1], temperature=temperature)
    return lp * roll.mask


@dataclass
class Completion:
    text: str          # stop token removed
    n_tokens: int      # generated tokens, stop token included
    finished: bool     # ended with a stop token


def complete(model, tok, prompts: Sequence[str], *, max_new_tokens: int, temperature: float = 0.0,
             top_p: float = 1.0, batch_size: int = 256, generator: torch.Generator | None = None,
             stop_ids: Sequence[int] | None = None) -> list[Completion]:
    """Complete text prompts (BOS added) in batches of `batch_size`; greedy by default, EOS
    as the stop token unless `stop_ids` is given. For evaluation loops."""
    stop = [tok.eos_id] if stop_ids is None else list(stop_ids)
    out: list[Completion] = []
    for i in range(0, len(prompts), batch_size):
        ids = [tok.encode(p, bos=True) for p in prompts[i:i + batch_size]]
        roll = sample(model, ids, max_new_tokens=max_new_tokens, pad_id=tok.pad_id, stop_ids=stop,
                      temperature=temperature, top_p=top_p, generator=generator)
        out += [Completion(t, n, f) for t, n, f in
                zip(roll.texts(tok), roll.lengths.tolist(), roll.finished.tolist())]
    return out
