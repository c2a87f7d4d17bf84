"""Stage legged_train: train one low-level method for every seed (one batched PPO network), then
run it through every test tunnel.

    python -m stages.legged.train <method>    # hierarchical | e2e | pms

- hierarchical: the policy follows the planner's waypoints (command = the current waypoint),
  official hierarchical rewards (local-goal +100, goal +100, exploration, stalling, collision);
- e2e: the policy sees only the far goal, official end-to-end rewards, the exploration rewards
  decaying linearly to 0 between `exploration_start` and `exploration_end` of training
  (official update_curriculum);
- pms: parameterised skills: the policy tracks the v_x, yaw-rate and height commands the planner's
  waypoints give (body.CrawlerEnv.pms_command); it has no roll or lateral command.

PPO is hrlzoo.algos.ppo (the official PPO_Args where hrlzoo's PPO has them, params.py; the
clipped value loss as rsl_rl's: the max of the clipped and unclipped errors). Every
method trains on the training tunnels the planner solved and is tested, deterministic (the
Gaussian's mean), on every test tunnel, episodes ending at the goal or the time limit.
Writes data/legged/runs/<method>/: curve.parquet (seed, iteration, step, success and return of
the training episodes finished in that rollout), eval.parquet (one row per seed and test tunnel),
traj.npz (seed 0's poses in the rendered tunnels), policy.pt.
"""

from __future__ import annotations

import sys

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.legged import common
from stages.legged.params import METHODS, LeggedParams, sizes
from stages.legged.tunnels import KINDS


def ppo_config(p: LeggedParams):
    from hrlzoo.algos.ppo import PPOConfig

    s, q = sizes(p), p.ppo
    return PPOConfig(num_envs=s.num_envs, num_steps=q.num_steps, total_timesteps=s.total_steps,
                     learning_rate=q.learning_rate, gamma=q.gamma, gae_lambda=q.gae_lambda,
                     minibatch_size=max(1, s.num_envs * q.num_steps // q.minibatches), update_epochs=q.update_epochs,
                     clip_coef=q.clip_coef, clip_range_vf=q.clip_range_vf, pessimistic_vf=True,
                     ent_coef=q.ent_coef, vf_coef=q.vf_coef,
                     max_grad_norm=q.max_grad_norm, hidden=tuple(q.hidden), activation=q.activation,
                     log_std_init=q.log_std_init, normalize_obs=q.normalize_obs)


def explore_scale(p: LeggedParams, frac: float) -> float:
    """Official update_curriculum: full scale until exploration_start, then linear to 0 at exploration_end."""
    if frac <= p.exploration_start:
        return 1.0
    if p.exploration_end <= p.exploration_start:
        return 0.0
    return float(np.clip(1.0 - (frac - p.exploration_start) / (p.exploration_end - p.exploration_start), 0.0, 1.0))


class Counting:
    """Counts finished episodes and successes per world between two reads (the training curve)."""

    def __init__(self, env):
        import torch

        self.env = env
        self.done = torch.zeros(env.num_envs)
        self.succ = torch.zeros(env.num_envs)
        self.ret = torch.zeros(env.num_envs, dtype=torch.float64)
        self.run = torch.zeros(env.num_envs, dtype=torch.float64)
        self.reached = torch.zeros(env.num_envs, dtype=torch.bool)
        self._step = env.step
        env.step = self.step

    def step(self, action):
        obs, r, te, tr, info = self._step(action)
        self.run += r.double()
        self.reached |= self.env.last_success
        d = te | tr
        self.done += d.float()
        self.succ += (d & self.reached).float()
        self.ret += self.run * d
        self.run[d] = 0.0
        self.reached[d] = False
        return obs, r, te, tr, info

    def read(self, S: int):
        n = self.done.reshape(S, -1).sum(1)
        s = self.succ.reshape(S, -1).sum(1)
        ret = self.ret.reshape(S, -1).sum(1)
        self.done.zero_()
        self.succ.zero_()
        self.ret.zero_()
        return n, s, ret


def evaluate(p: LeggedParams, method: str, agent, normalizer, bank: dict):
    """Every seed through every test tunnel: rows of eval.parquet and seed 0's poses [M, T, 6]."""
    import torch

    from hrlzoo.algos.ppo import Normalizer
    from stages.legged.body import pose_log

    S, M = agent.S, len(bank["kind"])
    env = common.make_env(p, bank, method, S * M, tunnels=np.tile(np.arange(M), S), autoreset=False,
                          terminate_at_goal=True)
    norm = Normalizer(S, M, env.single_observation_space.shape, agent.cfg, agent.device)
    norm.obs_rms, norm.training = normalizer.obs_rms, False
    obs, _ = env.reset(seed=[10_000 + k for _ in range(S) for k in range(M)])
    T = int(env.limit.max())
    live = torch.ones(S * M, dtype=torch.bool)
    success = torch.zeros(S * M, dtype=torch.bool)
    steps = torch.zeros(S * M, dtype=torch.long)
    hits = torch.zeros(S * M, dtype=torch.long)
    poses = torch.zeros(M, T + 1, 6)
    poses[:, 0] = pose_log(env)[:M]
    with torch.no_grad():
        for t in range(T):
            a, _, _ = agent.act(norm.obs(obs), deterministic=True)
            obs, _, te, tr, _ = env.step(agent.env_action(a).reshape(S * M, -1))
            hits += (env.collided & live).long()
            steps += live.long()
            success |= env.last_success & live
            live &= ~(te | tr)
            poses[:, t + 1] = torch.where(live[:M, None] | (te | tr)[:M, None], pose_log(env)[:M], poses[:, t])
            if not bool(live.any()):
                break
    rows = []
    for s in range(S):
        for k in range(M):
            i = s * M + k
            rows.append({"method": method, "seed": int(p.seeds[s]), "tunnel": k, "kind": KINDS[int(bank["kind"][k])],
                         "distance": float(bank["distance"][k]), "path_found": bool(bank["path_ok"][k]),
                         "success": bool(success[i]), "steps": int(steps[i]), "collisions": int(hits[i])})
    return rows, poses.numpy(), steps[:M].numpy()


def body(ctx: Stage) -> None:
    """Train one method for every seed; run it through every test tunnel."""
    import polars as pl
    import torch

    from hrlzoo.algos.ppo import train

    p: LeggedParams = ctx.params
    s, method = sizes(p), ctx.args.method
    S = len(p.seeds)
    cfg = ppo_config(p)
    bank = common.load_bank("train")
    env = common.make_env(p, bank, method, S * s.num_envs)
    counting = Counting(env)
    iterations = -(-s.total_steps // cfg.batch_size)
    rows = []

    def on_update(it, res):
        u = res.updates[-1]
        ctx.guard(f"{method} ppo loss", u["pg_loss"] + u["v_loss"], it)
        n, k, ret = counting.read(S)
        for j, seed in enumerate(p.seeds):
            rows.append({"method": method, "seed": int(seed), "iteration": it, "step": int(u["step"]),
                         "episodes": int(n[j]), "success": float(k[j] / n[j]) if n[j] > 0 else None,
                         "return": float(ret[j] / n[j]) if n[j] > 0 else None, "explore_scale": env.explore_scale})
        if method == "e2e":
            env.explore_scale = explore_scale(p, it / iterations)
        bar.update(1)

    with ctx.progress(iterations, f"{method} ppo {S} seeds", unit="update") as bar:
        res = train(cfg, env, p.seeds, on_update=on_update)
    ctx.log(f"{method}: {res.info['env_steps']} env steps in {res.info['wall_s']:.1f}s "
            f"({res.info['env_steps_per_s']:.0f} env steps/s, all seeds)")
    evals, poses, lengths = evaluate(p, method, res.agent, res.normalizer, common.load_bank("test"))
    out = ctx.out(common.RUN_ROOT / method)
    out.mkdir(parents=True)
    pl.DataFrame(rows).write_parquet(out / "curve.parquet")
    ev = pl.DataFrame(evals)
    ev.write_parquet(out / "eval.parquet")
    np.savez_compressed(out / "traj.npz", poses=poses, lengths=lengths)
    torch.save({"state_dict": res.agent.state_dict(), "normalizer": res.normalizer.state_dict(),
                "seeds": list(p.seeds)}, out / "policy.pt")
    ctx.log(f"{method}: test success {ev['success'].mean():.3f} "
            + " ".join(f"{k} {ev.filter(pl.col('kind') == k)['success'].mean():.2f}" for k in p.kinds))


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("method", choices=METHODS)

    def validate_args(a, p):
        return None if a.method in p.methods else f"method '{a.method}': not in params methods"

    return run_stage("legged_train", "legged", LeggedParams, body, argv, add_args=add_args,
                     validate_args=validate_args, outputs=lambda a, p: [str(common.RUN_ROOT / a.method)])


if __name__ == "__main__":
    sys.exit(main())
