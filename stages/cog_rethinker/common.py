"""What the Cog-Rethinker stages share: artifact paths, problem sets, the tokenizer, the model,
and the greedy direct-template evaluation.

Problems (spec_B 6.5, our variant): a chain `37+4-8+2` of k operations, the difficulty level k
(`hrlzoo.lm.tasks.chain_level`): a two-digit first number, then k operators + or - each with a
one-digit operand 1-9, every intermediate value inside `value_range` (else the problem is
redrawn). Step i combines the previous result with operand i + 1 (`37+4=41;41-8=33;33+2=35`);
with the default range 10..99 every step line has the same width, so step i sits at a fixed
place (the measured reason a sub-million-parameter GPT learns it, /work/LM_RECIPE.md). Every
set is drawn from its own stream (data_seed, set salt, level); the held-out sets (test, curve,
base_eval) are disjoint from each other, and every problem the base or the RL runs train on is
drawn outside them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from hrlzoo.lm.tasks import Problem, chain_level, direct_prompt, make_problem, verify
from stages.cog_rethinker.params import CogParams, sizes

ROOT = Path("data/cog_rethinker")
DATA_DIR = ROOT / "data"
BASE_DIR = ROOT / "base"
EVAL_DIR = ROOT / "eval"
HELD_OUT = ("test", "curve", "base_eval")
# one random stream per role; RL streams are further keyed by the run's seed
SALT = {"test": 1, "curve": 2, "base_eval": 3, "demo": 4, "sft": 5, "corrupt": 6, "rl_problems": 7,
        "rl_torch": 8, "sft_torch": 9}


def rl_dir(group: str) -> Path:
    return ROOT / "rl" / group


# ----------------------------------------------------------------------------- problems
def draw_problem(k: int, p: CogParams, rng: np.random.Generator) -> Problem:
    """One level-k problem: `hrlzoo.lm.tasks.chain_level(k, value_range)` (a two-digit number and
    k one-digit +/- steps, redrawn until every step value lies in `value_range`)."""
    return make_problem(chain_level(k, tuple(p.value_range)), rng, level=k)


def draw_set(p: CogParams, name: str, levels: Iterable[int], per_level: int,
             exclude: set[str] = frozenset(), distinct: bool = True) -> list[Problem]:
    """`per_level` problems of every level (levels in order) from the stream of set `name`,
    none of whose expressions is in `exclude` (and, with `distinct`, no repeats)."""
    out: list[Problem] = []
    for k in levels:
        rng = np.random.default_rng([p.data_seed, SALT[name], k])
        seen: set[str] = set()
        n = 0
        while n < per_level:
            q = draw_problem(k, p, rng)
            if q.expr in exclude or (distinct and q.expr in seen):
                continue
            seen.add(q.expr)
            out.append(q)
            n += 1
    return out


def held_out_sets(p: CogParams) -> dict[str, list[Problem]]:
    """test / curve / base_eval, disjoint from each other."""
    s = sizes(p).data
    n = {"test": s.test_per_level, "curve": s.curve_per_level, "base_eval": s.base_eval_per_level}
    sets, used = {}, set()
    for name in HELD_OUT:
        sets[name] = draw_set(p, name, p.levels, n[name], exclude=used)
        used |= {q.expr for q in sets[name]}
    return sets


def problem_rows(problems: Sequence[Problem], **extra) -> list[dict]:
    return [{**extra, "level": q.level, "operands": list(q.operands), "ops": "".join(q.ops)} for q in problems]


def problem_from_row(row: dict) -> Problem:
    return Problem(tuple(int(x) for x in row["operands"]), tuple(row["ops"]), int(row["level"]), "ops")


def load_problems(which: str) -> list[Problem]:
    """A set written by the data stage: test | curve | base_eval | demo."""
    import polars as pl

    df = pl.read_parquet(DATA_DIR / "problems.parquet").filter(pl.col("set") == which)
    return [problem_from_row(r) for r in df.iter_rows(named=True)]


def held_out_exprs() -> set[str]:
    import polars as pl

    df = pl.read_parquet(DATA_DIR / "problems.parquet").filter(pl.col("set").is_in(list(HELD_OUT)))
    return {problem_from_row(r).expr for r in df.iter_rows(named=True)}


class ProblemStream:
    """The RL training problems of one seed: levels uniform over `levels`, every problem new
    (never a held-out one, never repeated), the same sequence for every method of the seed."""

    def __init__(self, p: CogParams, seed: int, exclude: set[str]):
        self.p, self.exclude = p, set(exclude)
        self.rng = np.random.default_rng([p.data_seed, SALT["rl_problems"], seed])

    def take(self, n: int) -> list[Problem]:
        out = []
        while len(out) < n:
            k = int(self.rng.choice(self.p.levels))
            q = draw_problem(k, self.p, self.rng)
            if q.expr not in self.exclude:
                self.exclude.add(q.expr)
                out.append(q)
        return out


# ----------------------------------------------------------------------------- model
def tokenizer():
    from hrlzoo.lm.tokenizer import CharTokenizer

    return CharTokenizer(budgets=())  # no HBPO budget tokens


def new_model(p: CogParams, vocab_size: int):
    from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT

    m = sizes(p).model
    return TinyGPT(GPTConfig(vocab_size=vocab_size, n_layer=m.n_layer, n_head=m.n_head, d_model=m.d_model,
                             max_seq_len=m.max_seq_len, rotary=m.rotary))


def save_model(path: Path, model, tok, **extra) -> None:
    """config + state dict + tokenizer (+ extra) with deterministic bytes."""
    from hrlzoo.pipeline.artifacts import save_pt

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_pt({"config": model.config_dict(), "state_dict": state, "tokenizer": tok.to_dict(), **extra}, path)


def load_model(path: Path, device="cpu"):
    """(model on `device`, tokenizer, the extra entries) from `save_model`."""
    from hrlzoo.lm.tokenizer import CharTokenizer
    from hrlzoo.nets.tinygpt import GPTConfig, TinyGPT
    from hrlzoo.pipeline.artifacts import load_pt

    blob = load_pt(path)
    model = TinyGPT(GPTConfig(**blob.pop("config")))
    model.load_state_dict(blob.pop("state_dict"))
    return model.to(device), CharTokenizer.from_dict(blob.pop("tokenizer")), blob


# ----------------------------------------------------------------------------- evaluation
def greedy_accuracy(model, tok, problems: Sequence[Problem], prompts: Sequence[str], max_new_tokens: int,
                    batch_size: int = 256) -> list[dict]:
    """Greedy completions of `prompts` (one per problem), each scored by the exact verifier:
    rows {level, correct, tokens, well_formed}. A completion cut at max_new_tokens is wrong."""
    from hrlzoo.lm.sampler import complete

    outs = complete(model, tok, list(prompts), max_new_tokens=max_new_tokens, batch_size=batch_size)
    rows = []
    for q, o in zip(problems, outs):
        v = verify(o.text, q.answer)
        rows.append({"level": q.level, "correct": float(o.finished and v.correct), "tokens": o.n_tokens,
                     "well_formed": float(o.finished and v.well_formed)})
    return rows


def direct_accuracy(model, tok, problems: Sequence[Problem], max_new_tokens: int) -> list[dict]:
    """Greedy direct-template accuracy rows (see `greedy_accuracy`)."""
    return greedy_accuracy(model, tok, problems, [direct_prompt(q) for q in problems], max_new_tokens)


def frame(rows: Sequence[dict]):
    """A polars DataFrame of dict rows whose keys may differ (missing values are null),
    columns in first-seen order."""
    import polars as pl

    cols = list(dict.fromkeys(k for r in rows for k in r))
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], infer_schema_length=None)


def per_level(rows: Sequence[dict], key: str = "correct") -> dict[int, float]:
    """Mean of `key` per level."""
    acc: dict[int, list[float]] = {}
    for r in rows:
        acc.setdefault(int(r["level"]), []).append(float(r[key]))
    return {k: float(np.mean(v)) for k, v in sorted(acc.items())}
