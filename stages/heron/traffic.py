"""Stages heron_traffic_reward and heron_traffic_prefs: HERON's headline task, traffic-signal control in SUMO, one reward per run.

    python -m stages.heron.traffic <task> <method>     # task: a key of params traffic.tasks
    python -m stages.heron.traffic <task> references   # fixed-time plans and a random policy

Every seed of params trains in ONE batched PPO (hrlzoo.algos.ppo: a seeds dimension, one world
per seed, each world a SUMO simulation in its own worker process, hrlzoo.envs.traffic). Only the
reward PPO learns from differs between methods (the same TRAFFIC_METHODS as classic control):
- true_reward: the reward engineered for this setup, IntelliLight's weighted sum of the six
  factors (hrlzoo.envs.traffic.designed_reward), always on the unscaled factors;
- misweighted: r = sum_k sign_k w_k z_k with equal weights, on the (possibly rescaled) factors;
- rlhf:        a Bradley-Terry reward model on flat signed-sum labels (robots RLHFRewardModel);
- heron:       a Bradley-Terry reward model on HERON's decision-tree labels (the task's ranking).
The reward models follow the classic-control code (stages/heron/reward_model.py): input
[observation, factors], a refit on the whole buffer every `rm_refit_every` decisions after
`rm_refit_start`, and a reward fixed when its transition is collected (not relabelled).
Evaluation: the deterministic policy of each seed on the same `eval_episodes` scenes (seeds
from traffic.eval_seed), scored by the designed reward and by each factor.

Writes data/heron/traffic/<task>-<method>/:
    policy.pt        PPO state (every seed), reward models (preference methods)
    curve.parquet    one row per finished training episode: seed, step, return (designed), return_train
    eval.parquet     one row per (seed, evaluation episode): return_true (designed), the factor sums
    levels.parquet   deciding-level histogram of the labels (preference methods)
"""

from __future__ import annotations

import sys

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.heron.params import TRAFFIC_METHODS, HeronParams

REFERENCES = "references"


def out_dir(task: str, method: str) -> str:
    return f"data/heron/traffic/{task}-{method}"


def make_env(p: HeronParams, task: str, num_envs: int, seconds: int | None = None):
    from hrlzoo.envs.traffic import TrafficBatched
    from stages.heron.params import traffic_sizes

    tr = p.traffic
    return TrafficBatched(num_envs, net=tr.net, seconds=seconds or traffic_sizes(p).seconds, delta_time=tr.delta_time,
                          yellow_time=tr.yellow_time, min_green=tr.min_green, factor_scale=tr.tasks[task].factor_scale)


def evaluate(env, act, groups: int, episodes: int, seed: int) -> list[dict]:
    """`groups` policies (`act(obs [N, d]) -> actions [N]`, world g belongs to group g) on the
    same `episodes` scenes each (world g is reset with `seed`, then continues its own stream):
    one row per (group, episode) with return_true (designed reward) and each factor's sum
    (unscaled). Runs whole episodes (every world's episode has the same length)."""
    import numpy as np
    import torch

    from hrlzoo.envs.traffic import FACTORS

    obs, _ = env.reset(seed=[seed] * groups)
    rows = []
    for ep in range(episodes):
        ret = np.zeros(groups)
        sums = np.zeros((groups, len(FACTORS)))
        while True:
            with torch.no_grad():
                action = act(obs)
            obs, _, term, trunc, _ = env.step(action)
            ret += env.designed.cpu().numpy()
            sums += env.factors_unscaled.cpu().numpy()
            if bool((term | trunc).all()):
                break
        rows += [{"group": g, "episode": ep, "return_true": float(ret[g]),
                  **{f"factor_{k}": float(sums[g, i]) for i, k in enumerate(FACTORS)}} for g in range(groups)]
    return rows


class RewardModels:
    """One Bradley-Terry reward model per seed (stages/heron/reward_model.py), fed and refitted
    as the classic-control loop does: `__call__(prev_obs [S, d], factors [S, n])` stores the
    inputs, refits every model on its whole buffer when a refit is due, and returns r_phi
    of each seed's new transition (the TrafficBatched reward_fn)."""

    def __init__(self, p: HeronParams, task: str, method: str, obs_dim: int, seeds, guard):
        import numpy as np
        import torch

        from hrlzoo.envs.traffic import DESIGNED_WEIGHTS
        from stages.heron.params import traffic_sizes
        from stages.heron.reward_model import make_reward_module

        tt, rmp, sz = p.traffic.tasks[task], p.reward_model, traffic_sizes(p)
        n = len(DESIGNED_WEIGHTS)
        signs = [int(np.sign(w)) for w in DESIGNED_WEIGHTS]
        self.in_dim = obs_dim + n if rmp.inputs == "obs_factors" else obs_dim
        self.modules = []
        for s in seeds:  # each seed's model drawn as the classic-control loop draws it (torch.manual_seed(seed))
            torch.manual_seed(int(s))
            self.modules.append(make_reward_module(
                self.in_dim, n, hidden=rmp.hidden, lr=tt.rm_lr, labels="hierarchical" if method == "heron" else "flat",
                signs=signs, ranking=tt.ranking, sigma_mult=tt.sigma_mult, normalize=rmp.normalize, batch=rmp.batch,
                batches_per_refit=rmp.batches_per_refit))
        self.rngs = [np.random.default_rng(np.random.SeedSequence([int(s), 7])) for s in seeds]
        cap = sz.total_steps + 1
        self.x = np.zeros((len(seeds), cap, self.in_dim), dtype=np.float32)
        self.z = np.zeros((len(seeds), cap, n), dtype=np.float64)
        self.inputs, self.sz, self.guard = rmp.inputs, sz, guard
        self.step = 0
        self.level_hist = np.zeros((len(seeds), n + 1), dtype=np.int64)
        self.refits, self.last = 0, [None] * len(seeds)

    def __call__(self, prev_obs, factors):
        import numpy as np
        import torch

        from stages.heron.reward_model import refit

        obs = prev_obs.cpu().numpy()
        z = factors.cpu().numpy()
        x = np.concatenate([obs, z], 1) if self.inputs == "obs_factors" else obs
        t = self.step
        self.x[:, t], self.z[:, t] = x, z
        if t > self.sz.rm_refit_start and t % self.sz.rm_refit_every == 0:
            for s, m in enumerate(self.modules):
                st = refit(m, self.x[s, : t + 1], self.z[s, : t + 1], self.rngs[s])
                self.level_hist[s] += st.level_hist
                if st.steps:
                    self.guard("rm_loss", st.loss, t)
                    self.last[s] = (st.loss, st.accuracy)
            self.refits += 1
        self.step += 1
        with torch.no_grad():
            r = torch.stack([m.net(torch.as_tensor(x[s], dtype=torch.float32)) for s, m in enumerate(self.modules)])
        return r.to(prev_obs.device)


def linear_reward(method: str, tt):
    """reward_fn of the linear methods: the designed reward (unscaled) or the equal-weight sum."""
    import numpy as np
    import torch

    from hrlzoo.envs.traffic import DESIGNED_WEIGHTS

    if method == "true_reward":
        return None  # TrafficBatched's own reward: the designed one
    w = torch.tensor(np.sign(DESIGNED_WEIGHTS) * np.asarray(tt.misweighted), dtype=torch.float64)
    return lambda prev_obs, factors: factors @ w.to(factors.device)


def body(ctx: Stage) -> None:
    import numpy as np
    import polars as pl
    import torch

    from hrlzoo.algos import ppo
    from hrlzoo.pipeline.artifacts import save_pt
    from stages.heron.params import traffic_sizes

    p: HeronParams = ctx.params
    task, method = ctx.args.task, ctx.args.method
    sz, tr, tt = traffic_sizes(p), p.traffic, p.traffic.tasks[task]
    seeds = list(p.seeds)
    out = ctx.out(out_dir(task, method))
    out.mkdir(parents=True)

    if method == REFERENCES:
        rows = []
        env = make_env(p, task, len(tr.fixed_cycles) + 1)
        try:
            ks = list(tr.fixed_cycles)
            count = {"i": 0}
            gen = np.random.default_rng(tr.eval_seed)

            def act(obs):  # world g < len(ks): switch every ks[g] decisions; the last world: uniform
                i = count["i"]
                count["i"] += 1
                n = env.single_action_space.n
                return torch.tensor([(i // k) % n for k in ks] + [int(gen.integers(n))])

            for r in evaluate(env, act, len(ks) + 1, sz.eval_episodes, tr.eval_seed):
                name = f"fixed_cycle_{ks[r['group']]}" if r["group"] < len(ks) else "random"
                rows.append({"method": name, **{k: v for k, v in r.items() if k != "group"}})
        finally:
            env.close()
        pl.DataFrame(rows).write_parquet(out / "eval.parquet")
        return

    env = make_env(p, task, len(seeds))
    rms = None
    if method in ("rlhf", "heron"):
        rms = RewardModels(p, task, method, env.single_observation_space.shape[0], seeds, ctx.guard)
        env.reward_fn = rms
    else:
        env.reward_fn = linear_reward(method, tt)
    pp = tr.ppo
    cfg = ppo.PPOConfig(num_envs=1, num_steps=sz.num_steps, total_timesteps=sz.total_steps,
                        learning_rate=pp.learning_rate, gamma=pp.gamma, gae_lambda=pp.gae_lambda,
                        minibatch_size=pp.minibatch_size, update_epochs=pp.update_epochs, clip_coef=pp.clip_coef,
                        ent_coef=pp.ent_coef, vf_coef=pp.vf_coef, max_grad_norm=pp.max_grad_norm,
                        hidden=tuple(pp.hidden), normalize_reward=pp.normalize_reward)
    iterations = -(-sz.total_steps // cfg.batch_size)
    bar = ctx.progress(iterations, f"heron_traffic {task} {method} ({len(seeds)} seeds in one batch)", unit="rollout")
    curve = []

    def on_update(it, res):
        for name in ("pg_loss", "v_loss"):
            ctx.guard(name, res.updates[-1][name], it)
        bar.update(1)

    try:
        # the designed return of each training episode, beside the return of the reward learnt from
        step_designed = []
        orig = env._step_worlds

        def stepping(action):
            out_ = orig(action)
            step_designed.append(env.designed.cpu().numpy().copy())
            return out_

        env._step_worlds = stepping
        res = ppo.train(cfg, env, seeds, on_update=on_update)
        bar.close()
        d = np.array(step_designed)  # [steps, S]: the designed reward of every training step
        ep_len = sz.seconds // tr.delta_time
        trained = {}
        for r in res.episodes:  # PPO's episode returns: of the reward it learnt from
            trained.setdefault(r["seed"], []).append(r["return"])
        for e in range(len(d) // ep_len):
            designed = d[e * ep_len:(e + 1) * ep_len].sum(0)
            for s, seed in enumerate(seeds):
                own = trained.get(seed, [])
                curve.append({"seed": seed, "episode": e + 1, "step": (e + 1) * ep_len,
                              "return_true": float(designed[s]),
                              "return_train": float(own[e]) if e < len(own) else None})
        env.reward_fn = None
        env._step_worlds = orig

        def act(obs):
            a, _, _ = res.agent.act(res.normalizer.obs(obs), deterministic=True)
            return res.agent.env_action(a).reshape(-1)

        rows = evaluate(env, act, len(seeds), sz.eval_episodes, tr.eval_seed)
    finally:
        env.close()
    ev = pl.DataFrame([{"seed": seeds[r["group"]], **{k: v for k, v in r.items() if k != "group"}} for r in rows])
    ev.write_parquet(out / "eval.parquet")
    pl.DataFrame(curve, schema={"seed": pl.Int64, "episode": pl.Int64, "step": pl.Int64, "return_true": pl.Float64,
                                "return_train": pl.Float64}).write_parquet(out / "curve.parquet")
    levels = []
    if rms is not None:
        names = [str(k) for k in range(rms.level_hist.shape[1] - 1)] + ["undecided"]
        levels = [{"seed": seed, "level": k, "pairs": int(n)} for s, seed in enumerate(seeds)
                  for k, n in zip(names, rms.level_hist[s])]
    pl.DataFrame(levels, schema={"seed": pl.Int64, "level": pl.Utf8, "pairs": pl.Int64}).write_parquet(
        out / "levels.parquet")
    save_pt({"ppo": res.agent.state_dict(), "normalizer": res.normalizer.state_dict(),
             "reward_models": None if rms is None else [m.net.state_dict() for m in rms.modules],
             "task": task, "method": method, "seeds": seeds,
             # timings are logged, not saved: the artifact's bytes must not depend on the machine's load
             "info": {k: v for k, v in res.info.items() if k not in ("wall_s", "env_steps_per_s")}},
            out / "policy.pt")
    ctx.log(f"{task} / {method}: {res.info.get('env_steps_per_s', 0):.0f} env steps/s")
    ctx.log(f"{task} / {method}: designed return " + ", ".join(
        f"seed {s} {ev.filter(pl.col('seed') == s)['return_true'].mean():.1f}" for s in seeds))


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("task", help="a traffic task of params/heron.yaml (traffic, traffic_x60)")
        ap.add_argument("method", choices=(*TRAFFIC_METHODS, REFERENCES), help="which reward PPO learns from")

    def validate(args, p):
        if args.task not in p.traffic.tasks:
            return f"params/heron.yaml: traffic.tasks: no task '{args.task}' (have {sorted(p.traffic.tasks)})"
        return None

    return run_stage("heron_traffic", "heron", HeronParams, body, argv, add_args=add_args, validate_args=validate,
                     outputs=lambda a, p: [out_dir(a.task, a.method)])


if __name__ == "__main__":
    sys.exit(main())
