"""Goal-conditioned samplers over an offline dataset of trajectories (OGBench's layout).

The dataset is one flat buffer of transitions (s_t, a_t, s_{t+1}); `terminals[t] = 1` marks the
last transition of each trajectory, as `ogbench.utils.load_dataset` returns it (regular,
non-compact format). Every sampler is index arithmetic on that buffer, written once and shared
by GCBC, GCIVL, HIQL and OTA. The rules follow seohongpark/ogbench `impls/utils/datasets.py`
(`GCDataset.sample_goals`, `HGCDataset.sample`), including the order of the random draws;
OTA's option terminals follow spec A §2.3.

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

    def sample_goals(self, rng: np.random.Generator, idxs: np.ndarray, gs: GoalSampling,
                     discount: float) -> tuple[np.ndarray, np.ndarray]:
        """Goal indices for `idxs` and whether each came from the same trajectory (current or
        future state; False for random states). OGBench's `GCDataset.sample_goals`."""
        n = len(idxs)
        rand_goals = self.random_idxs(rng, n)
        traj_goals = self.future_idxs(rng, idxs, gs.geom, discount)
        if gs.p_cur == 1.0:
            return idxs.copy(), np.ones(n, dtype=bool)
        use_traj = rng.random(n) < gs.p_traj / (1.0 - gs.p_cur)
        goals = np.where(use_traj, traj_goals, rand_goals)
        use_cur = rng.random(n) < gs.p_cur
        goals = np.where(use_cur, idxs, goals)
        return goals, use_traj | use_cur


def value_batch(data: GCData, rng: np.random.Generator, batch_size: int, gs: GoalSampling,
                discount: float, option_len: int = 1) -> dict[str, np.ndarray]:
    """A batch for an (option-aware) goal-conditioned value: s_t, g, the state s_o where the
    bootstrap happens, reward and mask.

    option_len = 1 is HIQL/GCIVL's value batch: s_o = s_{t+1}, r = 0 if g == s_t else -1,
    mask = 1 - [g == s_t] (OGBench `gc_negative`).

    option_len = n > 1 is OTA's high-value batch: the transition is an option of up to n steps
    that ends at o = min(t + n, g) when g is in the same trajectory ("goal-based early
    termination") and at o = min(t + n, T + 1) otherwise ("timeout"; T + 1 is the trajectory's
    final state, reached by its last transition). The option pays one -1 unless the agent
    already stands at the goal (g == t), so V^h counts options, not steps:
    V^h(s, g) = -(1 - gamma^ceil(d/n)) / (1 - gamma). With n = 1 every array equals HIQL's
    (tests check it), which is our reading of spec A §2.3 where it is ambiguous (see report).
    """
    idxs = data.random_idxs(rng, batch_size)
    goals, same_traj = data.sample_goals(rng, idxs, gs, discount)
    final = data.final_idx(idxs)
    at_goal = idxs == goals
    # o is counted in steps from t; the option's end state is next_observations[o - 1].
    horizon = np.where(same_traj, np.minimum(idxs + option_len, np.maximum(goals, idxs + 1)),
                       np.minimum(idxs + option_len, final + 1))
    return {
        "observations": data.observations[idxs],
        "goals": data.observations[goals],
        "option_ends": data.next_observations[horizon - 1],
        "option_steps": (horizon - idxs).astype(np.float32),
        "rewards": at_goal.astype(np.float32) - 1.0,
        "masks": 1.0 - at_goal.astype(np.float32),
        "idxs": idxs,
        "goal_idxs": goals,
        "goal_in_traj": same_traj,  # current or future state (False: a random state)
    }


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
