"""Env steps per second of HAMNet's pushing simulator (hrlzoo/envs/pushing.py), in one run:

    python benchmarks/pushing_sim.py [--worlds 80] [--steps 200]

1. `PushEnv`: N worlds in one process (what PPO steps: 5 seeds x 16 worlds at `cpu`), random
   actions, the full step: physics (5 substeps), friction under the object, reward, success,
   the observation with both point clouds, auto-reset of finished worlds;
2. the nearest package doing the same job: a plain pymunk loop over the same N spaces (the same
   layouts, bodies, joints and substeps), setting the hand's drive and stepping, reading nothing
   back: the floor of what any pymunk pushing env can cost per step. The ratio says what our
   bookkeeping (observation, reward, resets) adds on top of the physics itself.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", type=int, default=80)
    ap.add_argument("--steps", type=int, default=200)
    a = ap.parse_args()

    import torch

    from hrlzoo.envs.pushing import PushConfig, PushEnv

    torch.set_num_threads(1)
    cfg = PushConfig()
    env = PushEnv(a.worlds, cfg)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = torch.as_tensor(rng.uniform(-1, 1, (a.steps, a.worlds, 2)), dtype=torch.float32)
    t = time.perf_counter()
    for k in range(a.steps):
        env.step(acts[k])
    ours = a.steps * a.worlds / (time.perf_counter() - t)

    env.reset(seed=0)
    worlds = env.worlds
    v = acts.numpy() * cfg.v_max
    t = time.perf_counter()
    for k in range(a.steps):
        for i, w in enumerate(worlds):
            w.control.velocity = (float(v[k, i, 0]), float(v[k, i, 1]))
            for _ in range(cfg.substeps):
                w.space.step(cfg.dt)
    plain = a.steps * a.worlds / (time.perf_counter() - t)
    print(f"PushEnv, {a.worlds} worlds: {ours:8.0f} env steps/s (physics + friction + reward + observation + resets)")
    print(f"plain pymunk loop, same spaces: {plain:8.0f} env steps/s (physics only)")
    print(f"ratio PushEnv / plain pymunk: {ours / plain:.2f}")


if __name__ == "__main__":
    main()
