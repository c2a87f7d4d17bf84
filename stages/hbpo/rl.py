"""Stage hbpo_rl: RL from the SFT base, one method, every seed (one after another), each
trained model evaluated right after its training (`stages.hbpo.evaluate`).

    python -m stages.hbpo.rl <method>       # a method of params `methods`, or `base`

`base` trains nothing: it evaluates the SFT base (one model, the seeds are sampling seeds), so
the base's evaluation runs beside the RL stages instead of before them.

Methods (params `methods`; the same compute for all: steps x prompts x group_size rollouts):
- hbpo:    4 budget subgroups, the budget-aware reward (Eq. 1) and the hierarchical advantage
           (Alg. 1, Eq. 4-5);
- single:  one budget at the same mean, same reward and advantage (k = 1), paper Table 4;
- classic: natural prompts (no budget token), 0/1 reward, GRPO advantage, paper Table 5;
- cosine:  natural prompts, beta cos(pi n / 2 L_max) for a correct answer, paper Table 5.
Every method: clipped objective with eps_low / eps_high and verl's dual clip, token-mean, no KL,
1 epoch of `minibatches` optimizer steps per RL step, no dynamic sampling (verl's GRPO).

Writes data/hbpo/rl/<method>/: seed<k>.pt for every seed, train.parquet (per logged step and
seed: reward, accuracy, length mean / std over all rollouts and per budget subgroup),
eval.parquet (the evaluation rows of every seed and mode); `base`: eval.parquet only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hbpo import common, evaluate, hbpo
from stages.hbpo.params import HBPOParams, sizes


def reward_spec(p: HBPOParams) -> hbpo.RewardSpec:
    r = p.reward
    return hbpo.RewardSpec(l_max=r.l_max, beta=r.beta, alpha=r.alpha or None, form=r.form,
                           format_penalty=r.format_penalty)


def make_trainer_class():
    """GRPOTrainer whose rollouts can carry the prefilled budget token as the first response
    token (`hbpo.budget_as_action`, the official rollout's layout); at `smoke`, reference rows
    in every group of equal rewards (`reference_rows`, hrlzoo/algos/reference.py)."""
    from hrlzoo.algos.grpo import GRPOTrainer
    from hrlzoo.algos.reference import with_references

    @dataclass
    class BudgetTrainer(GRPOTrainer):
        budget_action: bool = False
        reference_rows: int = 0

        def rollout(self, items):
            batch = super().rollout(items)
            if self.reference_rows:
                batch = with_references(batch, self.reference_rows, self.model, self.tok, self.cfg.temperature,
                                        self.reward_fn)
            if self.budget_action:
                batch.rollout = hbpo.budget_as_action(batch.rollout, self.model, self.cfg.temperature)
            return batch

    return BudgetTrainer


def method_hooks(p: HBPOParams, method: str, tok):
    """(prompt_fn, reward_fn, advantage_fn or None, budget of each sample j) of a method."""
    from hrlzoo.lm.tasks import direct_prompt, verify

    m = p.methods[method]
    spec = reward_spec(p)
    G = sizes(p).rl.group_size
    per_sample = hbpo.subgroup_budgets(m.budgets, G) if m.budgets else [0] * G
    prefill = 1 if (m.budgets and p.reward.budget_in_response) else 0  # n_gen counts the budget token
    cache: dict = {}

    def prompt_fn(item, j):
        key = (item.expr, per_sample[j])
        if key not in cache:
            cache[key] = tok.encode(direct_prompt(item, per_sample[j] or None), bos=True)
        return cache[key]

    def reward_fn(s):
        v = verify(s.text, s.item.answer)
        ok, formed, n = v.correct, s.finished and v.well_formed, s.n_tokens + prefill
        if m.reward == "budget":
            return hbpo.budget_reward(ok, formed, n, per_sample[s.index], spec)
        if m.reward == "cosine":
            return hbpo.cosine_reward(ok, formed, n, spec)
        return hbpo.classic_reward(ok, formed, spec)

    advantage_fn = None
    if m.reward == "budget":
        def advantage_fn(rewards, batch):
            return hbpo.hbpo_advantages(rewards, per_sample, spec, intra_coef=p.reward.intra_coef)
    return prompt_fn, reward_fn, advantage_fn, per_sample


def make_trainer(p: HBPOParams, method: str, model, tok, seed: int):
    """(the RL trainer of `method` on `model`, the budget of each sample j of a group)."""
    prompt_fn, reward_fn, advantage_fn, per_sample = method_hooks(p, method, tok)
    trainer = make_trainer_class()(model, grpo_config(p), prompt_fn=prompt_fn, reward_fn=reward_fn, tok=tok,
                                   stop_ids=[tok.eos_id], advantage_fn=advantage_fn, seed=seed,
                                   budget_action=bool(p.methods[method].budgets) and p.reward.budget_in_response,
                                   reference_rows=sizes(p).rl.reference_rows)
    return trainer, per_sample


def grpo_config(p: HBPOParams):
    from hrlzoo.algos.grpo import GRPOConfig

    s, r = sizes(p).rl, p.rl
    return GRPOConfig(group_size=s.group_size, max_new_tokens=p.reward.l_max, temperature=r.temperature,
                      top_p=r.top_p, loss_agg="token-mean", eps_low=r.eps_low, eps_high=r.eps_high,
                      dual_clip=r.dual_clip, kl_coef=0.0, dynamic_sampling=False, std_normalize=True,
                      adv_eps=1e-6, epochs=1, minibatches=s.minibatches, lr=s.lr, weight_decay=r.weight_decay,
                      grad_clip=r.grad_clip)


def step_rows(batch, per_sample, step: int, seed: int, stats: dict) -> list[dict]:
    """Log rows of one RL step: one for all rollouts (budget 0) and one per budget subgroup."""
    from hrlzoo.lm.tasks import verify

    G = batch.group_size
    lengths = batch.rollout.lengths.double().view(-1, G)
    rewards = batch.rewards.double()
    correct = np.array([s.finished and verify(s.text, s.item.answer).correct for s in batch.samples],
                       dtype=float).reshape(-1, G)
    groups = [(0, list(range(G)))] + [(b, [j for j in range(G) if per_sample[j] == b])
                                      for b in sorted(set(per_sample)) if b]
    rows = []
    for b, cols in groups:
        n = lengths[:, cols].flatten()
        rows.append({"step": step, "seed": seed, "budget": b, "reward": float(rewards[:, cols].mean()),
                     "accuracy": float(correct[:, cols].mean()), "length_mean": float(n.mean()),
                     "length_std": float(n.std()) if n.numel() > 1 else 0.0,
                     "clipfrac": stats.get("clipfrac", float("nan"))})  # no wall time: the same bytes twice
    return rows


def train_seed(ctx: Stage, method: str, seed: int, out) -> list[dict]:
    import torch

    p: HBPOParams = ctx.params
    s = sizes(p).rl
    model, tok = common.load_base(ctx.device)
    model.train()
    torch.manual_seed(int(np.random.default_rng([seed, common.SALT["rl_torch"]]).integers(2**31)))
    trainer, per_sample = make_trainer(p, method, model, tok, seed)
    stream = common.problem_stream(p, np.random.default_rng([seed, common.SALT["rl_problems"]]))
    rows = []
    with ctx.progress(s.steps, f"{method} seed {seed}") as bar:
        for step in range(1, s.steps + 1):
            stats = trainer.step([next(stream) for _ in range(s.prompts)])
            ctx.guard(f"{method} seed {seed} loss", stats.get("loss", 0.0), step)
            if step % s.log_every == 0 or step == s.steps:
                rows += step_rows(trainer.last_batch, per_sample, step, seed, stats)
            bar.set_postfix(reward=f"{stats['reward_mean']:.2f}", len=f"{stats['length_mean']:.0f}")
            bar.update(1)
    common.save_model(out / f"seed{seed}.pt", model)
    last = [r for r in rows if r["step"] == rows[-1]["step"] and r["budget"] == 0][0]
    ctx.log(f"{method} seed {seed}: reward {last['reward']:.2f}, accuracy {last['accuracy']:.2f}, "
            f"length {last['length_mean']:.1f}")
    return rows, model, tok


def evaluate_seed(ctx: Stage, method: str, seed: int, model, tok, problems) -> list[dict]:
    rows = evaluate.evaluate_run(ctx.params, model, tok, method, seed, problems)
    nat = [r for r in rows if r["mode"] == "natural"]
    by = {k: [r for r in nat if r["level"] == k] for k in sorted({r["level"] for r in nat})}
    ctx.log(f"{method} seed {seed} natural: accuracy/tokens per level " + " ".join(
        f"{sum(r['correct'] for r in v) / len(v):.2f}/{sum(r['n_tokens'] for r in v) / len(v):.1f}"
        for v in by.values()))
    return rows


def body(ctx: Stage) -> None:
    """RL of one method from the SFT base for every seed, each evaluated (`base`: evaluation only)."""
    import polars as pl

    p: HBPOParams = ctx.params
    method = ctx.args.method
    out = ctx.out(common.rl_dir(method))
    out.mkdir(parents=True)
    problems = common.test_problems(p)
    rows, evals = [], []
    if method == "base":
        model, tok = common.load_base(ctx.device)
        with ctx.progress(len(p.seeds), "base evaluation", unit="seed") as bar:
            for seed in p.seeds:
                evals += evaluate_seed(ctx, method, seed, model, tok, problems)
                bar.update(1)
    else:
        for seed in p.seeds:
            got, model, tok = train_seed(ctx, method, seed, out)
            rows += got
            evals += evaluate_seed(ctx, method, seed, model, tok, problems)
        pl.DataFrame(rows).sort("seed", "step", "budget").write_parquet(out / "train.parquet")
    pl.DataFrame(evals).write_parquet(out / "eval.parquet")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("method")

    def validate_args(a, p):
        known = ["base", *p.methods]
        return None if a.method in known else f"method '{a.method}': expected one of {', '.join(known)}"

    return run_stage("hbpo_rl", "hbpo", HBPOParams, body, argv, add_args=add_args, validate_args=validate_args,
                     outputs=lambda a, p: [str(common.rl_dir(a.method))])


if __name__ == "__main__":
    sys.exit(main())
