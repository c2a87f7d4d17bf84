"""Stage hbpo_sft: the SFT base, a tiny GPT that reasons (and over-thinks) on arithmetic.

    python -m stages.hbpo.sft

Data (spec_B §1.5): fresh training problems of every level (`sft.level_weights`), each written
in a style drawn from `sft.style_mix` independently of its level (verbose = the standard
step lines plus 1-3 re-check lines: the over-thinking HBPO should remove; `trace`); a share
`sft.budget_fraction` of the traces carries a random budget token that the trace does not
depend on, so every budget token has a trained embedding but no meaning yet (as the first
completion token with `sft.budget_in_completion`, else in the prompt). Completion-only
loss, Lightning (`hrlzoo.lm.sft.train_sft`).

Gate (spec_B §1.6: "if the SFT base does not over-think, there is nothing to compress"): the
base answers the gate's held-out problems in natural mode (no budget token); the stage fails,
writing nothing, unless its accuracy on every level reaches `gate.min_accuracy` and the share
of verbose answers on level 1 reaches `gate.min_verbose_share`.

Writes data/hbpo/base/: model.pt, tokenizer.json, sft_curve.parquet (step, loss), gate.json.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hbpo import common
from stages.hbpo.params import STYLE_KEYS, HBPOParams, all_budgets, sizes


def trace(q, style: str, rng: np.random.Generator, d) -> str:
    """The completion of problem `q` in `style`. Verbose with `d.checks == "last"`: the standard
    trace plus min_checks..max_checks copies of its last step line as `chk` lines before
    `</think>` (re-verifying the finished result; a copy of the line just written is what a tiny
    model reproduces exactly, so RL never reinforces a wrong-looking equation); "end" / "inline":
    `hrlzoo.lm.tasks.solution`'s random re-checks."""
    from hrlzoo.lm.tasks import solution
    from hrlzoo.lm.tokenizer import END_THINK

    if style != "verbose" or d.checks != "last":
        return solution(q, style, rng, min_checks=d.min_checks, max_checks=d.max_checks,
                        checks_at="end" if d.checks == "end" else "inline")
    head, mark, tail = solution(q, "standard").partition(END_THINK)
    last = head.rstrip(";").split(";")[-1]
    n = int(rng.integers(d.min_checks, d.max_checks + 1))
    return head + f"chk {last};" * n + mark + tail


def sft_pairs(p: HBPOParams, tok, n: int, rng: np.random.Generator):
    """`n` (prompt ids, completion ids) pairs of the SFT mix, and each trace's (level, style)."""
    from hrlzoo.lm.sft import encode_pairs
    from hrlzoo.lm.tasks import direct_prompt
    from hrlzoo.lm.tokenizer import budget_token

    d = p.sft
    stream = common.problem_stream(p, rng, d.level_weights)
    styles = list(STYLE_KEYS)
    probs = np.array([d.style_mix[s] for s in styles])
    budgets = all_budgets(p)
    prompts, completions, meta = [], [], []
    for _ in range(n):
        q = next(stream)
        style = styles[int(rng.choice(len(styles), p=probs))]
        text = trace(q, style, rng, d)
        b = int(budgets[int(rng.integers(len(budgets)))]) if budgets and rng.random() < d.budget_fraction else None
        if b is not None and d.budget_in_completion:
            prompts.append(direct_prompt(q))
            completions.append(budget_token(b) + text)
        else:
            prompts.append(direct_prompt(q, b))
            completions.append(text)
        meta.append((q.level, style))
    return encode_pairs(tok, prompts, completions), meta


def body(ctx: Stage) -> None:
    """Train the SFT base on the over-thinking mix, then gate it on held-out problems."""
    import polars as pl
    import torch

    from hrlzoo.lm.sft import train_sft
    from hrlzoo.nets.tinygpt import TinyGPT
    from hrlzoo.pipeline.stage import set_threads

    p: HBPOParams = ctx.params
    s = sizes(p)
    ctx.threads = set_threads(s.sft.threads)
    tok = common.tokenizer(p)
    rng = np.random.default_rng([p.seeds[0], common.SALT["sft"]])
    pairs, meta = sft_pairs(p, tok, s.sft.steps * s.sft.batch_size, rng)
    torch.manual_seed(int(rng.integers(2**31)))
    model = TinyGPT(common.model_config(p, tok.vocab_size)).to(ctx.device)
    ctx.log(f"{model.num_params()} parameters, {len(pairs)} traces, threads {ctx.threads}")
    hist = train_sft(model, pairs, max_steps=s.sft.steps, batch_size=s.sft.batch_size, lr=p.sft.lr,
                     weight_decay=p.sft.weight_decay, warmup_steps=p.sft.warmup_steps, pad_id=tok.pad_id,
                     seed=p.seeds[0], progress=sys.stderr.isatty(), device=ctx.device)
    for i, loss in enumerate(hist["loss"]):
        ctx.guard("sft loss", loss, i)
    ctx.log(f"sft loss {np.mean(hist['loss'][:10]):.3f} -> {np.mean(hist['loss'][-10:]):.3f}")

    model.eval()
    rows = common.evaluate_model(model, tok, common.gate_problems(p), budget=None,
                                 seed=p.seeds[0] * 1000 + common.SALT["gate"],
                                 max_new_tokens=s.eval.max_new_tokens, temperature=s.eval.temperature,
                                 top_p=s.eval.top_p)
    per_level = common.level_summary(rows)
    for k, v in per_level.items():
        ctx.log(f"gate level {k}: accuracy {v['accuracy']:.2f}, tokens {v['tokens']:.1f}, "
                f"verbose {v['verbose']:.2f}, direct {v['direct']:.2f}")
    failures = [f"level {k} accuracy {per_level[k]['accuracy']:.2f} < {need}"
                for k, need in zip(sorted(per_level), s.gate.min_accuracy) if per_level[k]["accuracy"] < need]
    if per_level[1]["verbose"] < s.gate.min_verbose_share:
        failures.append(f"level-1 verbose share {per_level[1]['verbose']:.2f} < {s.gate.min_verbose_share}")
    if failures:
        ctx.log("gate failed: " + "; ".join(failures) + " (the base is not worth compressing; nothing written)")
        raise SystemExit(1)

    out = ctx.out(common.BASE_DIR)
    out.mkdir(parents=True)
    common.save_model(out / "model.pt", model)
    tok.save(out / "tokenizer.json")
    styles = {st: float(np.mean([m[1] == st for m in meta])) for st in STYLE_KEYS}
    pl.DataFrame({"step": np.arange(1, len(hist["loss"]) + 1), "loss": hist["loss"]}).write_parquet(
        out / "sft_curve.parquet")
    (out / "gate.json").write_text(json.dumps(
        {"levels": {str(k): v for k, v in per_level.items()}, "train_styles": styles,
         "parameters": model.num_params(), "traces": len(pairs)}, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    return run_stage("hbpo_sft", "hbpo", HBPOParams, body, argv, outputs=lambda a, p: [str(common.BASE_DIR)])


if __name__ == "__main__":
    sys.exit(main())
