"""hrlzoo.lm.sft: the completion-only loss and a tiny Lightning SFT run."""

import subprocess
import sys

import torch

from hrlzoo.lm.sft import collate_pairs, completion_nll, encode_pairs, train_sft
from hrlzoo.lm.tasks import ADDSUB_LEVELS, direct_prompt, make_problems, solution
from hrlzoo.lm.tokenizer import CharTokenizer
from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT


def test_loss_mask_covers_the_completion_only():
    ids, mask = collate_pairs([([1, 5, 6], [7, 2]), ([1, 5], [8, 9, 9, 2])], pad_id=0)
    assert ids.tolist() == [[1, 5, 6, 7, 2, 0], [1, 5, 8, 9, 9, 2]]
    # mask[t] says whether ids[t + 1] is a completion token
    assert mask.tolist() == [[False, False, True, True, False], [False, True, True, True, True]]


def test_prompt_tokens_carry_no_loss():
    torch.manual_seed(0)
    m = TinyGPT(GPTConfig(vocab_size=12, n_layer=1, n_head=2, d_model=16, max_seq_len=16))
    ids, mask = collate_pairs([([1, 5, 6], [7, 2])], pad_id=0)
    with torch.no_grad():
        logits = m(ids[:, :-1])[0]
        by_hand = -(logits[2].log_softmax(-1)[7] + logits[3].log_softmax(-1)[2]) / 2  # 7 | 1 5 6, 2 | .. 7
        assert torch.isclose(completion_nll(m, ids, mask), by_hand)
        # "sequence": each sequence's mean first (Cog-Rethinker's L_SFT), "token": all tokens at once
        ids2, mask2 = collate_pairs([([1, 5], [7, 2]), ([1], [3, 4, 5, 6, 2])], 0)
        nll = torch.nn.functional.cross_entropy(m(ids2[:, :-1]).transpose(1, 2), ids2[:, 1:], reduction="none")
        per_seq = [(nll[i] * mask2[i]).sum() / mask2[i].sum() for i in range(2)]
        assert torch.isclose(completion_nll(m, ids2, mask2, "sequence"), (per_seq[0] + per_seq[1]) / 2)
        assert torch.isclose(completion_nll(m, ids2, mask2, "token"), (nll * mask2).sum() / 7)


def test_tiny_sft_lowers_the_loss():
    tok = CharTokenizer()
    probs = make_problems(ADDSUB_LEVELS[1], 64, seed=0)
    pairs = encode_pairs(tok, [direct_prompt(p) for p in probs], [solution(p) for p in probs])
    torch.manual_seed(0)
    m = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, d_model=48, max_seq_len=64))
    ids, mask = collate_pairs(pairs, tok.pad_id)
    with torch.no_grad():
        before = completion_nll(m, ids, mask).item()
    hist = train_sft(m, pairs, max_steps=40, batch_size=16, lr=3e-3, warmup_steps=5, pad_id=tok.pad_id, seed=0)
    with torch.no_grad():
        after = completion_nll(m, ids, mask).item()
    assert len(hist["loss"]) == 40
    assert before > 3.0 and after < 0.6 * before, (before, after)
    assert sum(hist["loss"][-5:]) < sum(hist["loss"][:5])


def test_importing_hrlzoo_lm_does_not_import_lightning():
    code = ("import sys, hrlzoo.lm.sft, hrlzoo.lm.sampler, hrlzoo.lm.tasks, hrlzoo.algos.grpo; "
            "print(any(m.split('.')[0] in ('pytorch_lightning', 'lightning') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_length_buckets_cover_every_pair_once_per_epoch_with_little_padding():
    import numpy as np

    from hrlzoo.lm.sft import LengthBuckets

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=1000).tolist()
    sampler = LengthBuckets(lengths, batch_size=16, seed=3, pool=8)
    epochs = [list(sampler), list(sampler)]
    for batches in epochs:
        assert len(batches) == len(sampler) == 63
        assert sorted(i for b in batches for i in b) == list(range(1000))
    assert epochs[0] != epochs[1]                                       # reshuffled every epoch
    assert list(LengthBuckets(lengths, 16, seed=3, pool=8)) == epochs[0]  # from the seed
    pad = lambda bs: np.mean([max(lengths[i] for i in b) - np.mean([lengths[i] for i in b]) for b in bs])  # noqa: E731
    plain = [list(range(i, min(i + 16, 1000))) for i in range(0, 1000, 16)]
    assert pad(epochs[0]) < 0.3 * pad(plain)
