"""Stage hamnet_train: train one method with PPO (hrlzoo.algos.ppo, HAMNet's settings), every seed
in one batched network, then evaluate it on the three splits.

    python -m stages.hamnet.train <method>     # hamnet | monolithic | hamnet_scratch

- hamnet: the modular network (stages/hamnet/nets.py HAMNet) on the frozen pretrained contact
  encoder's tokens (seed s uses encoder member s; HAMNet computes UNICORN's embeddings in its env
  wrapper and keeps them out of the observation normaliser, `use_unicorn`, `constlist`);
- monolithic: the baseline MLP actor-critic, same inputs (same encoder tokens and pooling), the
  same number of trainable parameters as HAMNet's modulation network + module sets;
- hamnet_scratch: HAMNet with the encoder in the policy, trained by PPO from random weights.

Evaluation: the deterministic policy (Gaussian mean), `eval_episodes` episodes per seed on each
split (train layouts and shapes, held-out combinations, held-out shapes), episode k of every
seed from world seed eval_seed + split offset + k. Writes data/hamnet/runs/<method>/:
policy.pt, curve.parquet (seed, step, success, return of the training episodes between curve
points), eval.parquet (one row per evaluation episode), usage.npz (HAMNet: per evaluation
episode its mean module probabilities [params, M]), frames.pt (seed 0's first evaluation
episodes, as snapshots for the report's PNG frames).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from hrlzoo.pipeline.stage import Stage, run_stage
from stages.hamnet.params import METHODS, SPLITS, HAMNetParams, sizes

RUN_ROOT = Path("data/hamnet/runs")
ENCODER = Path("data/hamnet/encoder/encoder.pt")
STATE_DIMS = 24   # the observation's state part (normalised); clouds and tokens stay raw


class EncodedEnv:
    """A PushEnv of S * N worlds (world s * N + k belongs to seed s) whose observations get the
    frozen encoder's tokens appended (encoder None: passed through); it also counts successes
    (termination = success) per seed and keeps each world's episode category."""

    def __init__(self, env, S: int, encoder=None):
        from gymnasium import spaces

        from hrlzoo.envs.pushing import obs_layout

        self.env, self.S, self.encoder = env, S, encoder
        self.num_envs = env.num_envs
        self.N = env.num_envs // S
        self.single_action_space = env.single_action_space
        self.layout = dict(obs_layout(env.cfg))
        d = env.single_observation_space.shape[0]
        if encoder is not None:
            n_tok = 1 + (env.cfg.n_obj_points + env.cfg.n_env_points) // encoder.patch
            self.layout["tokens"] = slice(d, d + n_tok * encoder.d)
            d += n_tok * encoder.d
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (d,), np.float32)
        self.successes = np.zeros(S)
        self.episodes = np.zeros(S)

    def _enc(self, obs):
        import torch

        if self.encoder is None:
            return obs
        L = self.layout
        o = obs.reshape(self.S, self.N, -1)
        with torch.no_grad():
            z = self.encoder(o[..., L["object_cloud"]].unflatten(-1, (-1, 2)),
                             o[..., L["env_cloud"]].unflatten(-1, (-1, 2)), o[..., L["hand_state"]])
        return torch.cat([obs, z.reshape(self.num_envs, -1)], -1)

    def reset(self, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._enc(obs), info

    def step(self, action):
        self.categories = self.env.categories()   # the episodes this step belongs to
        obs, r, te, tr, info = self.env.step(action)
        done = (te | tr).numpy()
        if done.any():
            info = dict(info, final_obs=self._enc(info["final_obs"]))
            self.successes += te.numpy().reshape(self.S, self.N).sum(1)
            self.episodes += done.reshape(self.S, self.N).sum(1)
            return self._enc(obs), r, te, tr, info
        obs = self._enc(obs)
        return obs, r, te, tr, dict(info, final_obs=obs)

    def close(self):
        self.env.close()


def load_encoder(p: HAMNetParams, path: Path = ENCODER):
    import torch

    from stages.hamnet.nets import PatchEncoder

    e = p.encoder
    ck = torch.load(path, weights_only=False)
    if ck["seeds"] != list(p.seeds) or ck["config"] != {"patch": e.patch, "dim": e.dim, "layers": e.layers, "heads": e.heads}:
        raise ValueError(f"{path}: pretrained for seeds {ck['seeds']} / {ck['config']}, params ask otherwise: rerun hamnet_pretrain")
    enc = PatchEncoder(len(p.seeds), e.patch, e.dim, e.layers, e.heads)
    enc.load_state_dict(ck["encoder"])
    enc.requires_grad_(False)
    enc.eval()
    return enc


def make_net_fn(p: HAMNetParams, method: str, layout: dict):
    """make_net(obs_dim, out_dim, generators) for hrlzoo.algos.ppo.train."""
    from stages.hamnet import nets

    pp, S = p.policy, len(p.seeds)
    enc = {"patch": p.encoder.patch, "dim": p.encoder.dim, "layers": p.encoder.layers, "heads": p.encoder.heads}

    def make(obs_dim, out_dim, gens):
        inputs = lambda: nets.Inputs(S, layout, enc, pp.emb, pp.heads, pp.proj, encoded=method != "hamnet_scratch",
                                     gens=gens)
        if method in ("hamnet", "hamnet_scratch"):
            return nets.HAMNet(inputs(), S, out_dim, pp.hidden, pp.modules, pp.wnet, pp.gate_init, gens)
        ham = nets.HAMNet(inputs(), S, out_dim, pp.hidden, pp.modules, pp.wnet, pp.gate_init)
        inp = inputs()
        target = nets.count(ham, S) - nets.count(ham.inputs, S)
        w = nets.monolithic_width(inp.ctx_dim + inp.base_dim, out_dim, len(pp.hidden), target)
        return nets.Monolithic(inp, S, out_dim, [w] * len(pp.hidden), gens)

    return make


def ppo_config(p: HAMNetParams):
    from hrlzoo.algos.ppo import PPOConfig

    sz, q = sizes(p), p.ppo
    return PPOConfig(num_envs=sz.worlds, num_steps=sz.rollout, total_timesteps=sz.total_steps, learning_rate=q.lr,
                     gamma=q.gamma, gae_lambda=q.gae_lambda, minibatch_size=sz.worlds * sz.rollout,
                     update_epochs=q.epochs, clip_coef=q.clip, vf_coef=q.vf_coef, pg_coef=q.pg_coef,
                     bound_coef=q.bound_coef, kl_target=q.kl_target, max_grad_norm=q.max_grad_norm,
                     log_std_init=p.policy.log_std_init, normalize_obs=True, normalize_obs_upto=STATE_DIMS,
                     normalize_reward=True)


def split_offset(split: str) -> int:
    return 1_000_000 * SPLITS.index(split)


def evaluate(ctx: Stage, p: HAMNetParams, agent, norm, method: str, encoder):
    """Every seed's deterministic policy on every split; rows, module-usage records, frames."""
    import torch

    from hrlzoo.algos.ppo import Normalizer
    from hrlzoo.envs.pushing import PushEnv

    sz, S = sizes(p), len(p.seeds)
    n = min(sz.eval_episodes, 16)
    per_world = math.ceil(sz.eval_episodes / n)
    rows, usage, frames = [], {"probs": [], "seed": [], "split": [], "geometry": [], "floor": []}, []
    for split in SPLITS:
        env = EncodedEnv(PushEnv(S * n, p.env.config(), split), S, encoder)
        ev = Normalizer(S, n, env.single_observation_space.shape, agent.cfg)
        ev.obs_rms, ev.training = norm.obs_rms, False
        obs, _ = env.reset(seed=[p.eval_seed + split_offset(split) + k for _ in range(S) for k in range(n)])
        count = np.zeros((S, n), int)
        ret = np.zeros((S, n))
        length = np.zeros((S, n), int)
        psum = None
        shots = {k: [] for k in range(min(sz.frames, n))}
        while (count < per_world).any():
            o = ev.obs(obs)
            with torch.no_grad():
                a, _, _ = agent.act(o, deterministic=True)
                if hasattr(agent.net, "module_probs"):
                    pr = agent.net.module_probs(o).numpy()              # [S, n, P, M]
                    psum = pr if psum is None else psum + pr
            for k in shots:
                if count[0, k] == 0:
                    shots[k].append(env.env.snapshot(k))
            obs, r, te, tr, _ = env.step(agent.env_action(a).reshape(S * n, -1))
            live = count < per_world
            ret += r.numpy().reshape(S, n) * live
            length += live
            done = (te | tr).numpy().reshape(S, n) & live
            succ = te.numpy().reshape(S, n)
            for s, k in zip(*np.nonzero(done)):
                g, f, sh = env.categories[s * n + k]
                rows.append({"method": method, "seed": int(p.seeds[s]), "split": split, "geometry": g, "floor": f,
                             "shape": sh, "success": bool(succ[s, k]), "return": float(ret[s, k]),
                             "length": int(length[s, k])})
                if psum is not None:
                    usage["probs"].append(psum[s, k] / length[s, k])
                    usage["seed"].append(int(p.seeds[s]))
                    usage["split"].append(split)
                    usage["geometry"].append(g)
                    usage["floor"].append(f)
                    psum[s, k] = 0.0
                if s == 0 and k in shots and count[0, k] == 0:
                    frames.append({"split": split, "success": bool(succ[s, k]), "snapshots": shots[k]})
                ret[s, k], length[s, k] = 0.0, 0
            count += done
        rate = np.mean([r_["success"] for r_ in rows if r_["split"] == split])
        ctx.log(f"{method} {split}: success {rate:.3f}")
    return rows, usage, frames


def body(ctx: Stage) -> None:
    import polars as pl
    import torch

    from hrlzoo.algos import ppo
    from hrlzoo.envs.pushing import PushEnv

    p: HAMNetParams = ctx.params
    method, sz, S = ctx.args.method, sizes(p), len(p.seeds)
    out = ctx.out(RUN_ROOT / method)
    out.mkdir(parents=True)
    torch.manual_seed(0)
    encoder = None if method == "hamnet_scratch" else load_encoder(p)
    env = EncodedEnv(PushEnv(S * sz.worlds, p.env.config(), "train"), S, encoder)
    cfg = ppo_config(p)
    iterations = -(-sz.total_steps // cfg.batch_size)
    every = max(1, iterations // sz.curve_points)
    curve, last = [], {"succ": np.zeros(S), "eps": np.zeros(S), "ret": {}}
    bar = ctx.progress(iterations, f"{method} ({S} seeds in one batch)", unit="rollout")

    def on_update(it, res):
        u = res.updates[-1]
        for name in ("pg_loss", "v_loss"):
            ctx.guard(f"{method} {name}", u[name], it)
        bar.update(1)
        if it % every == 0 or it == iterations:
            eps = env.episodes - last["eps"]
            succ = env.successes - last["succ"]
            for s, seed in enumerate(p.seeds):
                rets = [e["return"] for e in res.episodes[last.get("n", 0):] if e["seed"] == seed]
                curve.append({"method": method, "seed": int(seed), "step": int(u["step"]),
                              "success": float(succ[s] / eps[s]) if eps[s] else float("nan"),
                              "episodes": int(eps[s]), "return": float(np.mean(rets)) if rets else float("nan"),
                              "lr_scale": float(res.agent.lr_scale[s])})
            last["eps"], last["succ"], last["n"] = env.episodes.copy(), env.successes.copy(), len(res.episodes)

    res = ppo.train(cfg, env, p.seeds, on_update=on_update, make_net=make_net_fn(p, method, env.layout))
    bar.close()
    ctx.log(f"{method}: {res.info['env_steps']} env steps in {res.info['wall_s']:.0f}s "
            f"({res.info['env_steps_per_s']:.0f}/s); last curve success "
            f"{np.nanmean([c['success'] for c in curve[-S:]]):.3f}")
    rows, usage, frames = evaluate(ctx, p, res.agent, res.normalizer, method, encoder)
    torch.save({"agent": res.agent.state_dict(), "normalizer": res.normalizer.state_dict(),
                "layout": {k: (v.start, v.stop) for k, v in env.layout.items()}}, out / "policy.pt")
    pl.DataFrame(curve).write_parquet(out / "curve.parquet")
    pl.DataFrame(rows).write_parquet(out / "eval.parquet")
    if usage["probs"]:
        np.savez(out / "usage.npz", probs=np.stack(usage["probs"]).astype(np.float32),
                 **{k: np.array(v) for k, v in usage.items() if k != "probs"})
    torch.save(frames, out / "frames.pt")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("method", choices=METHODS)

    def validate_args(a, p):
        return None if a.method in p.methods else f"method '{a.method}': not in params methods"

    return run_stage("hamnet_train", "hamnet", HAMNetParams, body, argv, add_args=add_args,
                     validate_args=validate_args, outputs=lambda a, p: [str(RUN_ROOT / a.method)])


if __name__ == "__main__":
    sys.exit(main())
