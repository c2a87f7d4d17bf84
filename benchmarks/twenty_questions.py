"""Episodes per second of our batched Twenty Questions beside TextArena's GuessTheNumber-v0 (the
nearest packaged game of the same kind: multi-turn text, a rule-based judge, one game object
per episode), in one run.

    python benchmarks/twenty_questions.py [--games 4096] [--batch 1024] [--ta-games 300]

Both sides are played by a player that costs (almost) nothing, so the numbers are the
environments' own speed: ours says a uniformly random valid utterance each turn (text in, parsed
by the oracle; the cpu world: 32 objects, 10 attributes, turn limit 8), TextArena's player
guesses a uniformly random number in brackets ("[7]") until the game ends (1..20, its own turn
limit). Ours is timed three ways: the batch stepped with text (`step`), the batch stepped with
action ids (`step_actions`, what the scripted questioner uses), and our gymnasium `Env` one game
at a time. TextArena has no batched form. Printed: episodes/s and the ratio to TextArena.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def ours_batch(world, games: int, batch: int, text: bool, seed: int = 0) -> float:
    from hrlzoo.envs.twenty_questions import TwentyQuestionsBatch

    rng = np.random.default_rng(seed)
    env = TwentyQuestionsBatch(world, batch, max_turns=8)
    n_act = world.n_attributes + world.n_objects
    utter = [world.utterance(a) for a in range(n_act)]
    t0 = time.perf_counter()
    for _ in range(games // batch):
        env.reset(rng.integers(world.n_objects, size=batch))
        while not env.done.all():
            acts = rng.integers(n_act, size=batch)
            if text:
                env.step([utter[a] for a in acts])
            else:
                env.step_actions(acts)
    return (games // batch) * batch / (time.perf_counter() - t0)


def ours_gym(world, games: int, seed: int = 0) -> float:
    from hrlzoo.envs.twenty_questions import make_gym_env

    rng = np.random.default_rng(seed)
    env = make_gym_env(world, max_turns=8)
    n_act = world.n_attributes + world.n_objects
    t0 = time.perf_counter()
    for g in range(games):
        env.reset(seed=g)
        done = False
        while not done:
            _, _, term, trunc, _ = env.step(world.utterance(int(rng.integers(n_act))))
            done = term or trunc
    return games / (time.perf_counter() - t0)


def textarena(games: int, seed: int = 0) -> float | None:
    try:
        import textarena as ta
    except ImportError:
        return None
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for g in range(games):
        env = ta.make("GuessTheNumber-v0")
        env.reset(num_players=1, seed=g)
        done = False
        while not done:
            env.get_observation()
            done, _ = env.step(f"[{int(rng.integers(1, 21))}]")
        env.close()
    return games / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--games", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--gym-games", type=int, default=1000)
    ap.add_argument("--ta-games", type=int, default=300)
    a = ap.parse_args()

    from hrlzoo.envs.twenty_questions import make_world

    world = make_world(32, 10, seed=0)
    rows = [("ours, batch of %d, text utterances" % a.batch, ours_batch(world, a.games, a.batch, text=True)),
            ("ours, batch of %d, action ids" % a.batch, ours_batch(world, a.games, a.batch, text=False)),
            ("ours, gymnasium Env, one game at a time", ours_gym(world, a.gym_games))]
    ta_rate = textarena(a.ta_games)
    if ta_rate is not None:
        rows.append(("TextArena GuessTheNumber-v0, one game at a time", ta_rate))
    print(f"{'environment':<52} {'episodes/s':>12} {'x TextArena':>12}")
    for name, rate in rows:
        ratio = f"{rate / ta_rate:12.1f}" if ta_rate else f"{'n/a':>12}"
        print(f"{name:<52} {rate:12.0f} {ratio}")
    if ta_rate is None:
        print("(TextArena is not installed: `make bench` installs it)")


if __name__ == "__main__":
    main()
