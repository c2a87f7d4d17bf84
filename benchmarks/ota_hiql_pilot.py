"""HIQL pilot on one maze: how success grows with gradient steps at a given network size, and
what each phase costs on this CPU. A sizing aid for the `cpu` scale (issue 13), not a result.

    python benchmarks/ota_hiql_pilot.py [--maze medium] [--hidden 256 256] [--value-steps 4000]
        [--actor-steps 4000] [--points 4] [--seeds 2] [--episodes 1] [--threads 1]

Reads the maze's generated navigate dataset (data/ota/datasets/<maze>/, from `ota_datagen`),
trains HIQL as the stages do (V^l with IVL, then the low and high actors by AWR against the
frozen V^l, all seeds in one batched network, params/ota.yaml's agent hyper-parameters and
batch size) and evaluates the hierarchy on ogbench's five tasks after each of `--points`
evenly spaced actor checkpoints. Prints seconds per phase, gradient steps/s and success per
checkpoint (mean over seeds with the 95% t interval).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch


def main() -> None:
    from hrlzoo.envs.pointmaze import evaluate_task, load, make_env
    from hrlzoo.gcrl.dataset import GCData, high_actor_batch, low_actor_batch, value_batch
    from hrlzoo.nets.ensemble import ema_update
    from hrlzoo.nets.optim import Adam
    from hrlzoo.pipeline.claims import mean_ci
    from hrlzoo.pipeline.params import load_params
    from stages.ota import common, hiql
    from stages.ota.params import OTAParams, checkpoints

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maze", default="medium")
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    ap.add_argument("--value-steps", type=int, default=4000)
    ap.add_argument("--actor-steps", type=int, default=4000)
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=1, help="per task and seed at each checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    p = load_params("ota", OTAParams)
    p.seeds = list(range(args.seeds))
    p.sizes[p.scale].train.hidden = list(args.hidden)
    cfg, S, B = common.hiql_config(p, args.maze), args.seeds, common.sizes(p).train.batch_size
    train, _ = load(common.dataset_file(args.maze, "navigate"), args.maze, "navigate")
    data = GCData.from_ogbench(train)
    print(f"{args.maze}: {data.size} transitions, {len(data.terminal_locs)} episodes; MLP {args.hidden}, "
          f"batch {B} x {S} seeds, threads {args.threads}")

    def batch(fn, gens):
        return common.batch(fn, gens, "cpu")

    torch.manual_seed(0)
    value = hiql.make_value(cfg, S)
    target = copy.deepcopy(value).requires_grad_(False)
    opt, gens, gs = Adam(value.parameters(), lr=p.agent.lr), common.rngs(p, "value"), common.value_goals(p)
    t0 = time.perf_counter()
    for _ in range(args.value_steps):
        loss, _ = hiql.value_loss(value, target, batch(lambda g: value_batch(data, g, B, gs, cfg.discount), gens), cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema_update(target, value, cfg.tau)
    tv = time.perf_counter() - t0
    print(f"value: {args.value_steps} steps in {tv:.0f} s ({args.value_steps / tv:.1f} steps/s), loss {loss.item() / S:.3f}")
    value.requires_grad_(False)

    low, high = hiql.make_low_actor(cfg, S), hiql.make_high_actor(cfg, S)
    opt_l, opt_h = Adam(low.parameters(), lr=p.agent.lr), Adam(high.parameters(), lr=p.agent.lr)
    gl, gh, k = common.rngs(p, "low"), common.rngs(p, "high"), p.agent.subgoal_steps
    envs = [make_env(args.maze) for _ in range(S * args.episodes)]
    at = checkpoints(args.actor_steps, args.points)
    t_train = t_eval = 0.0
    for step in range(1, args.actor_steps + 1):
        t0 = time.perf_counter()
        lb = batch(lambda g: low_actor_batch(data, g, B, k), gl)
        hb = batch(lambda g: high_actor_batch(data, g, B, k, p.agent.actor_p_rand, False, cfg.discount), gh)
        for o, (l, _) in ((opt_l, hiql.low_actor_loss(low, value, lb, cfg)),
                          (opt_h, hiql.high_actor_loss(high, value, value, hb, cfg.high_alpha))):
            o.zero_grad(set_to_none=True)
            l.backward()
            o.step()
        t_train += time.perf_counter() - t0
        if step in at:
            t0 = time.perf_counter()

            def policy(o, g):
                with torch.no_grad():
                    return hiql.act(high, low, torch.as_tensor(o), torch.as_tensor(g)).numpy()

            per_seed = np.mean([evaluate_task(envs, task, S, policy, common.sizes(p).eval.max_steps, seed=task).success
                                for task in range(1, 6)], axis=(0, 2))
            t_eval += time.perf_counter() - t0
            m, lo, hi = mean_ci(per_seed) if S > 1 else (float(per_seed[0]), None, None)
            print(f"actor step {step}: HIQL success {m:.3f} [{lo}, {hi}] per seed {np.round(per_seed, 2).tolist()} "
                  f"(train {t_train:.0f} s, eval {t_eval:.0f} s so far)", flush=True)
    print(f"actors (low + high): {args.actor_steps} steps in {t_train:.0f} s "
          f"({args.actor_steps / t_train:.1f} steps/s of both); evaluation {t_eval:.0f} s")


if __name__ == "__main__":
    main()
