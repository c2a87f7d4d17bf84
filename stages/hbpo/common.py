"""What the HBPO stages share: artifact paths, the task, the tokenizer, prompts, the evaluation.

Problems: level i of params `levels` (chain length k_i) is `hrlzoo.lm.tasks.chain_level(k_i)`:
a two-digit number and k_i one-digit +/- steps, solved left to right, one fixed-width line per
step. The held-out test problems (and the SFT gate's) are drawn from `test_seed`
and never appear in SFT or RL data (training streams skip their expressions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from stages.hbpo.params import HBPOParams, all_budgets, sizes

BASE_DIR = Path("data/hbpo/base")        # model.pt, tokenizer.json, sft_curve.parquet, gate.json
RL_ROOT = Path("data/hbpo/rl")           # <method>/seed<k>.pt, train.parquet, eval.parquet; base/eval.parquet
REPORT_DIR = Path("reports/hbpo")

# salts: every role its own random stream per seed
SALT = {"sft": 0, "rl_problems": 1, "rl_torch": 2, "eval": 3, "gate": 4}
GATE_SALT, TEST_SALT = 1, 2  # offsets of test_seed for the gate and the test problems


def rl_dir(method: str) -> Path:
    return RL_ROOT / method


# ----------------------------------------------------------------------------- task
def level_specs(p: HBPOParams) -> dict:
    from hrlzoo.lm.tasks import chain_level

    return {i: chain_level(k) for i, k in enumerate(p.levels, start=1)}


def held_out(p: HBPOParams, salt: int, per_level: int) -> list:
    """`per_level` problems of every level, from test_seed + salt (levels in order)."""
    from hrlzoo.lm.tasks import make_level_mix

    return make_level_mix(level_specs(p), per_level, p.test_seed + 1000 * salt)


def test_problems(p: HBPOParams) -> list:
    return held_out(p, TEST_SALT, sizes(p).eval.problems_per_level)


def gate_problems(p: HBPOParams) -> list:
    return held_out(p, GATE_SALT, sizes(p).gate.problems_per_level)


def excluded(p: HBPOParams) -> set[str]:
    """Expressions no training stream may use (the gate's and the test's)."""
    return {q.expr for q in test_problems(p) + gate_problems(p)}


def problem_stream(p: HBPOParams, rng: np.random.Generator, weights: Sequence[float] | None = None) -> Iterator:
    """Training problems forever: a level drawn by `weights` (default uniform), then a problem
    of that level that is not held out."""
    from hrlzoo.lm.tasks import make_problem

    specs, skip = level_specs(p), excluded(p)
    levels = sorted(specs)
    w = np.asarray(weights if weights is not None else [1.0] * len(levels), dtype=float)
    w = w / w.sum()
    while True:
        k = int(levels[rng.choice(len(levels), p=w)])
        q = make_problem(specs[k], rng, k)
        if q.expr not in skip:
            yield q


# ----------------------------------------------------------------------------- tokens and model
def tokenizer(p: HBPOParams):
    from hrlzoo.lm.tokenizer import CharTokenizer

    return CharTokenizer(budgets=all_budgets(p))


def model_config(p: HBPOParams, vocab_size: int):
    from hrlzoo.nets.tinygpt import GPTConfig

    m = sizes(p).model
    return GPTConfig(vocab_size=vocab_size, n_layer=m.n_layer, n_head=m.n_head, d_model=m.d_model,
                     max_seq_len=256, rotary=m.rotary)


def save_model(path: Path, model, **extra) -> None:
    """`hrlzoo.nets.tinygpt.save_model`'s layout with deterministic bytes (a fixed inner zip name)."""
    from hrlzoo.pipeline.artifacts import save_pt

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_pt({"config": model.config_dict(), "state_dict": state, **extra}, path)


def load_model(path: Path, device="cpu"):
    from hrlzoo.nets.tinygpt import load_model as load

    return load(path, device)[0]


def load_base(device="cpu"):
    from hrlzoo.lm.tokenizer import CharTokenizer

    return load_model(BASE_DIR / "model.pt", device), CharTokenizer.load(BASE_DIR / "tokenizer.json")


# ----------------------------------------------------------------------------- traces
def style_of(text: str) -> str:
    """The style a completion was written in: direct (no step line), verbose (re-checks),
    standard (step lines only), or malformed (no `</think>`)."""
    from hrlzoo.lm.tokenizer import END_THINK

    head, mark, _ = text.partition(END_THINK)
    if not mark:
        return "malformed"
    head = head.split(">")[-1]  # drop a leading budget token
    if not head.strip():
        return "direct"
    return "verbose" if "chk" in head else "standard"


def self_budget(tok, first_token: int) -> int:
    """The budget of a completion's first token if it is a budget token, else 0."""
    for b in tok.budgets:
        if first_token == tok.budget_id(b):
            return b
    return 0


# ----------------------------------------------------------------------------- evaluation
def evaluate_model(model, tok, problems: Sequence, *, budget: int | None, seed: int, max_new_tokens: int,
                   temperature: float, top_p: float, batch_size: int = 256) -> list[dict]:
    """One sampled completion per problem, with `budget`'s token after `<think>` (None: natural
    mode); one row per problem: level, correct, n_tokens, style, self_budget, finished."""
    import torch

    from hrlzoo.lm.sampler import sample
    from hrlzoo.lm.tasks import direct_prompt, verify

    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    rows = []
    for i in range(0, len(problems), batch_size):
        chunk = problems[i:i + batch_size]
        ids = [tok.encode(direct_prompt(q, budget), bos=True) for q in chunk]
        roll = sample(model, ids, max_new_tokens=max_new_tokens, pad_id=tok.pad_id, stop_ids=[tok.eos_id],
                      temperature=temperature, top_p=top_p, generator=gen)
        texts = roll.texts(tok)
        for q, text, n, fin, first in zip(chunk, texts, roll.lengths.tolist(), roll.finished.tolist(),
                                          roll.tokens[:, 0].tolist()):
            rows.append({"level": q.level, "correct": bool(fin and verify(text, q.answer).correct),
                         "n_tokens": int(n), "style": style_of(text), "self_budget": self_budget(tok, first),
                         "finished": bool(fin)})
    return rows


def level_summary(rows: list[dict]) -> dict[int, dict[str, float]]:
    """level -> accuracy, mean tokens, verbose / direct shares of evaluation rows."""
    out = {}
    for k in sorted({r["level"] for r in rows}):
        part = [r for r in rows if r["level"] == k]
        out[k] = {"accuracy": float(np.mean([r["correct"] for r in part])),
                  "tokens": float(np.mean([r["n_tokens"] for r in part])),
                  "verbose": float(np.mean([r["style"] == "verbose" for r in part])),
                  "direct": float(np.mean([r["style"] == "direct" for r in part]))}
    return out
