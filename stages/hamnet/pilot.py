"""The sizing pilot of HAMNet's `cpu` scale (not a pipeline stage: it writes nothing).

    python -m stages.hamnet.pilot --steps 10240 hamnet monolithic hamnet_scratch

Trains each named method with the `cpu` sizes of params/hamnet.yaml (worlds, rollout, PPO) but
`--steps` env steps per seed, no evaluation, and prints env steps/s (all seeds together, networks
included) and the training success rate, so the `cpu` budget can be projected from a few minutes
(run it under the team's heavy lock). Needs data/hamnet/encoder (hamnet_pretrain) for the methods
on the pretrained encoder.
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def main(argv=None) -> int:
    import numpy as np
    import torch

    from hrlzoo.algos import ppo
    from hrlzoo.envs.pushing import PushEnv
    from hrlzoo.pipeline.params import load_params
    from stages.hamnet import nets, train
    from stages.hamnet.params import HAMNetParams

    ap = argparse.ArgumentParser()
    ap.add_argument("methods", nargs="+")
    ap.add_argument("--steps", type=int, default=10240, help="env steps per seed")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    p = load_params("hamnet", HAMNetParams)
    p.scale = "cpu"
    p.sizes["cpu"] = dataclasses.replace(p.sizes["cpu"], total_steps=a.steps)
    S = len(p.seeds)
    for method in a.methods:
        enc = None if method == "hamnet_scratch" else train.load_encoder(p)
        env = train.EncodedEnv(PushEnv(S * p.sizes["cpu"].worlds, p.env.config(), "train"), S, enc)
        t0 = time.perf_counter()
        res = ppo.train(train.ppo_config(p), env, p.seeds, make_net=train.make_net_fn(p, method, env.layout))
        wall = time.perf_counter() - t0
        print(f"{method}: {nets.count(res.agent.net, S)} params/seed, {res.info['env_steps']} env steps in {wall:.1f}s = "
              f"{res.info['env_steps'] / wall:.0f} steps/s; training success {env.successes.sum() / max(env.episodes.sum(), 1):.3f} "
              f"over {int(env.episodes.sum())} episodes; lr scale {res.agent.lr_scale.numpy().round(3).tolist()}", flush=True)
        u = res.updates
        print(f"  update seconds/rollout {np.diff([0] + [x['seconds'] for x in u]).mean():.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
