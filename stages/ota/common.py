"""What the OTA stages share: artifact paths, the dataset, the agent config, the training loop.

Every training stage trains all seeds of params at once: each network carries a leading seeds
dimension (hrlzoo.nets.ensemble), each seed draws its own minibatches from its own generator,
and Adam is elementwise, so the seeds are independent runs computed together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from hrlzoo.envs.pointmaze import dataset_name
from stages.ota.params import OTAParams, checkpoints, sizes

# Salts that give every role its own random stream per seed. The low value and OTA's high
# value share one, so that n = 1 reproduces HIQL's value bit for bit.
SALT = {"value": 0, "low": 1, "high": 2, "flat": 3, "eval": 4, "diag": 5}


# ----------------------------------------------------------------------------- paths
# One folder per stage and maze; inside it, one file per run:
#   datasets/<maze>/pointmaze-<maze>-<type>-v0[-val].npz     values/<maze>-<kind>/<name>.pt
#   low/<maze>/low.pt     high/<maze>/<hiql|ota_n<k>>.pt     flat/<maze>/<gcbc|gcivl>.pt
def dataset_dir(maze: str) -> str:
    return f"data/ota/datasets/{maze}"


def dataset_file(maze: str, kind: str) -> Path:
    return Path(dataset_dir(maze)) / f"{dataset_name(maze, kind)}.npz"


def value_dir(maze: str, kind: str) -> str:
    """kind: low (HIQL's V^l) | gcivl | high (OTA's V^h, one file per abstraction factor)."""
    return f"data/ota/values/{maze}-{kind}"


def value_file(maze: str, name: str) -> Path:
    """name: low | gcivl | high_n<k>."""
    kind = "high" if name.startswith("high_n") else name
    return Path(value_dir(maze, kind)) / f"{name}.pt"


def low_dir(maze: str) -> str:
    return f"data/ota/low/{maze}"


def high_dir(maze: str) -> str:
    return f"data/ota/high/{maze}"


def flat_dir(maze: str) -> str:
    return f"data/ota/flat/{maze}"


def eval_dir(maze: str) -> str:
    return f"data/ota/eval/{maze}"


# ----------------------------------------------------------------------------- data and config
def load_data(p: OTAParams, maze: str):
    """The training split of the generated dataset, read through ogbench's own loader."""
    from hrlzoo.envs.pointmaze import load
    from hrlzoo.gcrl.dataset import GCData

    train, _ = load(dataset_file(maze, p.dataset), maze, p.dataset)
    return GCData.from_ogbench(train)


def hiql_config(p: OTAParams, maze: str, obs_dim: int = 2, action_dim: int = 2):
    from stages.ota.hiql import HIQLConfig

    a = p.agent
    return HIQLConfig(obs_dim=obs_dim, action_dim=action_dim, hidden=list(sizes(p).train.hidden), rep_dim=a.rep_dim,
                      discount=sizes(p).train.discount[maze], expectile=a.expectile, tau=a.tau,
                      low_alpha=a.low_alpha, high_alpha=a.high_alpha, layer_norm=a.layer_norm)


def value_goals(p: OTAParams):
    from hrlzoo.gcrl.dataset import GoalSampling

    a = p.agent
    return GoalSampling(a.value_p_cur, a.value_p_traj, a.value_p_rand, geom=True)


def actor_goals(p: OTAParams):
    """Flat actors (GCBC, GCIVL): future states of the same trajectory, uniform (OGBench), or
    random states with probability actor_p_rand."""
    from hrlzoo.gcrl.dataset import GoalSampling

    r = p.agent.actor_p_rand
    return GoalSampling(0.0, 1.0 - r, r, geom=False)


def rngs(p: OTAParams, role: str) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, SALT[role]]) for seed in p.seeds]


def init_torch(p: OTAParams, role: str) -> None:
    import torch

    torch.manual_seed(int(np.random.default_rng([*p.seeds, SALT[role]]).integers(2**31)))


def batch(sample: Callable[[np.random.Generator], dict], gens: list[np.random.Generator], device) -> dict:
    """One minibatch per seed, stacked to [S, B, ...] tensors (float arrays only)."""
    from hrlzoo.gcrl.dataset import stack_batches
    from hrlzoo.gcrl.nets import to_torch

    return to_torch(stack_batches([sample(g) for g in gens]), device)


# ----------------------------------------------------------------------------- training loop
def train(ctx, what: str, module, loss_fn: Callable[[], tuple], steps: int, after_step=None,
          checkpoint: Callable[[int], None] | None = None, at: list[int] | None = None) -> list[dict]:
    """Adam on `module` for `steps` steps of `loss_fn() -> (loss summed over seeds, info of [S]
    tensors)`; returns curve rows (step, seed, every info entry) every `log_every` steps, and
    calls `checkpoint(step)` after each step listed in `at`."""
    from hrlzoo.nets.optim import Adam  # torch.optim.Adam's update, without importing torch._dynamo

    p: OTAParams = ctx.params
    opt = Adam(module.parameters(), lr=p.agent.lr)
    every = sizes(p).train.log_every
    at = set(at or [])
    rows: list[dict] = []
    with ctx.progress(steps, what) as bar:
        for step in range(1, steps + 1):
            loss, info = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()
            if step % every == 0 or step == steps:
                ctx.guard(f"{what} loss", loss.item(), step)
                for s, seed in enumerate(p.seeds):
                    rows.append({"step": step, "seed": seed, **{k: float(v[s]) for k, v in info.items()}})
            if checkpoint is not None and step in at:
                checkpoint(step)
            bar.update(1)
    return rows


def fit_actor(ctx, out: Path, method: str, actor, loss_fn: Callable[[], tuple]) -> list[dict]:
    """Train one actor for `actor_steps`, save it as <out>/<method>.pt with its weights at the
    `curve_points` checkpoints (`actor_checkpoints`; the success curves); its loss rows."""
    p: OTAParams = ctx.params
    snaps: dict[int, dict] = {}

    def snapshot(step: int) -> None:
        snaps[step] = {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()}

    rows = train(ctx, f"{ctx.args.maze} {method} actor", actor, loss_fn, sizes(p).train.actor_steps,
                 checkpoint=snapshot, at=actor_checkpoints(p))
    save_modules(out / f"{method}.pt", p, extra={"checkpoints": snaps}, actor=actor)
    return [{"method": method, **r} for r in rows]


def actor_checkpoints(p: OTAParams) -> list[int]:
    """The gradient steps at which every actor is saved and evaluated for the success curves."""
    return checkpoints(sizes(p).train.actor_steps, sizes(p).train.curve_points)


def write_curve(rows: list[dict], path: Path, key: str) -> None:
    """Training curves of the runs of one stage; `key` names the run column (value, method)."""
    import polars as pl

    pl.DataFrame(rows).sort([key, "seed", "step"]).write_parquet(path)


def save_modules(path: Path, p: OTAParams, extra: dict | None = None, **modules) -> None:
    from hrlzoo.pipeline.artifacts import save_pt

    save_pt({"seeds": list(p.seeds), **(extra or {}), **{k: m.state_dict() for k, m in modules.items()}}, path)


def load_into(path: str | Path, step: int | None = None, **modules) -> dict:
    """Load the state dicts saved by `save_modules` into freshly built modules (frozen); with
    `step`, an actor's weights at that checkpoint (`fit_actor`)."""
    from hrlzoo.pipeline.artifacts import load_pt

    blob = load_pt(path)
    for k, m in modules.items():
        m.load_state_dict(blob[k] if step is None else blob["checkpoints"][step])
        m.requires_grad_(False)
        m.eval()
    return blob


def load_value(p: OTAParams, maze: str, name: str, device="cpu"):
    """A trained value (name: low | gcivl | high_n<k>), frozen, on `device`."""
    from stages.ota import gcivl, hiql

    cfg, S = hiql_config(p, maze), len(p.seeds)
    value = (gcivl.make_value(cfg.obs_dim, cfg.hidden, S, cfg.layer_norm) if name == "gcivl"
             else hiql.make_value(cfg, S))
    load_into(value_file(maze, name), value=value)
    return value.to(device)


def load_actor(p: OTAParams, maze: str, method: str, device="cpu", step: int | None = None):
    """A trained actor, frozen: low (HIQL's low level), hiql / ota_n<k> (high levels), gcbc / gcivl;
    with `step`, its weights after that many gradient steps (one of `actor_checkpoints`)."""
    from stages.ota import gcbc, hiql

    cfg, S = hiql_config(p, maze), len(p.seeds)
    if method == "low":
        actor, path = hiql.make_low_actor(cfg, S), Path(low_dir(maze)) / "low.pt"
    elif method in ("gcbc", "gcivl"):
        actor, path = gcbc.make_actor(cfg.obs_dim, cfg.action_dim, cfg.hidden, S), Path(flat_dir(maze)) / f"{method}.pt"
    else:
        actor, path = hiql.make_high_actor(cfg, S), Path(high_dir(maze)) / f"{method}.pt"
    load_into(path, step=step, actor=actor)
    return actor.to(device)
