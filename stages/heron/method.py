"""HERON's online loop: TD3 on a reward learned from hierarchical preferences, and baselines.

One function per job, read top to bottom like CleanRL's ddpg_continuous_action.py:

    result = train_run(p, "pendulum", "heron", seed=0, device=torch.device("cpu"))
    results = train_runs(p, "pendulum", "heron", seeds=[0, 1, 2])   # all seeds in one batched TD3
    metrics = evaluate_policy(p, "pendulum", result.actor_state, seed=10_000, episodes=10)

Methods (stages/heron/params.py METHODS); the policy learner is the same TD3 for all, only
the reward written into the replay buffer differs:
- true_reward: the environment's own reward;
- misweighted: r = sum_k s_k w_k z_k (`misweighted` weights; equal weights by default);
- heuristic:   r = sum_l s_(h[l]) beta^l z_(h[l]), the official `--heuristic --beta` reward
               (Pendulum: -z1 - .5 z2 - .25 z3; MountainCar: z1 - .5 z2);
- rlhf:        a Bradley-Terry reward model on flat signed-sum labels (robots RLHFRewardModel);
- heron:       a Bradley-Terry reward model on the hierarchical decision-tree labels.

The loop follows the official ddpg_rm.py / rm_mountain.py step by step:
  act (uniform random before `learning_starts`, then mu(s) + N(0, 0.1 * action_scale));
  step the env, read the factor vector z_t of the transition;
  append [obs_t, z_t] to the reward-model buffer; if step > rm_refit_start and
    step % rm_refit_every == 0: refit the reward model (`reward_model.refit`);
  r_t = r_phi([obs_t, z_t]) with the CURRENT model, written into the replay buffer once
    (transitions are not relabelled after later refits, as in the official code);
  if step > learning_starts: one TD3 update (critic every step, actor + targets every
    `policy_delay` steps).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from stages.heron.params import METHODS, PREFERENCE_METHODS, HeronParams, task_sizes

Guard = Callable[[str, float, int], Any]


@dataclass
class RunResult:
    actor_state: dict                     # TD3 actor weights (CPU tensors)
    rm_state: dict | None                 # reward-model weights incl. mu/sigma (preference methods)
    curve: list[dict] = field(default_factory=list)
    # ^ one row per finished training episode:
    #   {step, episode, return_true, return_train, rm_loss, rm_acc}; rm_* is the latest refit's
    #   (None before the first refit and for methods without a reward model)
    level_hist: list[int] | None = None   # deciding level of all candidate pairs, summed over
    #   refits: [level 0, ..., level n-1, undecided] (preference methods only)
    info: dict = field(default_factory=dict)  # totals: steps, episodes, wall_s, steps_per_s, ...


def linear_reward(method: str, task, z: np.ndarray) -> float:
    """The hand-made linear rewards of the `heuristic` and `misweighted` baselines."""
    s = np.asarray(task.signs, dtype=np.float64)
    if method == "heuristic":
        # sum_l s_(h[l]) beta^l z_(h[l]); official: -z1 - beta z2 - beta^2 z3 (ddpg_rm.py),
        # z1 - beta z2 (rm_mountain.py)
        return float(sum(s[k] * task.beta ** l * z[k] for l, k in enumerate(task.ranking)))
    if method == "misweighted":
        return float(np.dot(s * np.asarray(task.misweighted, dtype=np.float64), z))
    raise ValueError(f"no linear reward for method {method!r}")


def _rm_input(inputs: str, obs: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.concatenate([obs, z]) if inputs == "obs_factors" else np.asarray(obs)


def train_run(p: HeronParams, task: str, method: str, seed: int, device=None,
              progress: bool = True, guard: Guard | None = None) -> RunResult:
    """One seed: `train_runs(p, task, method, [seed], ...)[0]`."""
    return train_runs(p, task, method, [seed], device, progress, guard)[0]


def train_runs(p: HeronParams, task: str, method: str, seeds, device=None,
               progress: bool = True, guard: Guard | None = None) -> list[RunResult]:
    """Train one TD3 agent per seed on `task` with the reward of `method`, all seeds in one
    loop: one batched TD3 (hrlzoo/algos/td3.py, a seeds dimension) update per step for every
    seed, one replay buffer with a seeds dimension. Returns one RunResult per seed, in order.

    Seed s keeps everything of its own as when it trained alone: its gymnasium env (each seed
    steps its own `make_env(tp, s)`, the exact gymnasium dynamics and TimeLimit), its numpy
    streams (exploration noise, replay indices, reward-model minibatches: SeedSequence(s).spawn(3)),
    its TD3 networks and target-smoothing noise (TD3's per-seed generators) and its reward
    model (drawn after its TD3 networks from its own generator, refit on its own buffers; the
    reward models are refit one seed after the other at refit time). So seed s's run does not
    depend on the seeds beside it, up to floating-point summation order of the batched matmuls.
    Deterministic given `seeds` on the CPU. `guard(name, value, step)` is called on every loss
    (TD3 losses: the mean over seeds, so a NaN in any seed trips it).

    `reward_model.relabel` (off = the official behaviour): after every refit, rewrite the
    reward of every stored transition with the new r_phi."""
    import torch
    from tqdm import tqdm

    from hrlzoo.algos.replay import Batch, ReplayBuffer
    from hrlzoo.algos.td3 import TD3
    from stages.heron.factors import make_env

    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct seeds, got {seeds}")
    S = len(seeds)
    tp, sz, tdp, rmp = p.tasks[task], task_sizes(p, task), p.td3, p.reward_model
    relabel = rmp.relabel
    device = torch.device(device or "cpu")
    guard = guard or (lambda name, value, step: None)
    t_start, cpu_start = time.perf_counter(), time.process_time()

    # ---- seeding, per seed: one numpy stream per consumer, the env; torch via TD3's generators
    streams = [[np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)] for seed in seeds]
    rng_act, rng_replay, rng_rm = (list(x) for x in zip(*streams))
    envs = [make_env(tp, seed) for seed in seeds]
    obs = np.stack([env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)])  # [S, obs_dim]
    space = envs[0].action_space
    obs_dim, act_dim = envs[0].observation_space.shape[0], space.shape[0]
    n = len(tp.factors)

    agent = TD3(obs_dim, act_dim, space.low, space.high, hidden=sz.hidden,
                lr=tp.td3_lr, gamma=tdp.gamma, tau=tdp.tau, policy_delay=tdp.policy_delay,
                target_noise=tdp.target_noise, noise_clip=tdp.noise_clip, twin_q=tdp.twin_q,
                device=device, seed=seeds)
    replay = ReplayBuffer(sz.total_steps, obs_dim, act_dim, members=S)  # [S, total_steps, ...]
    act_low, act_high = agent.actor.action_low.cpu().numpy(), agent.actor.action_high.cpu().numpy()
    noise_scale = tdp.exploration_noise * agent.actor.action_scale.cpu().numpy()

    # ---- reward models (preference methods), one per seed: input buffer, factor buffer, stats
    rms: list = []
    if method in PREFERENCE_METHODS:
        from stages.heron.reward_model import make_reward_module, refit

        in_dim = obs_dim + n if rmp.inputs == "obs_factors" else obs_dim
        for i in range(S):
            # seed i's reward model is drawn where seed i's TD3 weight draws left its generator
            # (as the single-seed run drew it from the global RNG after torch.manual_seed(seed))
            torch.set_rng_state(agent.generators[i].get_state())
            rms.append(make_reward_module(
                in_dim, n, hidden=rmp.hidden, lr=tp.rm_lr,
                labels="hierarchical" if method == "heron" else "flat",
                signs=tp.signs, ranking=tp.ranking, sigma_mult=tp.sigma_mult,
                normalize=rmp.normalize, batch=rmp.batch, batches_per_refit=rmp.batches_per_refit,
            ).to(device))
        x_buf = np.zeros((S, sz.total_steps, in_dim), dtype=np.float32)
        z_buf = np.zeros((S, sz.total_steps, n), dtype=np.float64)
        level_hist = np.zeros((S, n + 1), dtype=np.int64)
    rm_loss: list = [None] * S
    rm_acc: list = [None] * S
    refits, refit_s, rm_steps = 0, [0.0] * S, [0] * S

    curves: list[list[dict]] = [[] for _ in range(S)]
    ep_true, ep_train = np.zeros(S), np.zeros(S)
    episode = [0] * S
    last: dict[str, float] = {}
    label = f"s{seeds[0]}" if S == 1 else f"seeds {seeds[0]}..{seeds[-1]} ({S})"
    bar = tqdm(total=sz.total_steps, desc=f"heron {task} {method} {label}", unit="step",
               file=sys.stderr, disable=not progress, mininterval=1.0, dynamic_ncols=True)
    actions = np.zeros((S, act_dim), dtype=space.dtype)
    next_obs = np.zeros_like(obs)
    r_env, r_train = np.zeros(S), np.zeros(S)
    terminated, truncated = np.zeros(S, dtype=bool), np.zeros(S, dtype=bool)
    z = np.zeros((S, n))

    for step in range(sz.total_steps):
        # ---- act: uniform random before learning starts (official `global_step < learning_starts`),
        # then mu(s) + N(0, (0.1 * action_scale)^2) with seed i's own noise stream, clipped
        if step < sz.learning_starts:
            for i, env in enumerate(envs):
                actions[i] = env.action_space.sample()
        else:
            mu = agent.act(obs[:, None, :])[:, 0]                              # [S, act_dim], all seeds at once
            for i in range(S):
                noise = rng_act[i].normal(0.0, 1.0, size=(act_dim,)).astype(np.float32)
                actions[i] = np.clip(mu[i] + noise * noise_scale, act_low, act_high)
        for i, env in enumerate(envs):
            next_obs[i], r_env[i], terminated[i], truncated[i], info = env.step(actions[i])
            z[i] = info["factors"]

        # ---- the reward the agent learns from
        if rms:
            xs = np.concatenate([obs, z], axis=1) if rmp.inputs == "obs_factors" else obs
            x_buf[:, step], z_buf[:, step] = xs, z
            if step > sz.rm_refit_start and step % sz.rm_refit_every == 0:
                refits += 1
                for i, rm in enumerate(rms):  # the official schedule, each seed on its own buffers
                    st = refit(rm, x_buf[i, : step + 1], z_buf[i, : step + 1], rng_rm[i])
                    refit_s[i] += st.seconds
                    rm_steps[i] += st.steps
                    level_hist[i] += st.level_hist
                    if st.steps:
                        rm_loss[i], rm_acc[i] = st.loss, st.accuracy
                        guard("rm_loss", rm_loss[i], step)
                    if relabel and len(replay):  # replay index == env step (capacity = total_steps)
                        with torch.no_grad():
                            xr = torch.as_tensor(x_buf[i, : len(replay)], device=device)
                            replay.reward[i, : len(replay)] = rm.net(xr).reshape(-1).to(replay.device)
            with torch.no_grad():  # r_t with the CURRENT model, written once
                xt = torch.as_tensor(xs, dtype=torch.float32, device=device)
                for i, rm in enumerate(rms):
                    r_train[i] = rm.net(xt[i]).item()
        elif method in ("heuristic", "misweighted"):
            # Deviation: the official --heuristic switches on after step 1000 (before, it stores
            # the untrained reward model's output); we use the heuristic from the first step.
            for i in range(S):
                r_train[i] = linear_reward(method, tp, z[i])
        else:
            r_train[:] = r_env

        # truncation (time limit) is not termination: the TD target bootstraps through it
        replay.add(obs, actions, r_train, next_obs, terminated)
        ep_true += r_env
        ep_train += r_train
        obs = next_obs.copy()

        for i in np.flatnonzero(terminated | truncated):
            episode[i] += 1
            curves[i].append({"step": step + 1, "episode": episode[i], "return_true": float(ep_true[i]),
                              "return_train": float(ep_train[i]), "rm_loss": rm_loss[i], "rm_acc": rm_acc[i]})
            ep_true[i] = ep_train[i] = 0.0
            obs[i], _ = envs[i].reset()
        if terminated[0] or truncated[0]:
            bar.set_postfix(ret=f"{curves[0][-1]['return_true']:.1f}", refresh=False)

        # ---- learn (official: `if global_step > args.learning_starts`): one batched update,
        # seed i on its own minibatch (its own index stream, as its single-seed run drew it)
        if step > sz.learning_starts:
            idx = np.concatenate([g.integers(0, len(replay), size=(1, sz.batch_size)) for g in rng_replay])
            idx = torch.as_tensor(idx, device=replay.device)
            last = agent.update(Batch(*(replay.gather(k, idx) for k in replay.fields)))
            for name, value in last.items():
                if name.endswith("_loss"):
                    guard(name, value, step)
        bar.update(1)
    bar.close()
    for env in envs:
        env.close()

    wall, cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    results = []
    for i, seed in enumerate(seeds):
        info_out = {"task": task, "method": method, "seed": seed, "seeds_batched": S,
                    "steps": sz.total_steps, "episodes": episode[i],
                    "wall_s": wall, "steps_per_s": S * sz.total_steps / wall,     # all seeds' env steps
                    "cpu_s": cpu, "steps_per_cpu_s": S * sz.total_steps / cpu,
                    "refits": refits if rms else 0, "refit_s": refit_s[i], "rm_steps": rm_steps[i],
                    "final_critic_loss": last.get("critic_loss"), "final_q1": last.get("q1")}  # means over seeds
        rm_state = None
        if rms:
            rm_state = {k: v.detach().cpu().clone() for k, v in rms[i].net.state_dict().items()}
        results.append(RunResult(actor_state=agent.actor_state(seed_index=i), rm_state=rm_state,
                                 curve=curves[i], level_hist=level_hist[i].tolist() if rms else None,
                                 info=info_out))
    return results


# Pendulum "success": the pole is held up at the end of the episode, i.e. over the last
# PENDULUM_HOLD_STEPS observations of the episode |theta| < PENDULUM_HOLD_ANGLE (rad), with
# theta = atan2(sin, cos) read from the observation after each step.
PENDULUM_HOLD_STEPS = 50
PENDULUM_HOLD_ANGLE = 0.3


def evaluate_policy(p: HeronParams, task: str, actor_state: dict, seed: int,
                    episodes: int) -> dict[str, float]:
    """Run the deterministic policy mu(s) (no noise, CPU) for `episodes` episodes.

    The first episode resets with `seed` (use one apart from the training seeds), the others
    continue the env's RNG. Returns flat floats:
      return_true, return_true_std: mean/std over episodes of the env's own return;
      success_rate: MountainCar, fraction of episodes that reach the flag (terminated);
                    Pendulum, fraction whose last 50 observations all have |theta| < 0.3 rad;
      episode_length: mean length;
      factor_<name>: mean over episodes of the episode's SUM of that factor, UNSCALED
                    (raw physical units, comparable across `factor_scale` variants).
    """
    import torch

    from hrlzoo.algos.td3 import actor_from_state
    from stages.heron.factors import make_env

    tp = p.tasks[task]
    env = make_env(tp, seed)
    actor = actor_from_state(actor_state).eval()
    returns, lengths, successes = [], [], []
    factor_sums = []
    pendulum = tp.env_id.startswith("Pendulum")
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed if ep == 0 else None)
        ret, length, fsum, angles, reached = 0.0, 0, np.zeros(len(tp.factors)), [], False
        while True:
            with torch.no_grad():
                action = actor(torch.as_tensor(obs, dtype=torch.float32)).numpy()
            obs, r, terminated, truncated, info = env.step(action)
            ret += float(r)
            length += 1
            fsum += info["factors_unscaled"]
            if pendulum:
                angles.append(abs(math.atan2(float(obs[1]), float(obs[0]))))
            reached = reached or bool(terminated)
            if terminated or truncated:
                break
        returns.append(ret)
        lengths.append(length)
        factor_sums.append(fsum)
        if pendulum:
            tail = angles[-PENDULUM_HOLD_STEPS:]
            successes.append(len(tail) == PENDULUM_HOLD_STEPS and max(tail) < PENDULUM_HOLD_ANGLE)
        else:
            successes.append(reached)
    env.close()
    out = {"return_true": float(np.mean(returns)), "return_true_std": float(np.std(returns)),
           "success_rate": float(np.mean(successes)), "episode_length": float(np.mean(lengths)),
           "episodes": float(episodes)}
    mean_f = np.mean(factor_sums, axis=0)
    for name, v in zip(tp.factors, mean_f):
        out[f"factor_{name}"] = float(v)
    return out
