"""OTA/HIQL speed: gradient steps/s of the value, low-actor and high-actor updates at the `cpu`
and `paper` network sizes, and evaluation episodes/s of the batched rollouts.

    python benchmarks/ota_updates.py [--steps 30] [--threads 1] [--seeds 3] [--sizes cpu,spec,paper] [--no-eval]

Sizes: cpu (params/ota.yaml today: 128x2, batch 256), spec (spec A §2.7: 256x2 + LayerNorm,
batch 256), paper (OGBench: 512x3 + LayerNorm, batch 1024). Each update is timed on random
data of the right shapes (--seeds seeds trained together, as in the stages) after a few
warm-up steps; evaluation rolls out every episode of one pointmaze-medium
task in lockstep with the untrained HIQL policy (episodes run to ogbench's 1000-step limit).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from hrlzoo.nets.ensemble import ema_update
from stages.ota import hiql, ota

SIZES = {"cpu": ([128, 128], 256), "spec": ([256, 256], 256), "paper": ([512, 512, 512], 1024)}


def rate(fn, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return steps / (time.perf_counter() - t)


def update_rates(hidden, batch, seeds, steps):
    cfg = hiql.HIQLConfig(obs_dim=2, action_dim=2, hidden=hidden)
    value = hiql.make_value(cfg, seeds)
    target = copy.deepcopy(value).requires_grad_(False)
    low, high = hiql.make_low_actor(cfg, seeds), hiql.make_high_actor(cfg, seeds)
    opts = {k: torch.optim.Adam(m.parameters(), lr=3e-4) for k, m in
            (("value", value), ("low", low), ("high", high))}

    def r(*shape):
        return torch.randn(seeds, batch, *shape)

    vb = {"observations": r(2), "goals": r(2), "option_ends": r(2),
          "rewards": -torch.ones(seeds, batch), "masks": torch.ones(seeds, batch)}
    lb = {"observations": r(2), "next_observations": r(2), "subgoals": r(2), "actions": r(2)}
    hb = {"observations": r(2), "goals": r(2), "targets": r(2)}

    def step(name, loss):
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    def value_step():  # HIQL's V^l and OTA's V^h cost the same: one IVL step
        step("value", ota.high_value_loss(value, target, vb, cfg)[0])
        ema_update(target, value, cfg.tau)

    frozen = copy.deepcopy(value).requires_grad_(False)
    return {
        "value (IVL; HIQL V^l = OTA V^h)": rate(value_step, steps),
        "low actor (AWR)": rate(lambda: step("low", hiql.low_actor_loss(low, frozen, lb, cfg)[0]), steps),
        "high actor (AWR; HIQL on V^l)": rate(lambda: step("high", hiql.high_actor_loss(high, frozen, frozen, hb, 3.0)[0]), steps),
        "high actor (AWR; OTA on V^h)": rate(lambda: step("high", ota.high_actor_loss(high, frozen, frozen, hb, cfg)[0]), steps),
    }


def sampling_rate(batch: int, seeds: int, steps: int, transitions: int = 200_000) -> float:
    """Value minibatches/s (every seed's official option batch, stacked to tensors) from a
    synthetic buffer of 1001-step trajectories, the numpy side of one value step."""
    from hrlzoo.gcrl.dataset import GCData, GoalSampling, stack_batches, value_batch
    from hrlzoo.gcrl.nets import to_torch

    obs = np.random.default_rng(0).normal(size=(transitions, 2)).astype(np.float32)
    term = (np.arange(transitions) % 1000 == 999).astype(np.float32)
    term[-1] = 1.0
    data, gs = GCData(obs, obs, obs, term), GoalSampling(0.2, 0.5, 0.3, True)
    gens = [np.random.default_rng(s) for s in range(seeds)]
    return rate(lambda: to_torch(stack_batches([value_batch(data, g, batch, gs, 0.99, 5) for g in gens]), "cpu"), steps)


def eval_rate(seeds: int, episodes: int) -> tuple[float, float]:
    from hrlzoo.envs.pointmaze import evaluate_task, make_env

    cfg = hiql.HIQLConfig(obs_dim=2, action_dim=2, hidden=SIZES["cpu"][0])
    high, low = hiql.make_high_actor(cfg, seeds), hiql.make_low_actor(cfg, seeds)
    envs = [make_env("medium") for _ in range(seeds * episodes)]

    def policy(o, g):
        return hiql.act(high, low, torch.as_tensor(o), torch.as_tensor(g)).numpy()

    t = time.perf_counter()
    r = evaluate_task(envs, 1, seeds, policy, 1000, seed=0)
    dt = time.perf_counter() - t
    return seeds * episodes / dt, float(r.steps.sum()) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="timed gradient steps per update")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the stages use 1)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds trained together in one batched network")
    ap.add_argument("--sizes", default="cpu,spec,paper", help="comma-separated: " + ", ".join(SIZES))
    ap.add_argument("--no-eval", action="store_true", help="skip the evaluation rollout timing")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    for scale in args.sizes.split(","):
        hidden, batch = SIZES[scale]
        steps = args.steps if scale != "paper" else max(3, args.steps // 10)
        for name, r in update_rates(hidden, batch, args.seeds, steps).items():
            print(f"{scale:5s} MLP {'x'.join(map(str, hidden)):11s} batch {batch:4d} x {args.seeds} seeds  "
                  f"{name:32s} {r:8.1f} steps/s  (threads {args.threads})")
        print(f"{scale:5s} {'':15s} batch {batch:4d} x {args.seeds} seeds  {'value batch sampling (numpy)':32s} "
              f"{sampling_rate(batch, args.seeds, args.steps):8.1f} batches/s")
    if args.no_eval:
        return
    eps, env_steps = eval_rate(seeds=3, episodes=4)
    print(f"evaluation, 12 episodes in lockstep (3 seeds x 4), untrained HIQL policy: "
          f"{eps:.2f} episodes/s, {env_steps:.0f} env steps/s")


if __name__ == "__main__":
    main()
