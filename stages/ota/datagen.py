"""Stage ota_datagen: generate one maze's OGBench-format PointMaze datasets (navigate and stitch)
with the noisy BFS oracle.

    python -m stages.ota.datagen <maze>

Writes data/ota/datasets/<maze>/pointmaze-<maze>-<type>-v0.npz and ...-v0-val.npz for both
types (OGBench's keys: observations, actions, terminals, qpos, qvel), which
`ogbench.make_env_and_datasets('pointmaze-<maze>-<type>-v0', dataset_path=...)` loads.
"""

from __future__ import annotations

import sys

from hrlzoo.envs.pointmaze import DATASET_TYPES, MAZES, GenSpec, generate
from hrlzoo.pipeline.npz import save_npz
from hrlzoo.pipeline.stage import Stage, run_stage
from stages.ota.common import dataset_dir, dataset_file
from stages.ota.params import OTAParams, sizes


def body(ctx: Stage) -> None:
    """Generate a maze's navigate and stitch datasets (train and validation splits)."""
    p: OTAParams = ctx.params
    maze = ctx.args.maze
    m = sizes(p).data[maze]
    out = ctx.out(dataset_dir(maze))
    out.mkdir(parents=True)
    for kind in DATASET_TYPES:
        episodes, steps = (m.episodes, m.episode_steps) if kind == "navigate" else (m.stitch_episodes, 201)
        spec = GenSpec(maze=maze, kind=kind, episodes=episodes, max_episode_steps=steps, noise=p.noise,
                       seed=1000 * MAZES.index(maze) + DATASET_TYPES.index(kind))
        total = (episodes + max(1, episodes // 10)) * steps
        with ctx.progress(total, f"{maze}-{kind}", unit="env step") as bar:
            train, val = generate(spec, progress=bar.update)
        name = dataset_file(maze, kind).name
        save_npz(train, out / name)
        save_npz(val, out / name.replace(".npz", "-val.npz"))
        ctx.log(f"{kind}: {len(train['observations'])} train / {len(val['observations'])} val records")


def main(argv: list[str] | None = None) -> int:
    def add_args(ap):
        ap.add_argument("maze", choices=MAZES)

    return run_stage("ota_datagen", "ota", OTAParams, body, argv, add_args=add_args,
                     outputs=lambda a, p: [dataset_dir(a.maze)])


if __name__ == "__main__":
    sys.exit(main())
