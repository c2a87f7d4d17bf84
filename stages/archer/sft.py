"""Stage archer_sft: offline games of the noisy scripted questioner -> SFT of a token-level policy.

    python -m stages.archer.sft <size>          # small | large

Offline data (spec A §4.3 step 1; the paper's LMRL-Gym 20Q data were played by a sub-optimal
LLM questioner): `data.episodes` games of `hrlzoo.envs.twenty_questions.scripted_episode` on
the generated world, every turn one (history, utterance) pair. SFT (step 2, official
`archer/algorithms/bc`): token-level BC of a TinyGPT on those pairs, loss on the utterance and
its stop token (`hrlzoo.lm.sft.train_sft`, Lightning).

Gate (issue 18): the SFT policy, sampling at the rollout temperature, should win between
`gate_min_win` and `gate_max_win` of its games within the turn limit (headroom both ways). The
stage records whether it does (gate.json "passed") and goes on: the report's pre-registered
gates (stages/archer/claims.yaml, judged over the RL seeds' evaluation samples) then make the
claims on that size untestable, with the measurement. gate.json also states the optimal questioner's return
(`optimal_return`, exact DP), the scripted questioner's, and the SFT policy's greedy and sampled
returns.

Writes data/archer/sft/<size>/: model.pt, tokenizer.json, sft_curve.parquet (step, loss), gate.json.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.archer import common
from stages.archer.params import MODEL_SIZES, ArcherParams, sizes


def offline_games(p: ArcherParams, world, rng: np.random.Generator):
    """(prompts, utterances, per-game (return, won)) of the scripted questioner's games."""
    from hrlzoo.envs.twenty_questions import ANSWERS, TwentyQuestionsBatch, scripted_episode

    n = sizes(p).sft.episodes
    hidden = rng.integers(world.n_objects, size=n)
    plans = [scripted_episode(world, int(h), p.game.max_turns, rng, premature_guess=p.data.premature_guess,
                              repeat=p.data.repeat) for h in hidden]
    env = TwentyQuestionsBatch(world, n, p.game.max_turns)   # every game at once
    history = env.reset(hidden)
    prompts, utterances = [], []
    total = np.zeros(n)
    for t in range(max(map(len, plans))):
        acts = np.array([plan[t] if t < len(plan) else -1 for plan in plans])
        for i in np.flatnonzero(~env.done):
            prompts.append(history[i])
            utterances.append(world.utterance(int(acts[i])))
        history, r, _ = env.step_actions(acts)
        total += r
    assert env.done.all() and all(h.split()[-1] in ANSWERS for h in history)
    return prompts, utterances, list(zip(total.tolist(), env.won.tolist()))


def body(ctx: Stage) -> None:
    """Generate the offline games, SFT one policy size on them, gate it."""
    import polars as pl
    import torch

    from hrlzoo.envs.twenty_questions import optimal_return
    from hrlzoo.lm.sft import encode_pairs, train_sft
    from hrlzoo.nets.tinygpt import TinyGPT
    from hrlzoo.pipeline.stage import set_threads

    p: ArcherParams = ctx.params
    size = ctx.args.size
    s = sizes(p).sft
    ctx.threads = set_threads(s.threads)
    w = common.world(p)
    tok = common.tokenizer(p)
    prompts, utterances, games = offline_games(p, w, np.random.default_rng([p.data.seed, common.SALT["data"]]))
    pairs = encode_pairs(tok, prompts, utterances)
    script = {"return": float(np.mean([g[0] for g in games])), "win": float(np.mean([g[1] for g in games]))}
    ctx.log(f"{len(games)} offline games, {len(pairs)} utterances; scripted questioner: return "
            f"{script['return']:.2f}, win {script['win']:.2f}")
    torch.manual_seed(int(np.random.default_rng([p.seeds[0], common.SALT["sft"], MODEL_SIZES.index(size)]).integers(2**31)))
    model = TinyGPT(common.model_config(p, size, tok.vocab_size)).to(ctx.device)
    ctx.log(f"{size}: {model.num_params()} parameters")
    hist = train_sft(model, pairs, max_steps=s.steps, batch_size=s.batch_size, lr=s.lr, weight_decay=s.weight_decay,
                     warmup_steps=s.warmup_steps, pad_id=tok.pad_id, seed=p.seeds[0],
                     progress=sys.stderr.isatty(), device=ctx.device)
    for i, loss in enumerate(hist["loss"]):
        ctx.guard("sft loss", loss, i)
    ctx.log(f"sft loss {np.mean(hist['loss'][:10]):.3f} -> {np.mean(hist['loss'][-10:]):.3f}")

    model.eval()
    rl = sizes(p).rl
    seed = p.seeds[0] * 1000 + common.SALT["gate"]
    sampled = common.evaluate(p, model, tok, greedy=False, per_object=s.gate_games_per_object, batch=rl.env_batch,
                              seed=seed)
    greedy = common.evaluate(p, model, tok, greedy=True, per_object=1, batch=rl.env_batch, seed=seed)
    optimal = optimal_return(w, p.game.max_turns, p.game.guess_max)
    ctx.log(f"gate: sampled return {sampled['return']:.2f} win {sampled['win']:.2f} invalid {sampled['invalid']:.3f}; "
            f"greedy return {greedy['return']:.2f} win {greedy['win']:.2f}; optimal return {optimal:.2f}")
    passed = s.gate_min_win <= sampled["win"] <= s.gate_max_win
    if not passed:  # the report's gates (claims.yaml) then make every claim on this size untestable
        ctx.log(f"gate NOT met: the SFT policy wins {sampled['win']:.2f} of its games, outside "
                f"[{s.gate_min_win}, {s.gate_max_win}]")

    out = ctx.out(common.SFT_ROOT / size)
    out.mkdir(parents=True)
    common.save_model(out / "model.pt", model)
    tok.save(out / "tokenizer.json")
    pl.DataFrame({"step": np.arange(1, len(hist["loss"]) + 1), "loss": hist["loss"]}).write_parquet(
        out / "sft_curve.parquet")
    (out / "gate.json").write_text(json.dumps(
        {"size": size, "parameters": model.num_params(), "utterances": len(pairs), "offline_games": len(games),
         "scripted": script, "sampled": sampled, "greedy": greedy, "optimal_return": optimal,
         "gate": {"min_win": s.gate_min_win, "max_win": s.gate_max_win, "passed": passed}}, indent=1, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("size", choices=MODEL_SIZES)

    return run_stage("archer_sft", "archer", ArcherParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [str(common.SFT_ROOT / a.size)])


if __name__ == "__main__":
    sys.exit(main())
