"""HERON's online loop: TD3 on a reward learned from hierarchical preferences, and baselines.

One function per job, read top to bottom like CleanRL's ddpg_continuous_action.py:

    result = train_run(p, "pendulum", "heron", seed=0, device=torch.device("cpu"))
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
    """Train one TD3 agent on `task` with the reward of `method`; deterministic given `seed`
    on the CPU. `guard(name, value, step)` is called on every loss (to stop on NaN/inf).

    `reward_model.relabel` (off = the official behaviour): after every refit, rewrite the
    reward of every stored transition with the new r_phi."""
    import torch
    from tqdm import tqdm

    from hrlzoo.algos.replay import ReplayBuffer
    from hrlzoo.algos.td3 import TD3
    from stages.heron.factors import make_env

    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    tp, sz, tdp, rmp = p.tasks[task], task_sizes(p, task), p.td3, p.reward_model
    relabel = rmp.relabel
    device = torch.device(device or "cpu")
    guard = guard or (lambda name, value, step: None)
    t_start, cpu_start = time.perf_counter(), time.process_time()

    # ---- seeding: torch (network init), one numpy stream per consumer, the env
    torch.manual_seed(seed)
    rng_act, rng_replay, rng_rm = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    env = make_env(tp, seed)
    obs, _ = env.reset(seed=seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    n = len(tp.factors)

    agent = TD3(obs_dim, act_dim, env.action_space.low, env.action_space.high, hidden=sz.hidden,
                lr=tp.td3_lr, gamma=tdp.gamma, tau=tdp.tau, policy_delay=tdp.policy_delay,
                target_noise=tdp.target_noise, noise_clip=tdp.noise_clip, twin_q=tdp.twin_q,
                device=device, seed=seed)
    # TD3 drew its weights from its own generator, seeded as torch.manual_seed(seed) seeds the
    # global one; let the global RNG go on from there, so the reward model below is drawn as
    # when TD3 drew from the global RNG (the same initial weights as before TD3's seeds dimension)
    torch.set_rng_state(agent.generators[0].get_state())
    replay = ReplayBuffer(sz.total_steps, obs_dim, act_dim)  # one seed: [1, total_steps, ...] tensors

    # ---- reward model (preference methods): its input buffer, factor buffer and refit stats
    rm = None
    if method in PREFERENCE_METHODS:
        from stages.heron.reward_model import make_reward_module, refit

        in_dim = obs_dim + n if rmp.inputs == "obs_factors" else obs_dim
        rm = make_reward_module(
            in_dim, n, hidden=rmp.hidden, lr=tp.rm_lr,
            labels="hierarchical" if method == "heron" else "flat",
            signs=tp.signs, ranking=tp.ranking, sigma_mult=tp.sigma_mult,
            normalize=rmp.normalize, batch=rmp.batch, batches_per_refit=rmp.batches_per_refit,
        ).to(device)
        x_buf = np.zeros((sz.total_steps, in_dim), dtype=np.float32)
        z_buf = np.zeros((sz.total_steps, n), dtype=np.float64)
        level_hist = np.zeros(n + 1, dtype=np.int64)
    rm_loss = rm_acc = None
    refits, refit_s, rm_steps = 0, 0.0, 0

    curve: list[dict] = []
    ep_true = ep_train = 0.0
    episode = 0
    last: dict[str, float] = {}
    bar = tqdm(total=sz.total_steps, desc=f"heron {task} {method} s{seed}", unit="step",
               file=sys.stderr, disable=not progress, mininterval=1.0, dynamic_ncols=True)

    for step in range(sz.total_steps):
        # ---- act: uniform random before learning starts (official `global_step < learning_starts`)
        if step < sz.learning_starts:
            action = env.action_space.sample()
        else:
            action = agent.act(obs, tdp.exploration_noise, rng_act)
        next_obs, r_env, terminated, truncated, info = env.step(action)
        z = info["factors"]

        # ---- the reward the agent learns from
        if rm is not None:
            x = _rm_input(rmp.inputs, obs, z)
            x_buf[step], z_buf[step] = x, z
            if step > sz.rm_refit_start and step % sz.rm_refit_every == 0:
                st = refit(rm, x_buf[: step + 1], z_buf[: step + 1], rng_rm)
                refits, refit_s, rm_steps = refits + 1, refit_s + st.seconds, rm_steps + st.steps
                level_hist += st.level_hist
                if st.steps:
                    rm_loss, rm_acc = st.loss, st.accuracy
                    guard("rm_loss", rm_loss, step)
                if relabel and len(replay):  # replay index == env step (capacity = total_steps)
                    with torch.no_grad():
                        xs = torch.as_tensor(x_buf[: len(replay)], device=device)
                        replay.reward[0, : len(replay)] = rm.net(xs).reshape(-1).to(replay.device)
            with torch.no_grad():
                r_train = rm.net(torch.as_tensor(x, dtype=torch.float32, device=device)).item()
        elif method in ("heuristic", "misweighted"):
            # Deviation: the official --heuristic switches on after step 1000 (before, it stores
            # the untrained reward model's output); we use the heuristic from the first step.
            r_train = linear_reward(method, tp, z)
        else:
            r_train = float(r_env)

        # truncation (time limit) is not termination: the TD target bootstraps through it
        replay.add(obs, action, r_train, next_obs, terminated)
        ep_true += float(r_env)
        ep_train += r_train
        obs = next_obs

        if terminated or truncated:
            episode += 1
            curve.append({"step": step + 1, "episode": episode, "return_true": ep_true,
                          "return_train": ep_train, "rm_loss": rm_loss, "rm_acc": rm_acc})
            bar.set_postfix(ret=f"{ep_true:.1f}", refresh=False)
            ep_true = ep_train = 0.0
            obs, _ = env.reset()

        # ---- learn (official: `if global_step > args.learning_starts`)
        if step > sz.learning_starts:
            last = agent.update(replay.sample(sz.batch_size, rng_replay))
            for name, value in last.items():
                if name.endswith("_loss"):
                    guard(name, value, step)
        bar.update(1)
    bar.close()
    env.close()

    wall, cpu = time.perf_counter() - t_start, time.process_time() - cpu_start
    info_out = {"task": task, "method": method, "seed": seed, "steps": sz.total_steps,
                "episodes": episode, "wall_s": wall, "steps_per_s": sz.total_steps / wall,
                "cpu_s": cpu, "steps_per_cpu_s": sz.total_steps / cpu,
                "refits": refits, "refit_s": refit_s, "rm_steps": rm_steps,
                "final_critic_loss": last.get("critic_loss"), "final_q1": last.get("q1")}
    rm_state = None
    if rm is not None:
        rm_state = {k: v.detach().cpu().clone() for k, v in rm.net.state_dict().items()}
    return RunResult(actor_state=agent.actor_state(), rm_state=rm_state, curve=curve,
                     level_hist=level_hist.tolist() if rm is not None else None, info=info_out)


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
