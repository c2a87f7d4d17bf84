"""Stage cog_sft: SFT of the deliberately weak base on the three templates (spec_B 6.4 step 2),
then a description of the base: its greedy accuracy per template and level.

    python -m stages.cog_rethinker.sft

One base serves every RL method and seed (the seeds vary the RL runs only). Completion-only
NLL (`hrlzoo.lm.sft`, Lightning), AdamW with warm-up and cosine decay.

Writes data/cog_rethinker/base/:
    base.pt            the model (config, state dict, tokenizer)
    sft_curve.parquet  step, loss
    base_eval.parquet  template, level, accuracy, well_formed, tokens (base_eval problems)
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.params import ParamsError
from hrlzoo.pipeline.stage import Stage, run_stage, set_threads
from stages.cog_rethinker import common
from stages.cog_rethinker.params import CogParams, sizes


def base_eval_rows(p: CogParams, model, tok) -> list[dict]:
    """Greedy accuracy of the base in each template on the base_eval problems."""
    from hrlzoo.lm.tasks import corrupt_solution, decomposition_prompt, direct_prompt, reflection_prompt
    from stages.cog_rethinker.method import DemoBuffer

    probs = common.load_problems("base_eval")
    buffer = DemoBuffer(common.load_problems("demo"))
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


def body(ctx: Stage) -> None:
    """Train the weak base on the SFT corpus of the three templates and describe it."""
    import polars as pl
    import torch

    from hrlzoo.lm.sft import encode_pairs, train_sft

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
    hist = train_sft(model, pairs, max_steps=s.sft.steps, batch_size=s.sft.batch_size, lr=s.sft.lr,
                     warmup_steps=s.sft.warmup_steps, pad_id=tok.pad_id, seed=p.data_seed, progress=True,
                     device=ctx.device, bucket_by_length=True)
    ctx.guard("sft loss", hist["loss"][-1], len(hist["loss"]))
    model.eval()
    rows = base_eval_rows(p, model, tok)
    for template in ("direct", "decomposition", "reflection"):
        accs = " ".join(f"k{r['level']}={r['accuracy']:.2f}" for r in rows if r["template"] == template)
        ctx.log(f"base, {template}: {accs}")

    out = ctx.out(common.BASE_DIR)
    out.mkdir(parents=True)
    common.save_model(out / "base.pt", model, tok)
    pl.DataFrame({"step": np.arange(1, len(hist["loss"]) + 1), "loss": hist["loss"]}).write_parquet(
        out / "sft_curve.parquet")
    pl.DataFrame(rows).write_parquet(out / "base_eval.parquet")


def main(argv: list[str] | None = None) -> int:
    return run_stage("cog_sft", "cog_rethinker", CogParams, body, argv, outputs=lambda a, p: [str(common.BASE_DIR)])


if __name__ == "__main__":
    sys.exit(main())
