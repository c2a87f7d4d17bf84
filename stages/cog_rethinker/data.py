"""Stage cog_data: the problem sets, the seed demonstration buffer and the SFT corpus of the
three templates (spec_B 6.4 step 1, 6.5).

    python -m stages.cog_rethinker.data

A tiny model has no in-context learning, so each template is a skill the base is taught by
SFT (spec_B 6.5):
- direct `Q:<expr><think>` -> the standard one-op-per-line trace, ONLY on `direct_sft_levels`
  (small k): the base is deliberately weak in this template on large k, which gives the
  zero-accuracy mass the method targets;
- decomposition `Q:<expr><demo>d<plan><think>` -> named sub-results `s1=37+4=41;s2=41-8=33;`
  (`decomposition_values`; else `s2=s1-8=33`), on
  every level, with `n_demos` demonstrations retrieved by BM25 from the seed buffer;
- reflection `Q:<expr><wrong>w<fix><think>` -> the correct standard trace, on every level,
  w = the correct trace with one step off by 1-3 and the error propagated
  (`hrlzoo.lm.tasks.corrupt_solution`).

Writes data/cog_rethinker/data/:
    problems.parquet  set (test | curve | base_eval | demo), level, operands, ops
    sft.parquet       template, level, prompt, completion
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.lm.tasks import corrupt_solution, decomposition_prompt, direct_prompt, reflection_prompt, solution
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.cog_rethinker.common import DATA_DIR, SALT, draw_set, held_out_sets, problem_rows
from stages.cog_rethinker.method import DemoBuffer, decomposition_text, seed_buffer
from stages.cog_rethinker.params import CogParams, sizes


def sft_levels(p: CogParams) -> list[int]:
    return sorted(set(p.levels) | set(p.direct_sft_levels))


def sft_rows(p: CogParams, buffer: DemoBuffer, exclude: set[str]) -> list[dict]:
    """The SFT corpus: for every level, `sft_per_level * weight` examples of each template
    that the level has (direct: `direct_sft_levels` only), each on its own problem."""
    n = sizes(p).data.sft_per_level
    w = p.template_weights
    rows = []
    corrupt_rng = np.random.default_rng([p.data_seed, SALT["corrupt"]])
    for k in sft_levels(p):
        counts = {"direct": round(n * w["direct"]) if k in p.direct_sft_levels else 0,
                  "decomposition": round(n * w["decomposition"]), "reflection": round(n * w["reflection"])}
        probs = iter(draw_set(p, "sft", [k], sum(counts.values()), exclude=exclude, distinct=False))
        for template, count in counts.items():
            for _ in range(count):
                q = next(probs)
                if template == "direct":
                    prompt, completion = direct_prompt(q), solution(q)
                elif template == "decomposition":
                    prompt = decomposition_prompt(q, buffer.retrieve(q, p.rl.n_demos))
                    completion = decomposition_text(q, p.decomposition_values)
                else:
                    prompt, completion = reflection_prompt(q, corrupt_solution(q, corrupt_rng)), solution(q)
                rows.append({"template": template, "level": k, "prompt": prompt, "completion": completion})
    return rows


def body(ctx: Stage) -> None:
    """Draw the held-out sets and the seed demos, write the SFT corpus of the three templates."""
    import polars as pl

    p: CogParams = ctx.params
    held = held_out_sets(p)
    exclude = {q.expr for qs in held.values() for q in qs}
    demos = draw_set(p, "demo", sft_levels(p), sizes(p).data.demo_pool_per_level, exclude=exclude)
    exclude |= {q.expr for q in demos}
    rows = sft_rows(p, seed_buffer(demos, p.decomposition_values), exclude)

    out = ctx.out(DATA_DIR)
    out.mkdir(parents=True)
    sets = [r for name, qs in held.items() for r in problem_rows(qs, set=name)] + problem_rows(demos, set="demo")
    pl.DataFrame(sets).write_parquet(out / "problems.parquet")
    sft = pl.DataFrame(rows)
    sft.write_parquet(out / "sft.parquet")
    counts = sft.group_by("template").len().sort("template")
    ctx.log(f"{len(sets)} held-out/demo problems; SFT corpus: "
            + ", ".join(f"{t} {n}" for t, n in counts.iter_rows()))


def main(argv: list[str] | None = None) -> int:
    return run_stage("cog_data", "cog_rethinker", CogParams, body, argv, outputs=lambda a, p: [str(DATA_DIR)])


if __name__ == "__main__":
    sys.exit(main())
