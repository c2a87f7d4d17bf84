"""Our TD3 training loop beside Stable-Baselines3's TD3: env steps per second on Pendulum-v1
with the same settings, measured in one run, one thread each.

    python benchmarks/td3_throughput.py [--steps 3000] [--hidden 256]

Both learn from step `learning_starts` on with one gradient step per env step, batch 256,
policy delay 2, target-policy smoothing 0.2/0.5, Gaussian action noise 0.1, two hidden layers
of `--hidden` units. Ours is HERON's `train_run` with the true reward (the code every HERON
stage runs, progress bar off); SB3's is `TD3.learn`. Prints steps/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def ours(steps: int, learning_starts: int, hidden: int) -> float:
    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.heron.method import train_run
    from stages.heron.params import HeronParams

    p = load_params("heron", HeronParams)
    p.sizes["cpu"].pendulum = dataclasses.replace(
        p.sizes["cpu"].pendulum, total_steps=steps, learning_starts=learning_starts, eval_episodes=1,
        hidden=hidden, batch_size=256)
    p.scale = "cpu"
    t = time.perf_counter()
    train_run(p, "pendulum", "true_reward", seed=0, device=torch.device("cpu"), progress=False)
    return steps / (time.perf_counter() - t)


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
    a = ap.parse_args()
    torch.set_num_threads(1)
    ours_sps = ours(a.steps, a.learning_starts, a.hidden)
    sb3_sps = sb3(a.steps, a.learning_starts, a.hidden)
    print(f"Pendulum-v1, {a.steps} env steps ({a.learning_starts} random), hidden {a.hidden}x2, "
          f"batch 256, 1 thread")
    print(f"hrlzoo TD3 (HERON train_run, true reward): {ours_sps:8.1f} env steps/s")
    print(f"stable-baselines3 TD3:                     {sb3_sps:8.1f} env steps/s")
    print(f"ratio hrlzoo / SB3:                        {ours_sps / sb3_sps:8.2f}")


if __name__ == "__main__":
    main()
