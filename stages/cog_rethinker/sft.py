"""Stage cog_sft: SFT of the deliberately weak base on the three templates (spec_B 6.4 step 2),
then a description of the base: its greedy accuracy per template and level, and a gate.

    python -m stages.cog_rethinker.sft

One base serves every RL method and seed (the seeds vary the RL runs only). Completion-only
NLL (`hrlzoo.lm.sft`, Lightning), AdamW with warm-up and cosine decay.

Gate (`sizes.<scale>.gate`; spec_B 6.5: the direct template accurate on the small k it was
taught, near zero on large k, the decomposition template well above it there): the stage fails,
writing nothing, unless the base shows that contrast. Without it the RL comparison cannot test
the paper (the previous substrate's base solved 0-8% in every template, see the report).

Writes data/cog_rethinker/base/:
    base.pt            the model (config, state dict, tokenizer)
    sft_curve.parquet  step, loss
    base_eval.parquet  template, level, accuracy, well_formed, tokens (base_eval problems)
    gate.json          parameters, SFT pairs, and each bound of the gate with the base's value
"""

from __future__ import annotations

import json
import sys

import numpy as np

from hrlzoo.pipeline.params import ParamsError
from hrlzoo.pipeline.stage import Stage, run_stage, set_threads
from stages.cog_rethinker import common
from stages.cog_rethinker.params import CogParams, sizes


def train_base(model, pairs, s, pad_id: int, seed: int, device) -> list[float]:
    """`hrlzoo.lm.sft.train_sft` (completion-only NLL, AdamW, warm-up + cosine, clip 1,
    Lightning) on length-bucketed batches (`hrlzoo.lm.sft.LengthBuckets`, pool `s.bucket_pool`).
    Returns the losses."""
    from hrlzoo.lm.sft import LengthBuckets, train_sft

    buckets = LengthBuckets([len(a) + len(b) for a, b in pairs], s.batch_size, seed, s.bucket_pool)
    return train_sft(model, pairs, max_steps=s.steps, lr=s.lr, warmup_steps=s.warmup_steps, pad_id=pad_id,
                     progress=True, device=device, batch_sampler=buckets)["loss"]


def base_eval_rows(p: CogParams, model, tok) -> list[dict]:
    """Greedy accuracy of the base in each template on the base_eval problems."""
    from hrlzoo.lm.tasks import corrupt_solution, decomposition_prompt, direct_prompt, reflection_prompt
    from stages.cog_rethinker.method import seed_buffer

    probs = common.load_problems("base_eval")
    buffer = seed_buffer(common.load_problems("demo"), p.decomposition_values)
    rng = np.random.default_rng([p.data_seed, common.SALT["corrupt"], 1])
    s = sizes(p).rl
    prompts = {
        "direct": ([direct_prompt(q) for q in probs], s.max_new_tokens),
        "decomposition": ([decomposition_prompt(q, buffer.retrieve(q, p.rl.n_demos)) for q in probs],
                          s.max_decomp_tokens),
        "reflection": ([reflection_prompt(q, corrupt_solution(q, rng)) for q in probs], s.max_new_tokens),
    }
    rows = []
    for template, (texts, cap) in prompts.items():
        scored = common.greedy_accuracy(model, tok, probs, texts, cap)
        acc, formed, tokens = (common.per_level(scored, key) for key in ("correct", "well_formed", "tokens"))
        rows += [{"template": template, "level": k, "accuracy": acc[k], "well_formed": formed[k], "tokens": tokens[k]}
                 for k in acc]
    return rows


def gate_checks(p: CogParams, rows: list[dict]) -> list[dict]:
    """The gate's bounds against the base (rows of `base_eval_rows`)."""
    g = sizes(p).gate
    acc = {(r["template"], r["level"]): r["accuracy"] for r in rows}

    def hard(template):
        return float(np.mean([acc[(template, k)] for k in p.hard_levels]))

    checks = [{"check": f"direct accuracy at k={k} (taught)", "value": acc[("direct", k)], "bound": ">=",
               "limit": g.min_direct_taught} for k in p.levels if k in p.direct_sft_levels]
    checks += [{"check": "direct accuracy on the hard levels", "value": hard("direct"), "bound": "<=",
                "limit": g.max_direct_hard},
               {"check": "decomposition accuracy on the hard levels", "value": hard("decomposition"), "bound": ">=",
                "limit": g.min_decomposition_hard},
               {"check": "reflection accuracy on the hard levels", "value": hard("reflection"), "bound": ">=",
                "limit": g.min_reflection_hard}]
    for c in checks:
        c["ok"] = bool(c["value"] >= c["limit"] if c["bound"] == ">=" else c["value"] <= c["limit"])
    return checks


def body(ctx: Stage) -> None:
    """Train the weak base on the SFT corpus of the three templates and describe it."""
    import polars as pl
    import torch

    from hrlzoo.lm.sft import encode_pairs

    p: CogParams = ctx.params
    s = sizes(p)
    set_threads(s.sft.threads)
    tok = common.tokenizer()
    sft = pl.read_parquet(common.DATA_DIR / "sft.parquet")
    pairs = encode_pairs(tok, sft["prompt"].to_list(), sft["completion"].to_list())
    longest = max(len(a) + len(b) for a, b in pairs)
    if longest > s.model.max_seq_len:
        raise ParamsError(f"an SFT example has {longest} tokens > model.max_seq_len = {s.model.max_seq_len}")
    torch.manual_seed(int(np.random.default_rng([p.data_seed, common.SALT["sft_torch"]]).integers(2**31)))
    model = common.new_model(p, tok.vocab_size).to(ctx.device)
    ctx.log(f"{model.num_params()} parameters, {len(pairs)} SFT pairs (longest {longest} tokens), "
            f"{s.sft.steps} steps x {s.sft.batch_size}")
    hist = {"loss": train_base(model, pairs, s.sft, tok.pad_id, p.data_seed, ctx.device)}
    ctx.guard("sft loss", hist["loss"][-1], len(hist["loss"]))
    model.eval()
    rows = base_eval_rows(p, model, tok)
    for template in ("direct", "decomposition", "reflection"):
        accs = " ".join(f"k{r['level']}={r['accuracy']:.2f}" for r in rows if r["template"] == template)
        ctx.log(f"base, {template}: {accs}")
    checks = gate_checks(p, rows)
    failed = [c for c in checks if not c["ok"]]
    if failed:
        ctx.log("gate failed: " + "; ".join(f"{c['check']} = {c['value']:.3f}, expected {c['bound']} {c['limit']}"
                                            for c in failed) + " (the base cannot test the paper; nothing written)")
        raise SystemExit(1)

    out = ctx.out(common.BASE_DIR)
    out.mkdir(parents=True)
    common.save_model(out / "base.pt", model, tok)
    pl.DataFrame({"step": np.arange(1, len(hist["loss"]) + 1), "loss": hist["loss"]}).write_parquet(
        out / "sft_curve.parquet")
    pl.DataFrame(rows).write_parquet(out / "base_eval.parquet")
    (out / "gate.json").write_text(json.dumps({"parameters": model.num_params(), "sft_pairs": len(pairs),
                                               "checks": checks}, indent=1))


def main(argv: list[str] | None = None) -> int:
    return run_stage("cog_sft", "cog_rethinker", CogParams, body, argv, outputs=lambda a, p: [str(common.BASE_DIR)])


if __name__ == "__main__":
    sys.exit(main())
