"""hrlzoo.nets.tinygpt + hrlzoo.lm.sampler: KV-cache decoding equals full recomputation,
sampler log-probs equal teacher-forced ones, left padding changes nothing, stop tokens."""

import pytest
import torch

from hrlzoo.lm.sampler import completion_logprobs, filter_top_p, left_pad, sample, token_logprobs
from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT, positions_from_mask

V, PAD, BOS = 23, 0, 1
PROMPTS = [[BOS, 5, 6, 7, 8, 9], [BOS, 4], [BOS, 9, 3, 3, 12], [BOS, 7, 7, 7, 7, 7, 7, 7, 7]]


def model(rotary: bool, seed: int = 0) -> TinyGPT:
    torch.manual_seed(seed)
    m = TinyGPT(GPTConfig(vocab_size=V, n_layer=2, n_head=2, d_model=32, max_seq_len=64, rotary=rotary))
    # larger weights than the 0.02 init: sharper, more varied distributions to compare
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.mul_(8.0)
    return m.eval()


def greedy_without_cache(m, prompt, n):
    ids = torch.tensor([prompt])
    with torch.no_grad():
        for _ in range(n):
            ids = torch.cat([ids, m(ids)[:, -1].argmax(-1, keepdim=True)], 1)
    return ids[0, len(prompt):].tolist()


@pytest.mark.parametrize("rotary", [False, True])
def test_kv_cache_greedy_equals_full_recompute(rotary):
    m = model(rotary)
    roll = sample(m, PROMPTS, max_new_tokens=12, pad_id=PAD, temperature=0)
    assert roll.tokens.shape == (len(PROMPTS), 12) and roll.mask.all()
    for i, p in enumerate(PROMPTS):
        assert roll.tokens[i].tolist() == greedy_without_cache(m, p, 12)


@pytest.mark.parametrize("rotary", [False, True])
def test_sampler_logprobs_equal_teacher_forced(rotary):
    m = model(rotary)
    g = torch.Generator().manual_seed(0)
    roll = sample(m, PROMPTS * 4, max_new_tokens=15, pad_id=PAD, stop_ids=[2, 3], temperature=1.0,
                  generator=g)
    assert roll.mask.any(1).all() and not roll.mask.all()  # some rows stopped early
    lp = completion_logprobs(m, roll)
    assert torch.allclose(lp, roll.logprobs, atol=1e-5)
    assert (roll.logprobs[~roll.mask] == 0).all() and (roll.logprobs[roll.mask] < 0).all()
    # ... and equal to unpadded, one-row teacher forcing
    for i in range(len(PROMPTS)):
        n = int(roll.lengths[i])
        ids = torch.tensor([PROMPTS[i] + roll.tokens[i, :n].tolist()])
        with torch.no_grad():
            ref = m(ids)[0, len(PROMPTS[i]) - 1:-1].log_softmax(-1)
        ref = ref.gather(1, roll.tokens[i, :n, None]).squeeze(1)
        assert torch.allclose(ref, roll.logprobs[i, :n], atol=1e-5)


def test_temperature_logprobs_match_scaled_teacher_forcing():
    m = model(False)
    roll = sample(m, PROMPTS, max_new_tokens=8, pad_id=PAD, temperature=0.7,
                  generator=torch.Generator().manual_seed(1))
    assert torch.allclose(completion_logprobs(m, roll, temperature=0.7), roll.logprobs, atol=1e-5)


def test_left_padding_changes_nothing():
    m = model(False)
    ids, mask = left_pad(PROMPTS, PAD)
    assert ids.shape == (4, 9) and mask.sum(1).tolist() == [len(p) for p in PROMPTS]
    with torch.no_grad():
        padded = m(ids, pos=positions_from_mask(mask), key_mask=mask)
        for i, p in enumerate(PROMPTS):
            alone = m(torch.tensor([p]))[0]
            assert torch.allclose(padded[i, -len(p):], alone, atol=1e-5)
    lp = token_logprobs(m, ids, mask, start=ids.shape[1] - 1)
    assert torch.isfinite(lp).all()


def test_stop_tokens_end_each_row():
    m = model(False, seed=3)
    stop = [2, 3, 4, 5, 6]  # a fifth of the vocabulary: rows stop at different times
    roll = sample(m, PROMPTS * 8, max_new_tokens=20, pad_id=PAD, stop_ids=stop,
                  generator=torch.Generator().manual_seed(0))
    lengths = roll.lengths.tolist()
    assert len(set(lengths)) > 3
    for row, mask, n, fin in zip(roll.tokens.tolist(), roll.mask.tolist(), lengths, roll.finished.tolist()):
        assert mask == [True] * n + [False] * (len(row) - n)
        assert all(t not in stop for t in row[: n - 1])            # no stop token before the end
        assert fin == (row[n - 1] in stop)                          # finished iff it stopped
        assert all(t == PAD for t in row[n:])                       # padding after the stop
        if not fin:
            assert n == 20
    # no stop ids: every row runs to max_new_tokens
    assert sample(m, PROMPTS, max_new_tokens=7, pad_id=PAD).mask.all()


def test_dropping_finished_rows_keeps_greedy_output():
    m = model(False, seed=3)
    kw = dict(max_new_tokens=20, pad_id=PAD, stop_ids=[2, 3, 4, 5, 6], temperature=0)
    a, b = sample(m, PROMPTS * 3, compact=True, **kw), sample(m, PROMPTS * 3, compact=False, **kw)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.mask, b.mask)
    assert torch.equal(a.finished, b.finished) and torch.allclose(a.logprobs, b.logprobs, atol=1e-6)


def test_sampling_is_deterministic_from_the_generator():
    m = model(True)
    a = sample(m, PROMPTS, max_new_tokens=10, pad_id=PAD, generator=torch.Generator().manual_seed(5))
    b = sample(m, PROMPTS, max_new_tokens=10, pad_id=PAD, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.tokens, b.tokens)


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(filter_top_p(logits, 0.7))[0].tolist()
    assert kept == [True, True, False, False]
    assert torch.isfinite(filter_top_p(logits, 0.01))[0].tolist() == [True, False, False, False]
    m = model(False)
    roll = sample(m, PROMPTS, max_new_tokens=6, pad_id=PAD, top_p=0.5,
                  generator=torch.Generator().manual_seed(0))
    # under top-p the sampling distribution is renormalised: log-probs >= the model's
    assert (roll.logprobs[roll.mask] >= completion_logprobs(m, roll)[roll.mask] - 1e-5).all()


def test_the_prefix_is_run_once():
    m = model(False)
    widths = []
    forward = m.forward

    def spy(idx, *a, **kw):
        widths.append(idx.shape[1])
        return forward(idx, *a, **kw)

    m.forward = spy
    sample(m, PROMPTS, max_new_tokens=10, pad_id=PAD)
    assert widths == [9] + [1] * 9  # one prefill of the padded prompts, then one token per step


def test_complete_and_checkpoint_round_trip(tmp_path):
    from hrlzoo.lm.sampler import complete
    from hrlzoo.lm.tokenizer import CharTokenizer
    from hrlzoo.nets.tinygpt import load_model, save_model

    tok = CharTokenizer()
    torch.manual_seed(0)
    m = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=16, max_seq_len=64, rotary=True))
    prompts = ["Q:1+2<think>", "Q:12*3-4<think><b16>", "Q:9<think>"]
    a = complete(m, tok, prompts, max_new_tokens=12, batch_size=2)
    save_model(tmp_path / "m.pt", m, tokenizer=tok.to_dict())
    m2, extra = load_model(tmp_path / "m.pt")
    assert CharTokenizer.from_dict(extra["tokenizer"]) == tok
    b = complete(m2, tok, prompts, max_new_tokens=12, batch_size=3)
    assert a == b and len(a) == 3
    for c in a:
        assert c.n_tokens == len(tok.encode(c.text)) + c.finished and (c.finished or c.n_tokens == 12)


def test_too_long_for_learned_positions_is_refused():
    m = model(False)  # 64 learned positions
    with pytest.raises(ValueError, match="learned positions"):
        sample(m, PROMPTS, max_new_tokens=60, pad_id=PAD)
    sample(model(True), PROMPTS, max_new_tokens=60, pad_id=PAD)  # rotary: no table to run out of


def test_token_logprobs_shifted_rows_equal_masked_rows():
    """Rows whose real tokens are one run (left-padded prompt + completion) run shifted to
    column 0 with causal attention; rows with a hole run with their key mask: same numbers."""
    m = model(False)
    ids, mask = left_pad(PROMPTS, PAD)
    lp = token_logprobs(m, ids, mask, start=1)
    with torch.no_grad():
        ref = m(ids, pos=positions_from_mask(mask), key_mask=mask)[:, :-1].log_softmax(-1)
    ref = ref.gather(-1, ids[:, 1:, None]).squeeze(-1)
    real = mask[:, 1:] & mask[:, :-1]
    assert torch.allclose(lp[real], ref[real], atol=1e-5)
    holed = mask.clone()
    holed[0, -2] = False  # not one run: the masked path
    lp2 = token_logprobs(m, ids, holed, start=1)
    with torch.no_grad():
        ref2 = m(ids, pos=positions_from_mask(holed), key_mask=holed)[:, :-1].log_softmax(-1)
    ref2 = ref2.gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert torch.allclose(lp2, ref2, atol=1e-5)


@pytest.mark.parametrize("rotary", [False, True])
def test_stochastic_sampling_equals_the_uncached_reference(rotary):
    """Under one generator seed the KV-buffer sampler (matmul decoding over the chunk-grown
    buffer, additive mask, live-row buffers) draws exactly the tokens, with the same log-probs,
    as a reference that recomputes every left-padded row from scratch each step and picks with
    the same `_pick` (temperature and top-p)."""
    from hrlzoo.lm.sampler import _pick

    m = model(rotary)
    prompts, n, temp, top_p = PROMPTS * 3, 40, 0.8, 0.9  # 40 > one 32-place chunk: the buffer grows
    roll = sample(m, prompts, max_new_tokens=n, pad_id=PAD, temperature=temp, top_p=top_p,
                  generator=torch.Generator().manual_seed(7))
    ids, mask = left_pad(prompts, PAD)
    g = torch.Generator().manual_seed(7)
    toks, lps = [], []
    with torch.no_grad():
        for _ in range(n):
            logits = m(ids, pos=positions_from_mask(mask), key_mask=mask)[:, -1]
            tok, lp = _pick(logits.float(), temp, top_p, g)
            toks.append(tok)
            lps.append(lp)
            ids, mask = torch.cat([ids, tok[:, None]], 1), torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
    assert torch.equal(roll.tokens, torch.stack(toks, 1))
    assert torch.allclose(roll.logprobs, torch.stack(lps, 1), atol=1e-5)
    assert len(set(map(tuple, roll.tokens.tolist()))) > 1  # the draws differ between rows


@pytest.mark.parametrize("rotary", [False, True])
def test_a_repeated_prompt_is_prefilled_once_with_the_same_numbers(rotary):
    """G rows of one prompt (a group) share one prefill: the prefill forward sees each distinct
    prompt once, and tokens and log-probs are bit-for-bit those of prefilling every row."""
    m = model(rotary)
    prompts = [p for p in PROMPTS for _ in range(3)] + PROMPTS[:1]
    rows = []
    forward = m.forward

    def spy(idx, *a, **kw):
        rows.append(idx.shape)
        return forward(idx, *a, **kw)

    m.forward = spy
    rolls = [sample(m, prompts, max_new_tokens=20, pad_id=PAD, stop_ids=[2], generator=torch.Generator().manual_seed(3),
                    share_prefill=share) for share in (True, False)]
    assert rows[0][0] == len(PROMPTS) and rows[len(rows) // 2][0] == len(prompts)  # the two prefills
    assert torch.equal(rolls[0].tokens, rolls[1].tokens) and torch.equal(rolls[0].logprobs, rolls[1].logprobs)
    assert torch.equal(rolls[0].mask, rolls[1].mask) and torch.equal(rolls[0].finished, rolls[1].finished)
    assert len(set(map(tuple, rolls[0].tokens.tolist()))) > len(PROMPTS)  # rows of one prompt draw apart


def test_rollouts_leave_inference_mode_usable_by_autograd():
    """The sampler runs under torch.inference_mode; what it returns are ordinary tensors that a
    loss with gradients can index and gather with."""
    m = model(True).train()
    roll = sample(m, PROMPTS, max_new_tokens=8, pad_id=PAD, generator=torch.Generator().manual_seed(0))
    assert not any(t.is_inference() for t in (roll.tokens, roll.mask, roll.logprobs, roll.prompt_ids))
    completion_logprobs(m, roll).sum().backward()
    assert m.tok_emb.weight.grad is not None


def test_rope_of_queries_and_keys_together_is_bitwise_the_separate_rope():
    from hrlzoo.nets.tinygpt import _rope, _rope_tables

    torch.manual_seed(0)
    qk = torch.randn(2, 3, 2, 7, 16)
    cos, sin = _rope_tables(torch.arange(7).expand(3, 7), 16)
    both = _rope(qk, cos, sin)
    assert torch.equal(both[0], _rope(qk[0], cos, sin)) and torch.equal(both[1], _rope(qk[1], cos, sin))
