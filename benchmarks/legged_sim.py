"""Env steps per second of the legged crawler (stages/legged/body.py), in one run, beside the
nearest packaged legged simulator:

    python benchmarks/legged_sim.py [--steps 200] [--ant-envs 8]

1. ours: `CrawlerEnv` (torch-batched body model in tunnels, observation with both 10 x 11 height
   maps, the hierarchical reward), random actions, at the `cpu` training size (5 seeds x 64
   worlds) and at 1,024 worlds (the official batch);
2. gymnasium's MuJoCo `Ant-v5` (a quadruped, the nearest packaged legged-locomotion env; it has
   no tunnels and no height maps) in a `SyncVectorEnv`, random actions, one thread.
The ratio is ours / Ant per env step: what the body model and the batching buy (and what the
abstraction gives away: no joints, no contacts).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def ours(p, num_envs: int, steps: int) -> float:
    import torch

    from stages.legged import common

    bank, _ = common.build_bank(p, "test", 2)
    env = common.make_env(p, bank, "hierarchical", num_envs)
    env.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    acts = [torch.rand(num_envs, 6, generator=g) * 2 - 1 for _ in range(steps)]
    env.step(acts[0])
    t = time.perf_counter()
    for a in acts:
        env.step(a)
    return num_envs * steps / (time.perf_counter() - t)


def ant(num_envs: int, steps: int) -> float:
    import gymnasium as gym

    env = gym.vector.SyncVectorEnv([lambda: gym.make("Ant-v5") for _ in range(num_envs)])
    env.reset(seed=0)
    env.action_space.seed(0)
    acts = [env.action_space.sample() for _ in range(steps)]
    t = time.perf_counter()
    for a in acts:
        env.step(a)
    dt = time.perf_counter() - t
    env.close()
    return num_envs * steps / dt


def main() -> None:
    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.legged.params import LeggedParams, sizes

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--ant-envs", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    p = load_params("legged", LeggedParams)
    n_cpu = len(p.seeds) * sizes(p).num_envs
    a = ant(args.ant_envs, args.steps)
    print(f"gymnasium Ant-v5 (MuJoCo), SyncVectorEnv x {args.ant_envs}: {a:10.0f} env steps/s")
    for n in (n_cpu, 1024):
        o = ours(p, n, args.steps)
        print(f"legged CrawlerEnv, {n:4d} worlds:               {o:10.0f} env steps/s   ratio to Ant {o / a:6.1f}")


if __name__ == "__main__":
    main()
