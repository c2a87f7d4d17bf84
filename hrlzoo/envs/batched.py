"""Batched simulators: N worlds stepped at once as torch tensors, and their gymnasium faces.

The convention every batched env of hrlzoo follows (PPO, SAC and TD3 in hrlzoo/algos take
such an env):

    env = TorchPendulum(num_envs=1024)                 # N worlds
    obs, info = env.reset(seed=0)                      # world i seeded seed + i (gymnasium's rule);
                                                       #   or seed=[s_0, ..., s_N-1], one per world
    obs, reward, terminated, truncated, info = env.step(action)   # action [N, act_dim] (or [N] ints)
    info["final_obs"]                                  # [N, obs_dim]: the observation each world
                                                       #   reached by this step, before any reset

Shapes and types: obs [N, obs_dim] float32, reward [N] (the env's dtype), terminated and
truncated [N] bool, all on `env.device`. Termination and truncation mean what gymnasium
says: `terminated` is the MDP's own end (no bootstrap past it), `truncated` a time limit
(or any other cut that is not part of the MDP; the learner bootstraps through it). As
gymnasium's `TimeLimit`, `truncated` is set when a world's episode reaches
`max_episode_steps`, whether or not it also terminated.

Auto-reset is gymnasium's `AutoresetMode.SAME_STEP` (SB3's VecEnv does the same): a world
that terminates or truncates is reset inside the same `step`, the returned `obs` is already
the first observation of its next episode and `info["final_obs"]` keeps the one it reached.
So every step is one valid transition (obs, action, reward, final_obs, terminated) for every
world, with no dummy step between episodes. `autoreset=False` leaves finished worlds as they
are until the next `reset()` (what the one-world `gymnasium.Env` face below needs).

Seeds: each world owns a `numpy.random.Generator` (`np_random[i]`, PCG64 from the world's
seed, exactly what gymnasium's `Env.reset(seed=...)` builds) used for its resets, and a
subclass draws world i's randomness from it alone. World i's trajectory therefore depends on
its own seed and actions only, not on N or on the other worlds (`check_batched_env` checks
this), and a twin of a gymnasium env can match it draw for draw.

Faces towards gymnasium (`DESIGN.md`: simulators offer both):
- `GymVectorEnv(env)`: a `gymnasium.vector.VectorEnv` (numpy in and out, SAME_STEP
  auto-reset with gymnasium's `final_obs` / `_final_obs` info keys), for gymnasium tools;
- `GymEnv(make)`: one world as a `gymnasium.Env` (passes `gymnasium.utils.env_checker.check_env`);
- `GymnasiumBatched(env_id, N)`: the other way round, N gymnasium envs (MuJoCo tasks, say)
  behind this convention, so the algorithms take them unchanged.

A subclass implements `_reset_worlds(idx)` (new initial states for those worlds, drawn from
`self.np_random[i]`), `_step_worlds(action) -> (reward, terminated)` (all worlds advance)
and `_observe() -> obs`, and sets the spaces; the base class does seeding, time limits and
auto-reset. `check_batched_env(make)` is the checker, in the spirit of gymnasium's.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


class BatchedEnv:
    """Base class of the batched convention (module docstring). Subclasses set, in __init__:
    `single_observation_space`, `single_action_space` (gymnasium spaces) and call
    `super().__init__(num_envs, max_episode_steps, device)`."""

    single_observation_space: Any
    single_action_space: Any
    metadata: dict = {"autoreset_mode": "SameStep"}

    def __init__(self, num_envs: int, max_episode_steps: int | None, device="cpu", autoreset: bool = True):
        import torch

        if num_envs < 1:
            raise ValueError(f"num_envs: expected >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.device = torch.device(device)
        self.autoreset = autoreset
        self.np_random: list[np.random.Generator] = [np.random.default_rng() for _ in range(num_envs)]
        self.world_seeds: list[int | None] = [None] * num_envs
        self.elapsed = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._needs_reset = True

    # ------------------------------------------------------------------ subclass hooks
    def _reset_worlds(self, idx: Sequence[int]) -> None:
        raise NotImplementedError

    def _step_worlds(self, action):
        """Advance every world by one step; return (reward [N], terminated [N] bool), and a
        third element, truncated [N] bool, when the simulator has a cut of its own."""
        raise NotImplementedError

    def _observe(self):
        raise NotImplementedError

    # ------------------------------------------------------------------ the API
    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.single_observation_space.shape))

    def seed_worlds(self, seed: int | Sequence[int] | None, idx: Sequence[int] | None = None) -> None:
        """New generators for worlds `idx` (default all): int -> seed + i, a list -> one each."""
        idx = list(range(self.num_envs)) if idx is None else list(idx)
        if seed is None:
            return
        seeds = [int(seed) + k for k in range(len(idx))] if np.isscalar(seed) else [int(s) for s in seed]
        if len(seeds) != len(idx):
            raise ValueError(f"seed: expected {len(idx)} seeds, got {len(seeds)}")
        for i, s in zip(idx, seeds):
            self.np_random[i] = np.random.default_rng(s)  # = gymnasium.utils.seeding.np_random(s)
            self.world_seeds[i] = s

    def reset(self, seed: int | Sequence[int] | None = None, options: dict | None = None):
        """Reset every world; `seed` as in `seed_worlds` (None keeps each world's stream going)."""
        self.seed_worlds(seed)
        idx = list(range(self.num_envs))
        self._reset_worlds(idx)
        self.elapsed.zero_()
        self._needs_reset = False
        return self._observe(), {}

    def step(self, action):
        import torch

        if self._needs_reset:
            raise RuntimeError("call reset() before step()")
        out = self._step_worlds(action)
        reward, terminated = out[0], out[1]
        self.elapsed += 1
        truncated = out[2] if len(out) > 2 else torch.zeros_like(terminated)
        if self.max_episode_steps is not None:  # gymnasium TimeLimit: truncated at the limit
            truncated = truncated | (self.elapsed >= self.max_episode_steps)
        obs = self._observe()
        done = terminated | truncated
        info = {"final_obs": obs}
        if self.autoreset and bool(done.any()):
            info["final_obs"] = obs.clone()
            idx = done.nonzero().flatten().tolist()
            self._reset_worlds(idx)
            self.elapsed[done] = 0
            obs = self._observe()
        elif self.num_envs == 1 and bool(done.any()):  # one world, no auto-reset: gymnasium's contract
            self._needs_reset = True
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        pass


def mean_returns(env: BatchedEnv, act: Callable, groups: int, episodes_per_world: int = 1, seed: int = 10_000):
    """Evaluate `groups` policies (the seeds of a batched agent) on `env`: world g * n + k
    (n = num_envs / groups) belongs to group g and starts from seed `seed + k`, so every group
    sees the same episodes. `act(obs [N, d]) -> action [N, ...]` (env units). Runs until each
    world has finished `episodes_per_world` episodes; returns [groups] mean returns (float64)."""
    import torch

    n = env.num_envs // groups
    obs, _ = env.reset(seed=[seed + k for _ in range(groups) for k in range(n)])
    ret = torch.zeros(groups, n, dtype=torch.float64)
    total = torch.zeros(groups, dtype=torch.float64)
    count = torch.zeros(groups, n, dtype=torch.long)
    while bool((count < episodes_per_world).any()):
        with torch.no_grad():
            action = act(obs)
        obs, r, te, tr, _ = env.step(action)
        live = count < episodes_per_world
        ret += r.reshape(groups, n).double().cpu() * live
        done = (te | tr).reshape(groups, n).cpu() & live
        total += (ret * done).sum(1)
        count += done.long()
        ret[done] = 0.0
    return total / episodes_per_world / n


# ---------------------------------------------------------------------------- gymnasium faces


def GymVectorEnv(env: BatchedEnv):
    """`env` as a `gymnasium.vector.VectorEnv`: numpy in and out, AutoresetMode.SAME_STEP,
    `info["final_obs"]` (object array) and `info["_final_obs"]` (mask) on the steps where a
    world finished, as gymnasium's own SyncVectorEnv writes them in that mode."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode
    from gymnasium.vector.utils import batch_space

    class _Vector(gym.vector.VectorEnv):
        metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

        def __init__(self, benv: BatchedEnv):
            self.benv = benv
            self.num_envs = benv.num_envs
            self.single_observation_space = benv.single_observation_space
            self.single_action_space = benv.single_action_space
            self.observation_space = batch_space(self.single_observation_space, self.num_envs)
            self.action_space = batch_space(self.single_action_space, self.num_envs)

        def reset(self, *, seed=None, options=None):
            obs, info = self.benv.reset(seed=seed, options=options)
            return obs.cpu().numpy(), info

        def step(self, actions):
            import torch

            a = torch.as_tensor(np.asarray(actions), device=self.benv.device)
            obs, rew, term, trunc, info = self.benv.step(a)
            done = (term | trunc).cpu().numpy()
            out_info = {}
            if done.any():
                final = info["final_obs"].cpu().numpy()
                fo = np.empty(self.num_envs, dtype=object)
                for i in range(self.num_envs):
                    fo[i] = final[i] if done[i] else None
                out_info = {"final_obs": fo, "_final_obs": done.copy(),
                            "final_info": np.array([{} for _ in range(self.num_envs)], dtype=object),
                            "_final_info": done.copy()}
            return (obs.cpu().numpy(), rew.cpu().numpy().astype(np.float64), term.cpu().numpy(),
                    trunc.cpu().numpy(), out_info)

        def close_extras(self, **kwargs):
            self.benv.close()

    return _Vector(env)


def GymEnv(make: Callable[..., BatchedEnv]):
    """One world of `make(num_envs=1, autoreset=False)` as a `gymnasium.Env` (numpy, float
    reward, no auto-reset: call reset() after an episode ends, as gymnasium expects)."""
    import gymnasium as gym

    class _Single(gym.Env):
        metadata = {"render_modes": []}

        def __init__(self):
            self.benv = make(num_envs=1, autoreset=False)
            self.observation_space = self.benv.single_observation_space
            self.action_space = self.benv.single_action_space

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            # gymnasium's Env.reset(seed) builds the same PCG64 the world would build; keep
            # the world's own generator (seeded likewise) so the two never diverge
            obs, info = self.benv.reset(seed=None if seed is None else [seed], options=options)
            return obs[0].cpu().numpy(), info

        def step(self, action):
            import torch

            a = torch.as_tensor(np.asarray(action), device=self.benv.device).unsqueeze(0)
            obs, rew, term, trunc, info = self.benv.step(a)
            return (obs[0].cpu().numpy(), float(rew[0]), bool(term[0]), bool(trunc[0]), {})

    return _Single()


class GymnasiumBatched(BatchedEnv):
    """N gymnasium envs (`gymnasium.make(env_id)`, with its registered TimeLimit) behind the
    batched convention, stepped one after another on the CPU. World i is `env.reset(seed=s_i)`
    on a seeded reset, then continues its own stream, as in gymnasium's SyncVectorEnv."""

    def __init__(self, env_id: str, num_envs: int, device="cpu", autoreset: bool = True, **make_kwargs):
        import gymnasium as gym

        self.envs = [gym.make(env_id, **make_kwargs) for _ in range(num_envs)]
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        super().__init__(num_envs, None, device, autoreset)  # the TimeLimit of gymnasium.make truncates
        self._obs = np.zeros((num_envs, *self.single_observation_space.shape), dtype=np.float32)
        self._pending_seeds: dict[int, int] = {}
        self._trunc = np.zeros(num_envs, dtype=bool)

    def seed_worlds(self, seed, idx=None):
        super().seed_worlds(seed, idx)
        if seed is not None:
            for i in (range(self.num_envs) if idx is None else idx):
                self._pending_seeds[i] = self.world_seeds[i]

    def _reset_worlds(self, idx):
        for i in idx:
            self._obs[i], _ = self.envs[i].reset(seed=self._pending_seeds.pop(i, None))

    def _step_worlds(self, action):
        import torch

        a = action.detach().cpu().numpy()
        rew = np.zeros(self.num_envs)
        term = np.zeros(self.num_envs, dtype=bool)
        for i, env in enumerate(self.envs):
            self._obs[i], rew[i], term[i], self._trunc[i], _ = env.step(a[i])
        t = lambda x, dt=None: torch.as_tensor(x, device=self.device, dtype=dt)
        return t(rew, torch.float32), t(term.copy()), t(self._trunc.copy())

    def _observe(self):
        import torch

        return torch.as_tensor(self._obs.copy(), device=self.device)

    def close(self):
        for env in self.envs:
            env.close()


# ---------------------------------------------------------------------------- the checker


def check_batched_env(make: Callable[..., BatchedEnv], num_envs: int = 4, steps: int | None = None,
                      seed: int = 123) -> None:
    """Check that `make(num_envs=..., autoreset=...)` follows the batched convention, as
    gymnasium's `check_env` does for one env; raises AssertionError naming the broken rule.

    1. spaces and the types and shapes of reset/step outputs, observations inside the space;
    2. reset(seed) is reproducible, and different seeds give different worlds;
    3. world independence: world i of an N-world env equals a one-world env seeded with
       world i's seed, step for step, across auto-resets (random actions from the space);
    4. auto-reset boundaries: where a world finished, `final_obs` differs from the returned
       obs only there, its step counter restarts, and truncation comes exactly at
       `max_episode_steps`;
    5. the one-world `gymnasium.Env` face passes gymnasium's own `check_env`, and the
       `VectorEnv` face returns what the env returns."""
    import torch
    from gymnasium.utils.env_checker import check_env

    env = make(num_envs=num_envs)
    T = steps or (2 * env.max_episode_steps + 3 if env.max_episode_steps else 300)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    rng = np.random.default_rng(seed)
    act_space.seed(int(rng.integers(1 << 31)))
    actions = [np.stack([act_space.sample() for _ in range(num_envs)]) for _ in range(T)]

    def run(e, seeds, acts):
        o, info = e.reset(seed=seeds)
        assert isinstance(info, dict), "reset must return (obs, info dict)"
        out = [o.clone()]
        for a in acts:
            o, r, te, tr, inf = e.step(torch.as_tensor(a, device=e.device))
            out.append((o.clone(), r.clone(), te.clone(), tr.clone(), inf["final_obs"].clone()))
        return out

    seeds = [seed + 7 * i for i in range(num_envs)]
    traj = run(env, seeds, actions)
    # 1. types and shapes
    o0 = traj[0]
    assert isinstance(o0, torch.Tensor) and o0.shape == (num_envs, *obs_space.shape), \
        f"reset obs: expected a tensor of shape {(num_envs, *obs_space.shape)}, got {getattr(o0, 'shape', type(o0))}"
    assert o0.dtype == torch.float32, f"obs dtype: expected float32, got {o0.dtype}"
    for t, (o, r, te, tr, fo) in enumerate(traj[1:]):
        assert r.shape == (num_envs,) and r.is_floating_point(), f"step {t}: reward must be float [N]"
        assert te.dtype == torch.bool and tr.dtype == torch.bool, f"step {t}: terminated/truncated must be bool"
        assert te.shape == tr.shape == (num_envs,), f"step {t}: terminated/truncated must be [N]"
        assert fo.shape == o.shape, f"step {t}: info['final_obs'] must have the obs shape"
        for x in (o[i].cpu().numpy() for i in range(num_envs)):
            assert obs_space.contains(x), f"step {t}: observation {x} outside the observation space"
    # 2. reproducible, seed-dependent
    again = run(make(num_envs=num_envs), seeds, actions)
    for t, (a, b) in enumerate(zip(traj[1:], again[1:])):
        assert all(torch.equal(x, y) for x, y in zip(a, b)), f"step {t}: same seeds, different result"
    other = make(num_envs=num_envs).reset(seed=[s + 1 for s in seeds])[0]
    assert not torch.equal(other, o0), "different seeds gave the same initial observations"
    # 3. world independence (across auto-resets)
    for i in (0, num_envs - 1):
        solo = run(make(num_envs=1), [seeds[i]], [a[i:i + 1] for a in actions])
        assert torch.equal(solo[0][0], o0[i]), f"world {i}: its reset depends on the other worlds"
        for t, (a, b) in enumerate(zip(traj[1:], solo[1:])):
            if not all(torch.allclose(x[i].double(), y[0].double(), atol=1e-6) for x, y in zip(a, b)):
                raise AssertionError(f"world {i}, step {t}: the world depends on the other worlds")
    # 4. auto-reset boundaries
    elapsed = np.zeros(num_envs, dtype=int)
    finished = 0
    for t, (o, r, te, tr, fo) in enumerate(traj[1:]):
        elapsed += 1
        done = (te | tr).cpu().numpy()
        if env.max_episode_steps is not None:
            at_limit = elapsed >= env.max_episode_steps
            assert np.array_equal(tr.cpu().numpy(), at_limit), \
                f"step {t}: truncated must be set exactly when an episode reaches {env.max_episode_steps} steps"
        same = (fo == o).all(-1).cpu().numpy()
        assert same[~done].all(), f"step {t}: final_obs differs from obs in a world that did not finish"
        assert not same[done].any(), f"step {t}: a finished world was not reset (obs equals final_obs)"
        finished += int(done.sum())
        elapsed[done] = 0
    assert finished > 0 or steps is not None, "no world finished within the checked steps"
    # 5. gymnasium faces
    check_env(GymEnv(make), skip_render_check=True)
    venv = GymVectorEnv(make(num_envs=num_envs))
    vo, _ = venv.reset(seed=seeds)
    assert np.array_equal(vo, o0.cpu().numpy()), "VectorEnv.reset differs from the env's reset"
    for t, a in enumerate(actions[: min(T, 50)]):
        vo, vr, vte, vtr, vinfo = venv.step(a)
        o, r, te, tr, _ = traj[1 + t]
        assert np.array_equal(vo, o.cpu().numpy()) and np.array_equal(vte, te.cpu().numpy()), \
            f"VectorEnv.step {t} differs from the env's step"
