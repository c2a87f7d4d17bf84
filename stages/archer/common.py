"""What the ArCHer stages share: paths, the world, the tokenizer, models, evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.archer.params import ArcherParams, sizes

SFT_ROOT = Path("data/archer/sft")       # <size>/: model.pt, tokenizer.json, sft_curve.parquet, gate.json
RUN_ROOT = Path("data/archer/runs")      # <method>-<size>/: curve.parquet, final.parquet, seed<k>.pt
REPORT_DIR = Path("reports/archer")
SALT = {"data": 0, "sft": 1, "gate": 2, "rl_torch": 3, "rl_games": 4, "eval": 5}


def world(p: ArcherParams):
    from hrlzoo.envs.twenty_questions import make_world

    g = p.game
    return make_world(g.n_objects, g.n_attributes, g.world_seed)


def tokenizer(p: ArcherParams):
    from hrlzoo.lm.tokenizer import WordTokenizer

    return WordTokenizer(world(p).words())


def max_seq_len(p: ArcherParams) -> int:
    """Positions the policy needs: BOS + 'questions' + max_turns x (longest utterance + answer)
    + one more utterance and its stop token."""
    w = world(p)
    longest = max(len(w.utterance(a).split()) for a in range(w.n_attributes + w.n_objects))
    return 2 + p.game.max_turns * (longest + 1) + p.rl.max_new_tokens + 1


def model_config(p: ArcherParams, size: str, vocab_size: int):
    from hrlzoo.nets.tinygpt import GPTConfig

    m = sizes(p).models[size]
    return GPTConfig(vocab_size=vocab_size, n_layer=m.n_layer, n_head=m.n_head, d_model=m.d_model,
                     max_seq_len=max_seq_len(p))


def save_model(path: Path, model, **extra) -> None:
    from hrlzoo.pipeline.artifacts import save_pt

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_pt({"config": model.config_dict(), "state_dict": state, **extra}, path)


def load_sft(size: str, device="cpu"):
    from hrlzoo.lm.tokenizer import WordTokenizer
    from hrlzoo.nets.tinygpt import load_model

    model, _ = load_model(SFT_ROOT / size / "model.pt", device)
    return model, WordTokenizer.load(SFT_ROOT / size / "tokenizer.json")


def eval_hidden(p: ArcherParams, per_object: int, batch: int) -> np.ndarray:
    """Every object `per_object` times, padded to a multiple of `batch` by cycling."""
    n = p.game.n_objects * per_object
    n_pad = -(-n // batch) * batch
    return np.arange(n_pad) % p.game.n_objects


def game_stats(games) -> dict:
    """Mean return, win rate, turns and invalid-utterance share of played games."""
    returns = [g[0].trajectory_reward for g in games]
    wins = [g[-1].reward == 0.0 and g[-1].done for g in games]
    invalid = [t.next_observation.endswith(" invalid") for g in games for t in g]
    return {"return": float(np.mean(returns)), "win": float(np.mean(wins)),
            "turns": float(np.mean([len(g) for g in games])), "invalid": float(np.mean(invalid))}


def evaluate(p: ArcherParams, model, tok, *, greedy: bool, per_object: int, batch: int, seed: int,
             actor=None, examples: int = 0) -> dict:
    """Play every object (`per_object` games each); greedy decoding (the official evaluation,
    do_sample False) or sampling at the rollout temperature; `actor` overrides the policy's."""
    import torch

    from hrlzoo.envs.twenty_questions import TwentyQuestionsBatch
    from hrlzoo.lm.multiturn import play, sampling_actor

    hidden = eval_hidden(p, per_object, batch)
    env = TwentyQuestionsBatch(world(p), batch, p.game.max_turns)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    act = actor or sampling_actor(model, tok, max_new_tokens=p.rl.max_new_tokens,
                                  temperature=0.0 if greedy else p.rl.temperature, generator=gen)
    was = model.training
    model.eval()
    games = play(env, tok, act, hidden, gamma=p.rl.gamma)
    model.train(was)
    out = game_stats(games) | {"games": len(games)}
    if examples:  # the first games' transcripts: hidden object, history, return
        names = world(p).names
        out["examples"] = [{"object": names[int(h)], "history": g[-1].next_observation,
                            "return": g[0].trajectory_reward} for h, g in zip(hidden[:examples], games)]
    return out
