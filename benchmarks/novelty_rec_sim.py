"""User-steps per second of the novelty recommender's batched user simulator
(stages/novelty_rec/sim.py), beside the same user model stepped one user at a time in Python
with numpy (the way RecSim's environments step: one `UserModel` object per user, one
`simulate_response` / `update_state` call per recommendation), in one run:

    PYTHONPATH=. python benchmarks/novelty_rec_sim.py [--users 4096] [--loop-users 512] [--iterations 3]

Both run whole lifetimes (`sessions` x `session_len` recommendations of the `cpu` sizes) with
uniformly random items. The reference is ours, not RecSim itself (recsim 0.2.4 needs TensorFlow
and gym 0.x; `recsim-no-tf` still pins an old gym): the point is what batching buys over a
per-user Python loop of the same model.

Then the seeds dimension: CPU seconds of one training iteration of the hierarchical agent
(a lifetime of `users_per_seed` users per seed and one PPO update of both levels, cpu sizes)
with 1 seed and with the params' 5 seeds in one batched network (hrlzoo/nets/ensemble.py).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np


class LoopUser:
    """One user of the same model as stages/novelty_rec/sim.UserSim, stepped in plain Python."""

    def __init__(self, sp, nu, theta, known, rng):
        self.sp, self.nu, self.theta, self.consumed = sp, float(nu), theta.copy(), known.copy()
        self.rng, self.eps, self.first = rng, 0.0, True
        self.fatigue = np.zeros(len(theta))

    def start_session(self):
        sp, z = self.sp, self.rng.standard_normal()
        self.eps = sp.sigma * z if self.first else sp.rho * self.eps + sp.sigma * math.sqrt(1 - sp.rho ** 2) * z
        self.first = False
        self.p = 1 / (1 + math.exp(-(math.log(self.nu / (1 - self.nu)) + self.eps)))
        self.fatigue[:] = 0

    def step(self, topic, quality):
        sp = self.sp
        novel = not self.consumed[topic]
        logit = (sp.click_bias + sp.affinity * self.theta[topic] * (not novel) + sp.quality * quality
                 + sp.novelty * novel * (self.p - 0.5) - sp.fatigue * self.fatigue[topic])
        click = self.rng.random() < 1 / (1 + math.exp(-logit))
        if click and novel:
            self.theta[topic] += sp.interest_gain
        if click:
            self.consumed[topic] = True
        self.fatigue[topic] += 1
        return click


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=4096)
    ap.add_argument("--loop-users", type=int, default=512)
    ap.add_argument("--iterations", type=int, default=3)
    a = ap.parse_args()

    import torch

    from hrlzoo.pipeline.params import load_params
    from stages.novelty_rec import common, sim
    from stages.novelty_rec.params import NoveltyRecParams

    torch.set_num_threads(1)
    p = load_params("novelty_rec", NoveltyRecParams)
    p.scale = "cpu"
    s = p.sizes["cpu"]
    rng = np.random.default_rng(0)
    users = sim.draw_users(p.sim, s.topics, a.users, rng)
    env = common.make_sim(p)
    gen = torch.Generator().manual_seed(0)
    steps = s.sessions * s.session_len
    t0 = time.perf_counter()
    env.reset(users, [(gen, a.users)])
    clicks = 0.0
    for _ in range(s.sessions):
        env.start_session()
        for _ in range(s.session_len):
            out = env.step(torch.randint(s.items, (a.users,), generator=gen))
            clicks += float(out["click"].float().sum())
        env.end_session()
    ours = a.users * steps / (time.perf_counter() - t0)
    cat = env.cat
    topic, quality = cat.topic.numpy(), cat.quality.numpy()
    n = a.loop_users
    loop_clicks = 0
    t0 = time.perf_counter()
    for u in range(n):
        user = LoopUser(p.sim, users.nu[u], users.theta[u], users.known[u], np.random.default_rng(u))
        for _ in range(s.sessions):
            user.start_session()
            for _ in range(s.session_len):
                i = int(user.rng.integers(s.items))
                loop_clicks += user.step(int(topic[i]), float(quality[i]))
    loop = n * steps / (time.perf_counter() - t0)
    print(f"{'what':<64} {'user-steps/s':>13} {'x loop':>8}")
    print(f"{'batched torch simulator, %d users, 1 thread' % a.users:<64} {ours:13.0f} {ours / loop:8.1f}")
    print(f"{'per-user Python loop (RecSim-style), %d users' % n:<64} {loop:13.0f} {1.0:8.1f}")
    iteration = {}
    from stages.novelty_rec import agent as ag
    from stages.novelty_rec import encoders
    from stages.novelty_rec.common import seed_generator

    enc = encoders.load_fresh(p) if not (common.ENC_DIR / "encoders.pt").exists() else encoders.load()
    N = s.users_per_seed
    for seeds in (p.seeds[:1], p.seeds):
        agent = ag.Agent(p, "hrl", seeds, N)
        sim_env = common.make_sim(p)
        c0 = time.process_time()
        for it in range(a.iterations):
            u = sim.Users.cat([sim.draw_users(p.sim, s.topics, N, np.random.default_rng([x, it])) for x in seeds])
            sim_env.reset(u, [(seed_generator(x, it), N) for x in seeds])
            ag.update(agent, ag.lifetime(agent, sim_env, enc))
        iteration[len(seeds)] = (time.process_time() - c0) / a.iterations
    one, many = iteration[1], iteration[len(p.seeds)]
    print(f"{'training iteration, hierarchical agent, 1 seed (CPU s)':<64} {one:13.2f}")
    print(f"{'training iteration, hierarchical agent, %d seeds batched (CPU s)' % len(p.seeds):<64} {many:13.2f} "
          f"{many / one:8.2f} x one seed")
    print(f"click rate of random items: batched {clicks / (a.users * steps):.3f}, loop {loop_clicks / (n * steps):.3f} "
          f"(the same model: they should agree within sampling noise)")


if __name__ == "__main__":
    main()
