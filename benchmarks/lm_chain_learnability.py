"""How fast a tiny GPT learns the chain substrate (`hrlzoo.lm.tasks.chain_level`): greedy
accuracy per chain length k during plain SFT on standard traces (k uniform in 1..maxops; no
Lightning, so only the model is timed). Prints one line per evaluation: step, seconds, loss,
accuracy at k = 1..maxops (40 held-out problems each).

    python benchmarks/lm_chain_learnability.py --steps 600
"""

import argparse
import time

import numpy as np
import torch

from hrlzoo.lm.sampler import complete
from hrlzoo.lm.sft import collate_pairs, completion_nll, encode_pairs, warmup_cosine
from hrlzoo.lm.tasks import chain_level, direct_prompt, make_problem, make_problems, solution, verify
from hrlzoo.lm.tokenizer import CharTokenizer
from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=200, help="steps between evaluations")
    ap.add_argument("--maxops", type=int, default=8)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--rotary", action="store_true")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tok = CharTokenizer()
    train = [make_problem(chain_level(int(rng.integers(1, a.maxops + 1))), rng) for _ in range(20000)]
    pairs = encode_pairs(tok, [direct_prompt(p) for p in train], [solution(p) for p in train])
    tests = {k: make_problems(chain_level(k), 40, seed=1000 + k) for k in range(1, a.maxops + 1)}
    print(f"{len(pairs)} traces, mean length {np.mean([len(x) + len(y) for x, y in pairs]):.1f} tokens")
    model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=a.layers, n_head=4, d_model=a.d,
                              max_seq_len=256, rotary=a.rotary))
    decay = [q for q in model.parameters() if q.dim() >= 2]
    rest = [q for q in model.parameters() if q.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95))
    t0 = time.time()
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = a.lr * warmup_cosine(step, 30, a.steps)
        ids, mask = collate_pairs([pairs[i] for i in rng.integers(0, len(pairs), a.batch)], tok.pad_id)
        loss = completion_nll(model, ids, mask)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % a.every == 0:
            model.eval()
            with torch.no_grad():
                acc = [np.mean([verify(o.text, p.answer).correct for o, p in
                                zip(complete(model, tok, [direct_prompt(p) for p in ps], max_new_tokens=120), ps)])
                       for ps in tests.values()]
            model.train()
            print(f"step {step + 1}  {time.time() - t0:.0f} s  loss {loss.item():.3f}  accuracy at k=1..{a.maxops}: "
                  + " ".join(f"{x:.2f}" for x in acc), flush=True)


if __name__ == "__main__":
    main()
