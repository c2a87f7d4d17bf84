"""Twenty Questions, a multi-turn text game with a rule-based oracle, batched (ArCHer, spec A §4.5).

    world = make_world(n_objects=32, n_attributes=10, seed=0)
    env = TwentyQuestionsBatch(world, batch=64, max_turns=8)
    obs = env.reset(hidden)                       # hidden: [B] object ids; obs: B history strings
    obs, reward, done = env.step(utterances)      # B utterances (text), one per game
    env.won, env.turns                            # [B] bool / int

The game of the paper's Twenty Questions (official `archer/environment/twenty_questions.py`) on a
generated world: `n_objects` objects with made-up one-word names, each described by
`n_attributes` yes/no attributes (columns are balanced random splits of the objects, resampled
until every object has its own signature, so the attributes alone identify the object). Each
turn the agent says one utterance of several words:

    is it <attribute phrase> ?      e.g. "is it made of wood ?"  (a phrase is 1-3 words)
    is it a <object name> ?         a guess, e.g. "is it a bako ?"

and the oracle (rules here, a fine-tuned flan-t5-small in the paper) answers `yes`, `no`, or
`invalid` for anything else. Reward -1 per turn and 0 on the turn of a correct guess, which ends
the game; the game also ends after `max_turns` turns (the official env's max_conversation_length,
20 there), so the return is -(turns before the win) or -max_turns, in [-max_turns, 0]. As in the
official env the observation is the whole history: "questions" followed by every utterance and
its answer, space-separated words (no turn counter).

Games already over ignore their utterance (reward 0, done stays true). `step_actions` takes
action ids instead of text (attribute k in 0..K-1, guess of object o as K + o, -1 invalid): the
scripted questioner and the optimal one play through it, at numpy speed.

`TwentyQuestionsEnv` (one game) and `TwentyQuestionsVectorEnv` (the batch) are the gymnasium
API with `gymnasium.spaces.Text` observations and actions; both pass `check_env`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

START = "questions"
ANSWERS = ("yes", "no", "invalid")
# Attribute phrases (1-3 words each); a world uses the first `n_attributes` of a seeded shuffle.
ATTRIBUTE_POOL = (
    "alive", "red", "made of wood", "made of metal", "bigger than a car", "found in a kitchen",
    "used outdoors", "soft", "able to fly", "eaten", "round", "electric", "found in water",
    "heavy", "noisy", "sharp", "sold in shops", "older than you", "green", "worn", "cold",
    "found at school", "used at night", "very old",
)
_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"
FIXED_WORDS = ("is", "it", "a", "?", START, *ANSWERS)


@dataclass(frozen=True)
class World:
    """The objects, the attribute phrases and the truth table [n_objects, n_attributes]."""

    names: tuple[str, ...]
    attributes: tuple[str, ...]
    table: np.ndarray = field(compare=False)  # bool [N, K]

    @property
    def n_objects(self) -> int:
        return len(self.names)

    @property
    def n_attributes(self) -> int:
        return len(self.attributes)

    def question(self, k: int) -> str:
        return f"is it {self.attributes[k]} ?"

    def guess(self, o: int) -> str:
        return f"is it a {self.names[o]} ?"

    def utterance(self, action: int) -> str:
        """Text of action id `action` (attribute k < K, guess K + o)."""
        K = self.n_attributes
        return self.question(action) if action < K else self.guess(action - K)

    @functools.cached_property
    def parse_table(self) -> dict[str, int]:
        """Utterance text (whitespace-normalised) -> action id; anything else is invalid."""
        table = {self.question(k): k for k in range(self.n_attributes)}
        table.update({self.guess(o): self.n_attributes + o for o in range(self.n_objects)})
        return table

    def parse(self, utterance: str) -> int:
        return self.parse_table.get(" ".join(utterance.split()), -1)

    @functools.cached_property
    def column_bits(self) -> tuple[int, ...]:
        """Attribute k as a bit mask of the objects that have it."""
        return tuple(sum(1 << o for o in range(self.n_objects) if self.table[o, k])
                     for k in range(self.n_attributes))

    def words(self) -> list[str]:
        """Every word the game writes (the word tokenizer's vocabulary), in a fixed order."""
        out = list(FIXED_WORDS)
        for phrase in self.attributes:
            out += [w for w in phrase.split() if w not in out]
        return out + [n for n in self.names if n not in out]


def make_world(n_objects: int, n_attributes: int, seed: int) -> World:
    """A world with distinct object names and signatures (see the module docstring)."""
    if n_attributes > len(ATTRIBUTE_POOL):
        raise ValueError(f"at most {len(ATTRIBUTE_POOL)} attributes, got {n_attributes}")
    if n_objects > 2 ** n_attributes:
        raise ValueError(f"{n_attributes} yes/no attributes cannot tell {n_objects} objects apart")
    rng = np.random.default_rng([seed, 2024])
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    reserved = {w for p in ATTRIBUTE_POOL for w in p.split()} | set(FIXED_WORDS)
    names: list[str] = []
    while len(names) < n_objects:
        name = "".join(syllables[i] for i in rng.integers(len(syllables), size=2))
        if name not in names and name not in reserved:
            names.append(name)
    order = rng.permutation(len(ATTRIBUTE_POOL))[:n_attributes]
    attributes = tuple(ATTRIBUTE_POOL[i] for i in order)
    for _ in range(10_000):
        table = np.zeros((n_objects, n_attributes), dtype=bool)
        for k in range(n_attributes):
            table[rng.permutation(n_objects)[: n_objects // 2], k] = True
        if len({row.tobytes() for row in table}) == n_objects:
            return World(tuple(names), attributes, table)
    raise RuntimeError("could not draw distinct signatures; use more attributes")


class TwentyQuestionsBatch:
    """B games at once (see the module docstring). Arrays: hidden, turns, done, won: [B]."""

    def __init__(self, world: World, batch: int, max_turns: int):
        self.world, self.batch, self.max_turns = world, int(batch), int(max_turns)
        self.hidden = np.zeros(self.batch, dtype=np.int64)
        self.turns = np.zeros(self.batch, dtype=np.int64)
        self.done = np.ones(self.batch, dtype=bool)
        self.won = np.zeros(self.batch, dtype=bool)
        self.history: list[str] = [START] * self.batch

    def reset(self, hidden: Sequence[int] | np.ndarray) -> list[str]:
        hidden = np.asarray(hidden, dtype=np.int64)
        if hidden.shape != (self.batch,):
            raise ValueError(f"expected {self.batch} hidden objects, got shape {hidden.shape}")
        if hidden.min() < 0 or hidden.max() >= self.world.n_objects:
            raise ValueError("hidden object id out of range")
        self.hidden = hidden.copy()
        self.turns[:] = 0
        self.done[:] = False
        self.won[:] = False
        self.history = [START] * self.batch
        return list(self.history)

    def answers(self, actions: np.ndarray) -> np.ndarray:
        """Oracle answers (0 yes, 1 no, 2 invalid) to action ids [B] about each game's object."""
        K = self.world.n_attributes
        a = np.asarray(actions, dtype=np.int64)
        ans = np.full(self.batch, 2, dtype=np.int64)
        ask = (a >= 0) & (a < K)
        ans[ask] = np.where(self.world.table[self.hidden[ask], a[ask]], 0, 1)
        guess = a >= K
        ans[guess] = np.where(a[guess] - K == self.hidden[guess], 0, 1)
        return ans

    def step_actions(self, actions: Sequence[int] | np.ndarray, texts: Sequence[str] | None = None):
        """Advance every live game by its action id; `texts` (the utterances as said) go into the
        history, else the canonical text of each action. Returns (obs, reward [B], done [B])."""
        a = np.asarray(actions, dtype=np.int64)
        live = ~self.done
        ans = self.answers(a)
        correct = live & (a >= self.world.n_attributes) & (ans == 0)
        reward = np.where(live, np.where(correct, 0.0, -1.0), 0.0)
        self.turns += live
        self.won |= correct
        for i in np.flatnonzero(live):
            said = texts[i] if texts is not None else (self.world.utterance(int(a[i])) if a[i] >= 0 else "")
            said = " ".join(str(said).split())
            self.history[i] = f"{self.history[i]} {said} {ANSWERS[ans[i]]}" if said else \
                f"{self.history[i]} {ANSWERS[ans[i]]}"
        self.done |= live & (correct | (self.turns >= self.max_turns))
        return list(self.history), reward, self.done.copy()

    def step(self, utterances: Sequence[str]):
        """Advance every live game by its utterance (text). Returns (obs, reward [B], done [B])."""
        if len(utterances) != self.batch:
            raise ValueError(f"expected {self.batch} utterances, got {len(utterances)}")
        ids = np.array([self.world.parse(u) for u in utterances], dtype=np.int64)
        return self.step_actions(ids, utterances)


# --------------------------------------------------------------------------- questioners


def consistent(world: World, asked: dict[int, bool], ruled_out: set[int] | None = None) -> np.ndarray:
    """Candidate objects [N] bool consistent with answered attributes `asked` (k -> yes?) and not
    guessed wrong."""
    ok = np.ones(world.n_objects, dtype=bool)
    for k, yes in asked.items():
        ok &= world.table[:, k] == yes
    for o in ruled_out or ():
        ok[o] = False
    return ok


def scripted_episode(world: World, hidden: int, max_turns: int, rng: np.random.Generator, *,
                     premature_guess: float, repeat: float = 0.0,
                     skip_uninformative: bool = False) -> list[int]:
    """The actions of the noisy scripted questioner in one game (offline data, spec A §4.5): each
    turn, if one candidate remains it guesses it; otherwise with probability `premature_guess` it
    guesses a random remaining candidate, with probability `repeat` it asks again an attribute
    it has already asked (a wasted turn), else it asks a uniformly random attribute it has not
    asked (possibly one that splits nothing: a wasted turn too, unless `skip_uninformative`)."""
    K, N = world.n_attributes, world.n_objects
    yes_bits, full = world.column_bits, (1 << N) - 1
    asked: dict[int, bool] = {}
    cand_bits = full
    actions: list[int] = []
    for _ in range(max_turns):
        cand = [o for o in range(N) if cand_bits >> o & 1]
        left = [k for k in range(K) if k not in asked]
        if skip_uninformative:
            left = [k for k in left if cand_bits & yes_bits[k] not in (0, cand_bits)]
        u = rng.random()
        if len(cand) == 1 or not left or u < premature_guess:
            o = cand[int(rng.integers(len(cand)))]
            actions.append(K + o)
            if o == hidden:
                break
            cand_bits &= ~(1 << o)
        elif asked and u < premature_guess + repeat:
            actions.append(list(asked)[int(rng.integers(len(asked)))])
        else:
            k = left[int(rng.integers(len(left)))]
            actions.append(k)
            asked[k] = bool(world.table[hidden, k])
            cand_bits &= yes_bits[k] if asked[k] else full & ~yes_bits[k]
    return actions


def optimal_return(world: World, max_turns: int, guess_max: int = 3) -> float:
    """Expected return of the best questioner (uniform hidden object) that asks attributes and
    guesses only when at most `guess_max` candidates remain: exact dynamic programming over the
    candidate sets (bit masks) and the turns left. With guess_max = N it is the unrestricted
    optimum, but the state space then grows combinatorially; guessing among more than 3
    candidates never pays on balanced worlds (a split costs one turn and halves the set)."""
    N = world.n_objects
    col = world.column_bits

    @functools.lru_cache(maxsize=None)
    def f(mask: int, turns: int) -> float:
        n = bin(mask).count("1")
        if turns == 0 or n == 0:
            return 0.0
        best = -float(turns)  # never winning
        if n <= guess_max:
            o_bits = [1 << o for o in range(N) if mask >> o & 1]
            # guessing any candidate: win now with 1/n, else one turn lost and one fewer candidate
            best = max(best, max((n - 1) / n * (-1.0 + f(mask & ~b, turns - 1)) for b in o_bits))
        for c in col:
            yes, no = mask & c, mask & ~c
            if yes and no:
                ny = bin(yes).count("1")
                best = max(best, -1.0 + (ny * f(yes, turns - 1) + (n - ny) * f(no, turns - 1)) / n)
        return best

    return f((1 << N) - 1, int(max_turns))


# --------------------------------------------------------------------------- gymnasium API


def _charset(world: World) -> str:
    return "".join(sorted({c for w in world.words() for c in w} | {" "}))


def _max_obs_chars(world: World, max_turns: int) -> int:
    longest = max(len(world.question(k)) for k in range(world.n_attributes))
    longest = max(longest, max(len(world.guess(o)) for o in range(world.n_objects)))
    return len(START) + max_turns * (longest + 2 + max(map(len, ANSWERS)) + 64)


def _gym():
    import gymnasium

    return gymnasium


def make_gym_env(world: World, max_turns: int):
    """A `gymnasium.Env` of one game (Text observation and action; the hidden object is drawn
    from the reset seed)."""
    gym = _gym()
    from gymnasium import spaces

    class TwentyQuestionsEnv(gym.Env):
        metadata = {"render_modes": ["ansi"]}

        def __init__(self, render_mode=None):
            self.world, self.max_turns, self.render_mode = world, max_turns, render_mode
            charset = _charset(world)
            self.observation_space = spaces.Text(max_length=_max_obs_chars(world, max_turns), charset=charset)
            self.action_space = spaces.Text(max_length=64, min_length=0, charset=charset)
            self.game = TwentyQuestionsBatch(world, 1, max_turns)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            hidden = int(self.np_random.integers(self.world.n_objects))
            if options and "hidden" in options:
                hidden = int(options["hidden"])
            obs = self.game.reset([hidden])
            return obs[0], {"hidden": hidden}

        def step(self, action):
            if self.game.done[0]:
                raise RuntimeError("step() after the game ended: call reset()")
            obs, reward, done = self.game.step([str(action)[:64]])
            won = bool(self.game.won[0])
            terminated = won
            truncated = bool(done[0]) and not won
            return obs[0], float(reward[0]), terminated, truncated, {"won": won}

        def render(self):
            return self.game.history[0]

    return TwentyQuestionsEnv()


def make_vector_env(world: World, num_envs: int, max_turns: int):
    """A `gymnasium.vector.VectorEnv` over `TwentyQuestionsBatch` (autoreset: next-step mode, a
    finished game is reset on the following step, as gymnasium's default)."""
    gym = _gym()
    from gymnasium import spaces

    class TwentyQuestionsVectorEnv(gym.vector.VectorEnv):
        metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

        def __init__(self):
            self.num_envs = num_envs
            charset = _charset(world)
            self.single_observation_space = spaces.Text(max_length=_max_obs_chars(world, max_turns), charset=charset)
            self.single_action_space = spaces.Text(max_length=64, min_length=0, charset=charset)
            self.observation_space = spaces.Tuple([self.single_observation_space] * num_envs)
            self.action_space = spaces.Tuple([self.single_action_space] * num_envs)
            self.game = TwentyQuestionsBatch(world, num_envs, max_turns)
            self.world = world
            self._rng = np.random.default_rng()
            self._needs_reset = np.zeros(num_envs, dtype=bool)

        def reset(self, *, seed=None, options=None):
            if seed is not None:
                self._rng = np.random.default_rng(seed)
            obs = self.game.reset(self._rng.integers(world.n_objects, size=num_envs))
            self._needs_reset[:] = False
            return tuple(obs), {}

        def step(self, actions):
            acts = [str(a) for a in actions]
            was_done = self._needs_reset.copy()
            obs, reward, done = self.game.step(acts)
            won = self.game.won.copy()
            for i in np.flatnonzero(was_done):  # next-step autoreset: this step only resets
                self.game.hidden[i] = self._rng.integers(world.n_objects)
                self.game.turns[i] = 0
                self.game.done[i] = False
                self.game.won[i] = False
                self.game.history[i] = START
                obs[i], reward[i], done[i], won[i] = START, 0.0, False, False
            terminated = won & ~was_done
            truncated = done & ~won & ~was_done
            self._needs_reset = done & ~was_done
            return tuple(self.game.history), reward.astype(np.float64), terminated, truncated, {}

    return TwentyQuestionsVectorEnv()
