"""Stage archer_train: one online method from one SFT policy, every seed, with its learning curve.

    python -m stages.archer.train <method>-<size>     # e.g. archer-small, ppo-small, sft-large

Methods, each from the SFT policy of <size> and for the same number of environment episodes
(iterations x rollout_size; the official `offpolicy_train_loop` layout: roll out, store, update):
- archer:      `stages.archer.archer.ArcherTrainer` (critic every iteration, actor after the
               warm-up iterations), critic encoder = a copy of the `critic_size` SFT model;
- chai:        the same critic training, policy frozen, actions = best of `chai_samples` by Qbar;
- filtered_bc: BC on the top 10% of all trajectories so far (after the warm-up iterations);
- ppo:         token-level PPO with a value head (`hrlzoo.algos.token_ppo`), on-policy: each
               iteration's games are its batch;
- sft:         no training: the SFT policy itself, evaluated like the others (one model).

Evaluation (official: every eval_freq iterations, greedy, do_sample False): before training and
every `eval_every` iterations, every object `eval_games_per_object` times, greedy decoding (with
one game per object and a deterministic policy this is the exact expected greedy return); CHAI is
evaluated with its own actor (k samples at the rollout temperature, picked by Qbar: its greedy
form would be the frozen SFT policy). The final evaluation also plays sampled games.

Writes data/archer/runs/<method>-<size>/: curve.parquet (seed, iteration, episodes, rollout and
evaluation returns and win rates, losses), final.parquet (one row per seed).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.archer import archer, common
from stages.archer.params import ArcherParams, sizes


def trainer_config(p: ArcherParams) -> archer.ArcherConfig:
    r, s = p.rl, sizes(p).rl
    return archer.ArcherConfig(gamma=r.gamma, tau=r.tau, critic_lr=r.critic_lr, lm_lr=r.lm_lr,
                               critic_epochs=s.critic_epochs, actor_epochs=s.actor_epochs, batch_size=s.batch_size,
                               grad_accum=s.grad_accum, max_grad_norm=r.max_grad_norm,
                               max_new_tokens=r.max_new_tokens, temperature=r.temperature)


def run_seed(ctx: Stage, method: str, size: str, seed: int):
    import torch

    from hrlzoo.algos.token_ppo import TokenPPO, TokenPPOConfig
    from hrlzoo.envs.twenty_questions import TwentyQuestionsBatch
    from hrlzoo.lm.multiturn import play, sampling_actor

    p: ArcherParams = ctx.params
    s = sizes(p).rl
    torch.manual_seed(int(np.random.default_rng([seed, common.SALT["rl_torch"]]).integers(2**31)))
    policy, tok = common.load_sft(size, ctx.device)
    policy.train()
    cfg = trainer_config(p)
    gen = torch.Generator(device=ctx.device).manual_seed(seed * 1000 + common.SALT["rl_torch"])
    eval_seed = seed * 1000 + common.SALT["eval"]
    env = TwentyQuestionsBatch(common.world(p), s.env_batch, p.game.max_turns)
    games_rng = np.random.default_rng([seed, common.SALT["rl_games"]])

    trainer = bc = ppo = None
    buffer = archer.ReplayBuffer(p.rl.capacity)
    if method in ("archer", "chai"):
        encoder, _ = common.load_sft(sizes(p).critic_size, ctx.device)
        trainer = archer.ArcherTrainer(policy, archer.DoubleCritic(encoder), tok, cfg, seed)
    elif method == "filtered_bc":
        bc = archer.FilteredBC(policy, tok, replace(cfg, lm_lr=p.rl.bc_lr), seed, p.rl.filter_quantile)
    elif method == "ppo":
        ppo = TokenPPO(policy, TokenPPOConfig(gamma=p.rl.gamma, lam=p.rl.ppo_lam, epochs=s.ppo_epochs,
                                              minibatches=s.ppo_minibatches, clip=p.rl.ppo_clip,
                                              value_clip=p.rl.ppo_clip, vf_coef=p.rl.ppo_vf_coef, lr=p.rl.ppo_lr,
                                              grad_clip=p.rl.max_grad_norm), pad_id=tok.pad_id, seed=seed)

    def actor(greedy: bool):
        if method == "chai":
            return archer.chai_actor(policy, trainer.target, tok, k=p.rl.chai_samples,
                                     max_new_tokens=p.rl.max_new_tokens, temperature=p.rl.temperature, gen=gen)
        return sampling_actor(policy, tok, max_new_tokens=p.rl.max_new_tokens,
                              temperature=0.0 if greedy else p.rl.temperature, generator=gen)

    def evaluate(greedy: bool = True, per_object: int | None = None, examples: int = 0) -> dict:
        e_gen = torch.Generator(device=ctx.device).manual_seed(eval_seed)
        act = None
        if method == "chai":
            act = archer.chai_actor(policy, trainer.target, tok, k=p.rl.chai_samples,
                                    max_new_tokens=p.rl.max_new_tokens, temperature=p.rl.temperature, gen=e_gen)
        return common.evaluate(p, policy, tok, greedy=greedy, per_object=per_object or s.eval_games_per_object,
                               batch=s.env_batch, seed=eval_seed, actor=act, examples=examples)

    rows = []
    ev = evaluate()
    rows.append({"seed": seed, "iteration": 0, "episodes": 0, "eval_return": ev["return"], "eval_win": ev["win"],
                 "eval_invalid": ev["invalid"]})
    all_games: list = []
    iterations = 0 if method == "sft" else s.iterations
    with ctx.progress(iterations, f"{method}-{size} seed {seed}", unit="iter") as bar:
        for it in range(1, iterations + 1):
            hidden = games_rng.integers(p.game.n_objects, size=s.rollout_size)
            policy.eval()
            games = play(env, tok, actor(greedy=False), hidden, gamma=p.rl.gamma)
            policy.train()
            st = common.game_stats(games)
            row = {"seed": seed, "iteration": it, "episodes": it * s.rollout_size, "rollout_return": st["return"],
                   "rollout_win": st["win"]}
            update_actor = it > s.warmup_iter  # official: no_update_actor = i < warmup_iter, i from 0
            if trainer is not None:
                for t in archer.transitions(games, tok):
                    buffer.add(t)
                info = trainer.update(buffer, update_actor=update_actor and method == "archer")
            elif bc is not None:
                all_games += games
                info = bc.update(all_games, update_actor=update_actor)
            else:
                info = ppo.update(games, step=it)
            for k, v in info.items():
                row[k] = ctx.guard(f"{method} {k}", v, it)
            if it % s.eval_every == 0 or it == iterations:
                ev = evaluate()
                row.update(eval_return=ev["return"], eval_win=ev["win"], eval_invalid=ev["invalid"])
            rows.append(row)
            bar.set_postfix(ret=f"{st['return']:.2f}", ev=f"{rows[-1].get('eval_return', float('nan')):.2f}")
            bar.update(1)
    final = evaluate(examples=4)
    sampled = evaluate(greedy=False, per_object=max(2, s.eval_games_per_object))
    evals = [r["eval_return"] for r in rows if r.get("eval_return") is not None and r["iteration"] > 0]
    result = {"seed": seed, "return": final["return"], "win": final["win"], "turns": final["turns"],
              "invalid": final["invalid"], "sampled_return": sampled["return"], "sampled_win": sampled["win"],
              "return_auc": float(np.mean(evals)) if evals else final["return"],
              "episodes": iterations * s.rollout_size,
              "examples": json.dumps(final["examples"], sort_keys=True)}
    ctx.log(f"{method}-{size} seed {seed}: greedy return {final['return']:.2f} win {final['win']:.2f}, "
            f"sampled return {sampled['return']:.2f}, curve mean {result['return_auc']:.2f}")
    return rows, result


def body(ctx: Stage) -> None:
    """Train one method from one SFT policy size for every seed; log its curve and final evaluation."""
    import polars as pl

    p: ArcherParams = ctx.params
    method, _, size = ctx.args.run.rpartition("-")
    out = ctx.out(common.RUN_ROOT / ctx.args.run)
    out.mkdir(parents=True)
    curves, finals = [], []
    for seed in p.seeds:
        rows, result = run_seed(ctx, method, size, seed)
        curves += rows
        finals.append(result)
    meta = {"method": method, "size": size}
    (pl.DataFrame(curves, infer_schema_length=None).with_columns(**{k: pl.lit(v) for k, v in meta.items()})
     .sort("seed", "iteration").write_parquet(out / "curve.parquet"))
    (pl.DataFrame(finals).with_columns(**{k: pl.lit(v) for k, v in meta.items()}).sort("seed")
     .write_parquet(out / "final.parquet"))


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("run", help="<method>-<size>, one of params `runs`")

    def validate_args(a, p):
        return None if a.run in p.runs else f"run '{a.run}': expected one of {', '.join(p.runs)}"

    return run_stage("archer_train", "archer", ArcherParams, body, argv, add_args=add_args,
                     validate_args=validate_args, outputs=lambda a, p: [str(common.RUN_ROOT / a.run)])


if __name__ == "__main__":
    sys.exit(main())
