"""Goal-conditioned samplers over an offline dataset of trajectories (OGBench's layout).

The dataset is one flat buffer of transitions (s_t, a_t, s_{t+1}); `terminals[t] = 1` marks the
last transition of each trajectory, as `ogbench.utils.load_dataset` returns it (regular,
non-compact format). Every sampler is index arithmetic on that buffer, written once and shared
by GCBC, GCIVL, HIQL and OTA. The rules follow seohongpark/ogbench `impls/utils/datasets.py`
(`GCDataset.sample_goals`, `HGCDataset.sample`), including the order of the random draws;
OTA's option terminals, rewards and masks follow ota-v/ota-v's option sampler (spec A §2.3;
read in a faithful derivative, the repository itself being unreachable here).

Notation: t = sampled index, T = final index of t's trajectory (terminal_locs), g = goal index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GoalSampling:
    """Where goals come from: the current state, a future state of the same trajectory, or a
    random dataset state (probabilities sum to 1). Future states are geometric offsets
    Delta ~ Geom(1 - discount) >= 1 when `geom`, else uniform over (t, T]."""

    p_cur: float
    p_traj: float
    p_rand: float
    geom: bool

    def __post_init__(self):
        if not np.isclose(self.p_cur + self.p_traj + self.p_rand, 1.0):
            raise ValueError(f"goal probabilities must sum to 1, got {self.p_cur}+{self.p_traj}+{self.p_rand}")


class GCData:
    """An offline goal-conditioned dataset: arrays plus trajectory boundaries."""

    def __init__(self, observations, actions, next_observations, terminals):
        self.observations = np.asarray(observations, dtype=np.float32)
        self.actions = np.asarray(actions, dtype=np.float32)
        self.next_observations = np.asarray(next_observations, dtype=np.float32)
        self.terminals = np.asarray(terminals, dtype=np.float32)
        self.size = len(self.observations)
        (self.terminal_locs,) = np.nonzero(self.terminals > 0)
        if len(self.terminal_locs) == 0 or self.terminal_locs[-1] != self.size - 1:
            raise ValueError("the last transition of the buffer must be a trajectory end (terminals[-1] = 1)")
        self.initial_locs = np.concatenate([[0], self.terminal_locs[:-1] + 1])

    @classmethod
    def from_ogbench(cls, ds: dict) -> "GCData":
        """From the dict `ogbench.utils.load_dataset(..., compact_dataset=False)` returns."""
        return cls(ds["observations"], ds["actions"], ds["next_observations"], ds["terminals"])

    def final_idx(self, idxs: np.ndarray) -> np.ndarray:
        """T: the last index of each index's trajectory."""
        return self.terminal_locs[np.searchsorted(self.terminal_locs, idxs)]

    def random_idxs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.size, size=n)

    def future_idxs(self, rng: np.random.Generator, idxs: np.ndarray, geom: bool, discount: float) -> np.ndarray:
        """A future index of the same trajectory: min(t + Delta, T), Delta ~ Geom(1 - discount)
        (>= 1), or uniform over (t, T] (t itself only when t = T)."""
        final = self.final_idx(idxs)
        if geom:
            offsets = rng.geometric(p=1.0 - discount, size=len(idxs))
            return np.minimum(idxs + offsets, final)
        u = rng.random(len(idxs))
        return np.round(np.minimum(idxs + 1, final) * u + final * (1 - u)).astype(np.int64)

    def goal_draws(self, rng: np.random.Generator, idxs: np.ndarray, gs: GoalSampling,
                   discount: float) -> "GoalDraws":
        """The draws behind goals for `idxs`, in the order of OGBench's `GCDataset.sample_goals`:
        a random index, a future index, then the coin for future-vs-random and the coin for the
        current state (no coins when p_cur = 1)."""
        n = len(idxs)
        rand_goals = self.random_idxs(rng, n)
        traj_goals = self.future_idxs(rng, idxs, gs.geom, discount)
        if gs.p_cur == 1.0:
            use_traj, use_cur = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
        else:
            use_traj = rng.random(n) < gs.p_traj / (1.0 - gs.p_cur)
            use_cur = rng.random(n) < gs.p_cur
        return GoalDraws(idxs, self.final_idx(idxs), traj_goals, rand_goals, use_traj, use_cur)

    def sample_goals(self, rng: np.random.Generator, idxs: np.ndarray, gs: GoalSampling,
                     discount: float) -> tuple[np.ndarray, np.ndarray]:
        """Goal indices for `idxs` and whether each came from the same trajectory (current or
        future state; False for random states). OGBench's `GCDataset.sample_goals`."""
        d = self.goal_draws(rng, idxs, gs, discount)
        return d.goals, d.use_traj | d.use_cur


OPTION_RULES = ("official", "hiql_reward")


@dataclass(frozen=True)
class GoalDraws:
    """The random draws behind one batch of value goals (`GCData.goal_draws`): the sampled
    indices t, their trajectory ends T, a future index of the same trajectory, a random dataset
    index, and the two coins that pick between them. HIQL's, GCIVL's and OTA's value batches
    (every n and option rule) are functions of these draws (`value_targets`), so with the same
    generator they learn from the same (s_t, g) pairs."""

    idxs: np.ndarray
    final: np.ndarray
    traj_goals: np.ndarray
    rand_goals: np.ndarray
    use_traj: np.ndarray
    use_cur: np.ndarray

    @property
    def goals(self) -> np.ndarray:
        """HIQL's value goal: the current state, else the future or the random state."""
        return np.where(self.use_cur, self.idxs, np.where(self.use_traj, self.traj_goals, self.rand_goals))


def value_draws(data: GCData, rng: np.random.Generator, batch_size: int, gs: GoalSampling,
                discount: float) -> GoalDraws:
    """Draws for one value minibatch: uniform indices t, then their goals' draws."""
    return data.goal_draws(rng, data.random_idxs(rng, batch_size), gs, discount)


def value_targets(data: GCData, d: GoalDraws, option_len: int = 1, rule: str = "official") -> dict[str, np.ndarray]:
    """One (option-aware) value batch from the draws `d`: s_t, g, the bootstrap state s_o,
    reward and mask (the IVL target is r + gamma m V(s_o, g)).

    HIQL/GCIVL (`option_len = 1, rule = "hiql_reward"`): s_o = s_{t+1}, r = 0 iff g == s_t
    else -1, m = 1 - [g == s_t] (OGBench `gc_negative`).

    OTA, `rule = "official"` (ota-v/ota-v's option sampler, `HGCDataset` with
    `abstraction_factor` n): the option started at t ends at o = min(t + n, g) when g is a
    future state of the same trajectory (goal-based early termination) and at o = min(t + n, T)
    when g is a random state (timeout, at the trajectory's last state T, i.e. observations[T],
    as OGBench's `final_state_idxs`; at t = T that option has length 0); a current-state goal
    ends at min(t + n, T) and becomes g := s_o. Success iff o == g: then r = 0 and m = 0 (no bootstrap), else r = -1,
    m = 1 and the target bootstraps from V(s_o, g). So V^h(s, g) = 0 when g is reached within
    one option and -(1 - gamma^(ceil(d/n) - 1)) / (1 - gamma) at distance d.

    OTA, `rule = "hiql_reward"` (our earlier reading, kept as a named switch): HIQL's reward on
    options, r = 0 iff g == s_t, bootstrapping from the option's end state, which may be the
    trajectory's final state T + 1 (reached by its last transition): o = min(t + n, max(g, t + 1))
    for same-trajectory goals and min(t + n, T + 1) for random ones. With n = 1 this is HIQL's
    batch bit for bit; V^h = -(1 - gamma^ceil(d/n)) / (1 - gamma).
    """
    if rule not in OPTION_RULES:
        raise ValueError(f"option rule must be one of {OPTION_RULES}, got {rule!r}")
    t, n = d.idxs, option_len
    same_traj = d.use_traj | d.use_cur
    if rule == "hiql_reward":
        goals = d.goals
        at_goal = t == goals
        # o counted in steps from t; the option's end state is next_observations[o - 1]
        o = np.where(same_traj, np.minimum(t + n, np.maximum(goals, t + 1)), np.minimum(t + n, d.final + 1))
        ends = data.next_observations[o - 1]
        steps = o - t
    else:
        # a current-state goal (use_cur overrides the coin for traj/random, as in OGBench) runs
        # the option to its timeout and takes its end as the goal (our reading, see report)
        future = d.use_traj & ~d.use_cur
        o = np.where(future, np.minimum(t + n, d.traj_goals), np.minimum(t + n, d.final))
        goals = np.where(d.use_cur, o, np.where(d.use_traj, d.traj_goals, d.rand_goals))
        at_goal = o == goals
        ends = data.observations[o]
        steps = o - t
    return {
        "observations": data.observations[t],
        "goals": data.observations[goals],
        "option_ends": ends,
        "option_steps": steps.astype(np.float32),
        "rewards": at_goal.astype(np.float32) - 1.0,
        "masks": 1.0 - at_goal.astype(np.float32),
        "idxs": t,
        "goal_idxs": goals,
        "end_idxs": o,  # official: an index of observations; hiql_reward: of next_observations, + 1
        "goal_in_traj": same_traj,  # current or future state (False: a random state)
    }


def value_batch(data: GCData, rng: np.random.Generator, batch_size: int, gs: GoalSampling,
                discount: float, option_len: int = 1, rule: str | None = None) -> dict[str, np.ndarray]:
    """A value batch from fresh draws (see `value_targets`). Without a rule: HIQL's batch when
    option_len = 1, OTA's official option batch when option_len > 1."""
    if rule is None:
        rule = "hiql_reward" if option_len == 1 else "official"
    return value_targets(data, value_draws(data, rng, batch_size, gs, discount), option_len, rule)


def actor_batch(data: GCData, rng: np.random.Generator, batch_size: int, gs: GoalSampling,
                discount: float) -> dict[str, np.ndarray]:
    """A flat actor batch (GCBC, GCIVL): s_t, a_t, s_{t+1} and a goal."""
    idxs = data.random_idxs(rng, batch_size)
    goals, _ = data.sample_goals(rng, idxs, gs, discount)
    return {"observations": data.observations[idxs], "actions": data.actions[idxs],
            "next_observations": data.next_observations[idxs], "goals": data.observations[goals]}


def low_actor_batch(data: GCData, rng: np.random.Generator, batch_size: int,
                    subgoal_steps: int) -> dict[str, np.ndarray]:
    """HIQL's low-level batch: s_t, a_t, s_{t+1} and the subgoal w = s_{min(t+k, T)}."""
    idxs = data.random_idxs(rng, batch_size)
    low = np.minimum(idxs + subgoal_steps, data.final_idx(idxs))
    return {"observations": data.observations[idxs], "actions": data.actions[idxs],
            "next_observations": data.next_observations[idxs], "subgoals": data.observations[low]}


def high_actor_batch(data: GCData, rng: np.random.Generator, batch_size: int, subgoal_steps: int,
                     p_rand: float, geom: bool, discount: float) -> dict[str, np.ndarray]:
    """HIQL's high-level batch (OGBench `HGCDataset.sample`): a goal g, future in the same
    trajectory (uniform over (t, T], or geometric) or random with probability p_rand, and the
    target subgoal s_j, j = min(t + k, g) for future goals and min(t + k, T) for random ones."""
    idxs = data.random_idxs(rng, batch_size)
    final = data.final_idx(idxs)
    traj_goals = data.future_idxs(rng, idxs, geom, discount)
    traj_targets = np.minimum(idxs + subgoal_steps, traj_goals)
    rand_goals = data.random_idxs(rng, batch_size)
    rand_targets = np.minimum(idxs + subgoal_steps, final)
    pick_rand = rng.random(batch_size) < p_rand
    goals = np.where(pick_rand, rand_goals, traj_goals)
    targets = np.where(pick_rand, rand_targets, traj_targets)
    return {"observations": data.observations[idxs], "goals": data.observations[goals],
            "targets": data.observations[targets], "idxs": idxs, "goal_idxs": goals, "target_idxs": targets,
            "goal_in_traj": ~pick_rand}


def stack_batches(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One batch per seed -> arrays with a leading seeds dimension."""
    return {k: np.stack([b[k] for b in batches]) for k in batches[0]}
