"""PPO training throughput: our PPO on the torch-batched Pendulum twin beside Stable-Baselines3's
PPO on gymnasium's Pendulum-v1 and TorchRL's PPO on the same batched env, in one run, one
thread each, printed as env steps/s and ratios.

    python benchmarks/rl_speed.py [--iterations 3] [--seeds 64] [--threads 1]

What runs (each for `--iterations` whole rollouts + updates, after one warm-up iteration that
is not timed; env steps/s = env steps of the timed iterations / their wall time, rollout and
update included):

A. rl-baselines3-zoo's PPO hyperparameters for Pendulum-v1 (hyperparams/ppo.yml: n_envs 4,
   n_steps 1024, batch 64, 10 epochs, gamma 0.9, GAE 0.95, lr 1e-3, clip 0.2, no entropy;
   64x64 tanh MLPs; the zoo's gSDE is off on both sides, our PPO has no gSDE):
   - SB3 `PPO.learn` on `make_vec_env("Pendulum-v1", 4)` (DummyVecEnv);
   - ours, one seed, on 4 gymnasium Pendulum-v1 behind `GymnasiumBatched` (the algorithm alone);
   - ours, one seed, on `TorchPendulum(4)`;
   - ours, `--seeds` seeds as one batched network, each with SB3's per-seed settings, on
     `TorchPendulum(4 x seeds)`: every seed does exactly the work SB3's one run does.
B. A large-batch configuration, the same for both libraries: 1024 worlds x 32 steps per
   rollout, 8 epochs of minibatches of 4096, lr 3e-3 (else as A), on `TorchPendulum(1024)`,
   one agent (it learns Pendulum in about 1M env steps: benchmarks/rl_quality.py):
   - ours;
   - TorchRL 0.14: `Collector` + `GAE` + `ClipPPOLoss` + `ReplayBuffer(LazyTensorStorage,
     SamplerWithoutReplacement)`, the layout of TorchRL's `sota-implementations/ppo`
     recipe, on our env wrapped as a TorchRL `EnvBase` (GAE computed once per rollout, as ours).

The env is the same twin in A (ours) and B; `tests/test_batched_envs.py` checks it against
gymnasium's Pendulum-v1 step by step (1e-5). The last line compares seed 0's training-episode
returns across A's three runs of ours: on gymnasium's env, on the twin alone and on the twin
batched with the other seeds. Each seed does the same arithmetic as it would alone
(tests/test_ppo.py: same weights and episode returns after a short run), but a batched matmul
rounds differently in the last bits, and over thousands of updates RL amplifies that into a
different run: measured on 2026-12-07, seed 0's training episodes on the twin equal
gymnasium's to 8e-6, while batched with 63 others they drift apart by up to 118 in one
episode's return (benchmarks/README.md). Whether training on the twin gives the final returns
that training on gymnasium's env gives is therefore judged statistically over 5 seeds, by
rl_quality.py's `ppo_pendulum_twin_equivalent`. Final returns against SB3 are rl_quality.py's; B trains a
different (large-batch) configuration.
"""

from __future__ import annotations

import argparse
import time

ZOO = dict(num_envs=4, num_steps=1024, minibatch_size=64, update_epochs=10, gamma=0.9, gae_lambda=0.95,
           learning_rate=1e-3, clip_coef=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, hidden=(64, 64))
# the large-batch configuration: chosen in pilots (1M env steps, one seed, final evaluation
# return): 4 epochs at lr 1e-3 reached -643, 10 epochs of 1024-minibatches at 256 x 64 -163 but
# at a third of the speed, this one -211; benchmarks/rl_quality.py's ppo_pendulum_large trains it
LARGE = dict(num_envs=1024, num_steps=32, minibatch_size=4096, update_epochs=8, gamma=0.9, gae_lambda=0.95,
             learning_rate=3e-3, clip_coef=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5, hidden=(64, 64))


def timed_ours(cfg_kw: dict, env, seeds: list[int], iterations: int) -> tuple[float, list[float]]:
    """Env steps/s of our `ppo.train` over `iterations` iterations after the first, and the
    training-episode returns of the first seed (for the batched-vs-alone comparison)."""
    from hrlzoo.algos.ppo import PPOConfig, train

    cfg = PPOConfig(**cfg_kw, total_timesteps=(iterations + 1) * cfg_kw["num_envs"] * cfg_kw["num_steps"])
    marks = []
    res = train(cfg, env, seeds, on_update=lambda it, r: marks.append((time.perf_counter(), r.updates[-1]["step"])))
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return (s1 - s0) * len(seeds) / (t1 - t0), [e["return"] for e in res.episodes if e["seed"] == seeds[0]]


def timed_sb3(iterations: int) -> float:
    import numpy as np
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class Marks(BaseCallback):
        def __init__(self):
            super().__init__()
            self.marks = []

        def _on_rollout_start(self):  # after the previous update
            self.marks.append((time.perf_counter(), self.num_timesteps))

        def _on_step(self):
            return True

    z = ZOO
    env = make_vec_env("Pendulum-v1", n_envs=z["num_envs"], seed=0)
    model = PPO("MlpPolicy", env, n_steps=z["num_steps"], batch_size=z["minibatch_size"], n_epochs=z["update_epochs"],
                gamma=z["gamma"], gae_lambda=z["gae_lambda"], learning_rate=z["learning_rate"], clip_range=z["clip_coef"],
                ent_coef=z["ent_coef"], vf_coef=z["vf_coef"], max_grad_norm=z["max_grad_norm"], use_sde=False,
                device="cpu", seed=0, verbose=0)
    cb = Marks()
    model.learn(total_timesteps=(iterations + 1) * z["num_envs"] * z["num_steps"] + 1, callback=cb)
    cb.marks.append((time.perf_counter(), model.num_timesteps))
    (t0, s0), (t1, s1) = cb.marks[1], cb.marks[-1]
    return (s1 - s0) / (t1 - t0) if np.isfinite(t1) else float("nan")


def make_torchrl_env(benv):
    """Our batched env as a TorchRL EnvBase (batch_size [N]); partial resets through `_reset`."""
    import torch
    from tensordict import TensorDict
    from torchrl.data import Bounded, Composite, Unbounded
    from torchrl.envs import EnvBase

    class BatchedAsTorchRL(EnvBase):
        def __init__(self):
            n = benv.num_envs
            super().__init__(batch_size=torch.Size([n]), device="cpu")
            self.benv = benv
            space = benv.single_action_space
            self.observation_spec = Composite(observation=Unbounded(shape=(n, benv.obs_dim)), shape=(n,))
            self.action_spec = Bounded(low=torch.as_tensor(space.low).expand(n, -1),
                                       high=torch.as_tensor(space.high).expand(n, -1), shape=(n, space.shape[0]))
            self.reward_spec = Unbounded(shape=(n, 1))

        def _flags(self, term, trunc):
            return {"done": (term | trunc).unsqueeze(-1), "terminated": term.unsqueeze(-1),
                    "truncated": trunc.unsqueeze(-1)}

        def _reset(self, td=None, **kw):
            n = benv.num_envs
            if td is not None and "_reset" in td.keys():
                idx = td["_reset"].reshape(n).nonzero().flatten().tolist()
            else:
                idx = list(range(n))
            benv._reset_worlds(idx)
            benv.elapsed[idx] = 0
            benv._needs_reset = False
            z = torch.zeros(n, dtype=torch.bool)
            return TensorDict({"observation": benv._observe(), **self._flags(z, z)}, batch_size=self.batch_size)

        def _step(self, td):
            reward, term = benv._step_worlds(td["action"])
            benv.elapsed += 1
            trunc = benv.elapsed >= benv.max_episode_steps
            return TensorDict({"observation": benv._observe(), "reward": reward.float().unsqueeze(-1),
                               **self._flags(term, trunc)}, batch_size=self.batch_size)

        def _set_seed(self, seed):
            benv.seed_worlds(seed)
            return seed

    return BatchedAsTorchRL()


def timed_torchrl(iterations: int) -> float:
    import torch
    from tensordict.nn import TensorDictModule
    from torch import nn
    from torchrl.collectors import Collector
    from torchrl.data import LazyTensorStorage, ReplayBuffer, SamplerWithoutReplacement
    from torchrl.modules import MLP, IndependentNormal, ProbabilisticActor, ValueOperator
    from torchrl.objectives import ClipPPOLoss
    from torchrl.objectives.value import GAE

    from hrlzoo.envs.pendulum import TorchPendulum

    c = LARGE
    env = make_torchrl_env(TorchPendulum(c["num_envs"], autoreset=False))
    env.set_seed(0)
    torch.manual_seed(0)

    class Head(nn.Module):  # Gaussian with a state-independent log std, as ours and SB3's
        def __init__(self):
            super().__init__()
            self.mean = MLP(in_features=3, out_features=1, num_cells=list(c["hidden"]), activation_class=nn.Tanh)
            self.log_std = nn.Parameter(torch.zeros(1))

        def forward(self, obs):
            loc = self.mean(obs)
            return loc, self.log_std.exp().expand_as(loc)

    actor = ProbabilisticActor(TensorDictModule(Head(), in_keys=["observation"], out_keys=["loc", "scale"]),
                               in_keys=["loc", "scale"], distribution_class=IndependentNormal,
                               spec=env.action_spec, return_log_prob=True, safe=False)
    critic = ValueOperator(MLP(in_features=3, out_features=1, num_cells=list(c["hidden"]), activation_class=nn.Tanh),
                           in_keys=["observation"])
    frames = c["num_envs"] * c["num_steps"]
    collector = Collector(env, actor, frames_per_batch=frames, total_frames=(iterations + 1) * frames, device="cpu")
    adv = GAE(gamma=c["gamma"], lmbda=c["gae_lambda"], value_network=critic, average_gae=False)
    loss_fn = ClipPPOLoss(actor, critic, clip_epsilon=c["clip_coef"], entropy_bonus=False, critic_coeff=c["vf_coef"],
                          loss_critic_type="l2", normalize_advantage=True)
    opt = torch.optim.Adam(loss_fn.parameters(), lr=c["learning_rate"], eps=1e-5)
    rb = ReplayBuffer(storage=LazyTensorStorage(frames), sampler=SamplerWithoutReplacement(),
                      batch_size=c["minibatch_size"])
    marks = []
    for data in collector:
        with torch.no_grad():
            data = adv(data)
        rb.extend(data.reshape(-1))
        for _ in range(c["update_epochs"]):
            for _ in range(frames // c["minibatch_size"]):
                out = loss_fn(rb.sample())
                loss = out["loss_objective"] + out["loss_critic"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(loss_fn.parameters(), c["max_grad_norm"])
                opt.step()
        collector.update_policy_weights_()
        marks.append(time.perf_counter())
    collector.shutdown()
    return (len(marks) - 1) * frames / (marks[-1] - marks[0])


def main() -> None:
    import torch

    from hrlzoo.envs.batched import GymnasiumBatched
    from hrlzoo.envs.pendulum import TorchPendulum

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=3, help="timed iterations per run (after one warm-up)")
    ap.add_argument("--seeds", type=int, default=64, help="seeds trained as one network in A")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    it = a.iterations
    rows = []
    sb3 = timed_sb3(it)
    rows.append(("A  SB3 PPO, gymnasium Pendulum-v1, 4 envs", sb3))
    gym_sps, gym_eps = timed_ours(ZOO, GymnasiumBatched("Pendulum-v1", 4), [0], it)
    rows.append(("A  ours, 1 seed, gymnasium Pendulum-v1 x 4 (GymnasiumBatched)", gym_sps))
    solo_sps, solo_eps = timed_ours(ZOO, TorchPendulum(4), [0], it)
    rows.append(("A  ours, 1 seed, TorchPendulum(4)", solo_sps))
    many_sps, many_eps = timed_ours(ZOO, TorchPendulum(4 * a.seeds), list(range(a.seeds)), it)
    rows.append((f"A  ours, {a.seeds} seeds in one network, TorchPendulum({4 * a.seeds})", many_sps))
    ours_large, _ = timed_ours(LARGE, TorchPendulum(LARGE["num_envs"]), [0], it)
    rows.append(("B  ours, 1 agent, TorchPendulum(1024), large batch", ours_large))
    try:
        trl = timed_torchrl(it)
    except ImportError as e:
        trl = None
        print(f"(TorchRL skipped: {e}; `make bench` installs requirements-bench.lock)")
    if trl is not None:
        rows.append(("B  TorchRL PPO, same env and settings", trl))
    print(f"PPO env steps/s, {it} timed iterations per run after one warm-up, {a.threads} thread(s), "
          f"torch {torch.__version__}")
    for name, v in rows:
        print(f"{name:<66s} {v:>12,.0f}   x{v / sb3:7.1f} SB3")
    if trl is not None:
        print(f"{'ratio ours / TorchRL (B)':<66s} {ours_large / trl:12.2f}")
    # the learning curve of seed 0: on gymnasium, on the twin alone, and batched with the others
    diff = lambda x, y: max(abs(u - v) for u, v in zip(x, y))
    print(f"seed 0's {len(solo_eps)} training-episode returns (mean {sum(solo_eps) / len(solo_eps):.1f}): "
          f"max |twin alone - gymnasium| = {diff(solo_eps, gym_eps):.2e}, "
          f"max |batched with {a.seeds - 1} others - alone| = {diff(many_eps, solo_eps):.2e}")


if __name__ == "__main__":
    main()
