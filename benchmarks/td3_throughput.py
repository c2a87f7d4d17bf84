"""Our TD3 training loop beside Stable-Baselines3's TD3: env steps per second on Pendulum-v1
with the same settings, measured in one run, one thread each.

    python benchmarks/td3_throughput.py [--steps 3000] [--hidden 256] [--seeds 5]

Both learn from step `learning_starts` on with one gradient step per env step, batch 256,
policy delay 2, target-policy smoothing 0.2/0.5, Gaussian action noise 0.1, two hidden layers
of `--hidden` units. Ours is HERON's `train_run` with the true reward (the code every HERON
stage runs, progress bar off); SB3's is `TD3.learn`. Prints steps/s of each and the ratio.
With `--seeds N` (N > 1) it also times `train_runs`, N seeds trained together in one batched
TD3 as every HERON stage does, and prints seed-steps/s (env steps of all seeds per second)
against SB3 training the N seeds one after another (SB3's own steps/s: one seed at a time).
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def ours(steps: int, learning_starts: int, hidden: int, seeds: int = 1) -> float:
    """Env steps per second of every seed together: `train_run` for one seed, else `train_runs`."""
    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.heron.method import train_run, train_runs
    from stages.heron.params import HeronParams

    p = load_params("heron", HeronParams)
    p.sizes["cpu"].pendulum = dataclasses.replace(
        p.sizes["cpu"].pendulum, total_steps=steps, learning_starts=learning_starts, eval_episodes=1,
        hidden=hidden, batch_size=256)
    p.scale = "cpu"
    t = time.perf_counter()
    if seeds == 1:
        train_run(p, "pendulum", "true_reward", seed=0, device=torch.device("cpu"), progress=False)
    else:
        train_runs(p, "pendulum", "true_reward", list(range(seeds)), device=torch.device("cpu"), progress=False)
    return seeds * steps / (time.perf_counter() - t)


def sb3(steps: int, learning_starts: int, hidden: int) -> float:
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make("Pendulum-v1")
    noise = NormalActionNoise(mean=np.zeros(1), sigma=0.1 * 2.0 * np.ones(1))  # 0.1 x action scale
    model = TD3("MlpPolicy", env, learning_rate=5e-4, buffer_size=steps, learning_starts=learning_starts,
                batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1,
                action_noise=noise, policy_delay=2, target_policy_noise=0.2, target_noise_clip=0.5,
                policy_kwargs={"net_arch": [hidden, hidden]}, device="cpu", seed=0, verbose=0)
    t = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - t)


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--learning-starts", type=int, default=500)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seeds", type=int, default=5, help="seeds trained together in the batched row (1: skip it)")
    a = ap.parse_args()
    if a.seeds < 1:
        ap.error("--seeds must be >= 1")
    torch.set_num_threads(1)
    ours_sps = ours(a.steps, a.learning_starts, a.hidden)
    sb3_sps = sb3(a.steps, a.learning_starts, a.hidden)
    print(f"Pendulum-v1, {a.steps} env steps ({a.learning_starts} random), hidden {a.hidden}x2, "
          f"batch 256, 1 thread")
    print(f"hrlzoo TD3 (HERON train_run, true reward): {ours_sps:8.1f} env steps/s")
    print(f"stable-baselines3 TD3:                     {sb3_sps:8.1f} env steps/s")
    print(f"ratio hrlzoo / SB3:                        {ours_sps / sb3_sps:8.2f}")
    if a.seeds > 1:
        batched = ours(a.steps, a.learning_starts, a.hidden, a.seeds)
        print(f"hrlzoo TD3, {a.seeds} seeds in one batch (train_runs): {batched:8.1f} seed-steps/s")
        print(f"ratio per seed-equivalent, batched hrlzoo / SB3 one seed at a time: {batched / sb3_sps:8.2f}")


if __name__ == "__main__":
    main()
