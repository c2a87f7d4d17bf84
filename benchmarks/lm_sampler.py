"""Our KV-cache sampler and GRPO step beside Hugging Face `generate` and TRL's GRPOTrainer, on
equally sized randomly initialised GPTs (built from configs, nothing downloaded), in one run.

    python benchmarks/lm_sampler.py [--threads 1] [--prompts 16] [--group 8] [--new-tokens 96]

Sizes are the `cpu` scale of spec_B 0.1 / 1.5: d_model 128, 4 layers, 4 heads, MLP 512,
learned positions (256), tied embeddings, the task tokenizer's vocabulary; prompts are HBPO
direct-template prompts of mixed lengths (left-padded), prompts x group completions.

1. sampling: `--new-tokens` tokens for every row, no stop token (both run to the end),
   temperature 1, no top-k/top-p; generated tokens/s (best of `--repeats`).
2. RL step: one DAPO-style step (sample G per prompt, score, one token-mean clipped-ratio
   update, no KL), EOS as the stop token, the same reward callable (the share of digits in a
   completion: dense, so no group is dropped). Ours: `GRPOTrainer.step`; TRL: `GRPOTrainer`
   with loss_type "dapo", epsilon 0.2 / epsilon_high 0.28, beta 0, gradient checkpointing
   off, on the CPU. Seconds per step = median over the steps after the first.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
import warnings

import torch


def make_prompts(n: int, seed: int = 0):
    from hrlzoo.lm.tasks import ADDSUB_LEVELS, direct_prompt, make_level_mix

    probs = make_level_mix(ADDSUB_LEVELS, -(-n // 4), seed)[:n]
    return probs, [direct_prompt(p) for p in probs]


def available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def digit_share(text: str) -> float:
    return sum(c.isdigit() for c in text) / max(1, len(text))


# ----------------------------------------------------------------------------------- ours
def ours_model(vocab: int, a):
    from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT

    torch.manual_seed(0)
    return TinyGPT(GPTConfig(vocab_size=vocab, n_layer=a.layers, n_head=a.heads, d_model=a.d_model,
                             max_seq_len=256))


class Clock:
    """Wall seconds (perf_counter) and this process's CPU seconds (process_time) of a span:
    on a shared machine the CPU time is what the code costs, the wall time what it waited too."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def best_rate(n_tokens: int, clocks: list) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second), best of the repeats."""
    return max(n_tokens / c.wall for c in clocks), max(n_tokens / c.cpu for c in clocks)


def ours_sampling(tok, prompt_ids, a) -> tuple[float, float]:
    from hrlzoo.lm.sampler import sample

    m = ours_model(tok.vocab_size, a)
    clocks = []
    for r in range(a.repeats):
        with Clock() as c:
            roll = sample(m, prompt_ids, max_new_tokens=a.new_tokens, pad_id=tok.pad_id,
                          generator=torch.Generator().manual_seed(r))
        assert int(roll.mask.sum()) == len(prompt_ids) * a.new_tokens
        clocks.append(c)
    return best_rate(len(prompt_ids) * a.new_tokens, clocks)


def ours_rl(tok, probs, a) -> tuple[float, float, float]:
    from hrlzoo.algos.grpo import GRPOConfig, GRPOTrainer
    from hrlzoo.lm.tasks import direct_prompt

    m = ours_model(tok.vocab_size, a)
    cfg = GRPOConfig.dapo(group_size=a.group, max_new_tokens=a.new_tokens, lr=1e-4, dynamic_sampling=False)
    trainer = GRPOTrainer(m, cfg, prompt_fn=lambda p, j: tok.encode(direct_prompt(p), bos=True),
                          reward_fn=lambda s: digit_share(s.text), tok=tok, stop_ids=[tok.eos_id], seed=0)
    clocks, tokens = [], []
    for _ in range(a.rl_steps):
        before = trainer.generated_tokens
        with Clock() as c:
            trainer.step(probs)
        clocks.append(c)
        tokens.append(trainer.generated_tokens - before)
    return (statistics.median(c.wall for c in clocks[1:]), statistics.median(c.cpu for c in clocks[1:]),
            statistics.mean(tokens[1:]))


# ----------------------------------------------------------------------------------- Hugging Face
def hf_model(tok, a):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=tok.vocab_size, n_positions=256, n_embd=a.d_model, n_layer=a.layers,
                     n_head=a.heads, n_inner=4 * a.d_model, activation_function="gelu",
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                     bos_token_id=tok.bos_id, eos_token_id=tok.eos_id, pad_token_id=tok.pad_id,
                     attn_implementation="sdpa")
    m = GPT2LMHeadModel(cfg).eval()
    assert m.config._attn_implementation == "sdpa"
    return m


def hf_sampling(tok, prompt_ids, a) -> tuple[float, float]:
    from hrlzoo.lm.sampler import left_pad

    m = hf_model(tok, a)
    ids, mask = left_pad(prompt_ids, tok.pad_id)
    clocks = []
    for r in range(a.repeats):
        torch.manual_seed(r)
        with Clock() as c, torch.no_grad():
            out = m.generate(input_ids=ids, attention_mask=mask.long(), do_sample=True, temperature=1.0,
                             top_k=0, top_p=1.0, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens,
                             eos_token_id=None, pad_token_id=tok.pad_id, use_cache=True)
        assert (out.shape[1] - ids.shape[1]) * out.shape[0] == len(prompt_ids) * a.new_tokens
        clocks.append(c)
    return best_rate(len(prompt_ids) * a.new_tokens, clocks)


def hf_tokenizer(tok):
    """Our character vocabulary as a `PreTrainedTokenizerFast` (specials whole, else chars)."""
    import re

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab=dict(tok.stoi), unk_token="<pad>"))
    pattern = "|".join(re.escape(s) for s in sorted(tok.specials, key=len, reverse=True)) + "|."
    core.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>")


def trl_rl(tok, prompts, a) -> tuple[float, float, float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    htok = hf_tokenizer(tok)
    assert htok("<bos>" + prompts[0], add_special_tokens=False)["input_ids"] == tok.encode(prompts[0], bos=True)
    m = hf_model(tok, a).train()
    data = Dataset.from_dict({"prompt": ["<bos>" + p for p in prompts] * (a.rl_steps + 1)})

    def reward(completions, **_):
        return [digit_share(c) for c in completions]

    ends, cpu_ends, tokens = [], [], []

    class StepClock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())

    with tempfile.TemporaryDirectory() as out:
        cfg = GRPOConfig(output_dir=out, per_device_train_batch_size=len(prompts) * a.group,
                         num_generations=a.group, max_completion_length=a.new_tokens, max_steps=a.rl_steps,
                         learning_rate=1e-4, beta=0.0, loss_type="dapo", epsilon=0.2, epsilon_high=0.28,
                         temperature=1.0, top_p=1.0, top_k=0, num_iterations=1, scale_rewards="group",
                         gradient_checkpointing=False, use_cpu=True, bf16=False, report_to="none",
                         logging_steps=1, save_strategy="no", shuffle_dataset=False, seed=0,
                         dataloader_pin_memory=False, disable_tqdm=True)
        trainer = GRPOTrainer(model=m, reward_funcs=reward, args=cfg, train_dataset=data,
                              processing_class=htok, callbacks=[StepClock()])
        start = time.perf_counter()
        trainer.train()
        for rec in trainer.state.log_history:
            if "completions/mean_length" in rec:
                tokens.append(rec["completions/mean_length"] * len(prompts) * a.group)
    steps = [b - e for b, e in zip(ends[1:], ends[:-1])]
    cpu = [b - e for b, e in zip(cpu_ends[1:], cpu_ends[:-1])]
    assert ends and ends[0] > start
    return (statistics.median(steps), statistics.median(cpu),
            statistics.mean(tokens[1:]) if len(tokens) > 1 else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=96)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rl-steps", type=int, default=4)
    ap.add_argument("--skip-trl", action="store_true")
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(a.threads)
    from hrlzoo.lm.tokenizer import CharTokenizer

    tok = CharTokenizer()
    probs, prompts = make_prompts(a.prompts)
    rows = [tok.encode(p, bos=True) for p in prompts for _ in range(a.group)]
    # transformers / trl / datasets are not project dependencies: without them (a plain
    # `make install`), only our side runs
    have_hf, have_trl = available("transformers"), all(map(available, ("trl", "datasets")))
    n_ours = ours_model(tok.vocab_size, a).num_params()
    n_hf = f"{hf_model(tok, a).num_parameters():,}" if have_hf else "n/a"
    lens = [len(r) for r in rows]
    print(f"cpu size: d_model {a.d_model}, {a.layers} layers, {a.heads} heads, vocab {tok.vocab_size}; "
          f"params ours {n_ours:,} / GPT-2 {n_hf}; {a.threads} thread(s)")
    print(f"batch: {a.prompts} prompts x {a.group} = {len(rows)} rows, prompt length {min(lens)}-{max(lens)}, "
          f"{a.new_tokens} new tokens")

    print("(wall: elapsed seconds; cpu: this process's CPU seconds, what the code costs when other jobs share "
          "the cores)")
    ours_tps = ours_sampling(tok, rows, a)
    print(f"sampling  hrlzoo sampler (KV cache):         {ours_tps[0]:8.0f} tok/s wall {ours_tps[1]:8.0f} tok/s cpu")
    if have_hf:
        hf_tps = hf_sampling(tok, rows, a)
        print(f"sampling  transformers GPT2 generate:         {hf_tps[0]:8.0f} tok/s wall {hf_tps[1]:8.0f} tok/s cpu")
        print(f"ratio hrlzoo / transformers:                  {ours_tps[0] / hf_tps[0]:8.2f} wall      "
              f"{ours_tps[1] / hf_tps[1]:8.2f} cpu")
    else:
        print("sampling  transformers: not installed, skipped (pip install transformers)")

    ours_s, ours_cpu, ours_tok = ours_rl(tok, probs, a)
    print(f"RL step   hrlzoo GRPOTrainer (DAPO):          {ours_s:8.2f} s wall {ours_cpu:8.2f} s cpu per step "
          f"({ours_tok:.0f} generated tokens)")
    if a.skip_trl:
        return
    if not (have_hf and have_trl):
        print("RL step   trl: trl / datasets not installed, skipped (pip install trl)")
        return
    trl_s, trl_cpu, trl_tok = trl_rl(tok, prompts, a)
    print(f"RL step   trl GRPOTrainer (loss_type dapo):   {trl_s:8.2f} s wall {trl_cpu:8.2f} s cpu per step "
          f"({trl_tok:.0f} generated tokens)")
    print(f"ratio trl / hrlzoo seconds per step:          {trl_s / ours_s:8.2f} wall      {trl_cpu / ours_cpu:8.2f} cpu")


if __name__ == "__main__":
    main()
