"""Our batched driving simulator beside highway-env on a comparable scene, in one run.

    python benchmarks/driving_sim.py [--scenes 256] [--frames 40] [--hw-steps 100] [--repeats 3]

Scene: a 3-lane straight highway, 15 vehicles (the ego and 14 others), IDM car following and
MOBIL lane changes, 10 Hz simulation, a decision every 0.5 s. Ours: DrivingSim with the
expert driving, `--scenes` scenes stepped together, and one scene alone. highway-env:
`highway-v0` with `vehicles_count` 14, simulation_frequency 10, policy_frequency 2, its default
kinematics observation, no rendering, the IDLE meta-action; an ended episode is reset (not
timed). A vehicle-step is one vehicle advanced by one 0.1 s simulation step. Rendering our
8-channel 64x64 raster is timed separately, in frames per second. Each number is the best of
`--repeats` runs, the three simulators taking turns, so that load from other processes on
the machine hurts them alike and as little as possible.
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def ours(scenes: int, frames: int) -> tuple[float, float]:
    """(vehicle-steps/s, raster frames/s) of DrivingSim."""
    import numpy as np

    from hrlzoo.envs.driving.config import SimConfig
    from hrlzoo.envs.driving.sim import DrivingSim

    cfg = dataclasses.replace(SimConfig(), mix={"cruise": 1.0}, traffic_min=14, traffic_max=14, route_prob=0.0)
    sim = DrivingSim(cfg, range(scenes))
    vehicles, t = 0, time.perf_counter()
    for _ in range(frames):
        vehicles += int(sim.active.sum()) * cfg.substeps
        sim.step()
    steps_per_s = vehicles / (time.perf_counter() - t)
    t = time.perf_counter()
    reps = max(1, 2048 // scenes)
    for _ in range(reps):
        r = sim.render()
    frames_per_s = reps * len(r) / (time.perf_counter() - t)
    assert np.isfinite(sim.x).all()
    return steps_per_s, frames_per_s


def highway_env(steps: int) -> float:
    """vehicle-steps/s of highway-env's highway-v0 configured like our scene."""
    import gymnasium as gym
    import highway_env  # noqa: F401  (registers the environments)

    env = gym.make("highway-v0", render_mode=None, config={
        "lanes_count": 3, "vehicles_count": 14, "simulation_frequency": 10, "policy_frequency": 2,
        "duration": 10_000, "offscreen_rendering": True})
    env.reset(seed=0)
    road = env.unwrapped.road
    idle = 1  # DiscreteMetaAction: 0 LANE_LEFT, 1 IDLE, 2 LANE_RIGHT, 3 FASTER, 4 SLOWER
    vehicles, elapsed = 0, 0.0
    for _ in range(steps):
        n = len(road.vehicles)
        t = time.perf_counter()
        _, _, term, trunc, _ = env.step(idle)
        elapsed += time.perf_counter() - t
        vehicles += n * 5  # 10 Hz simulation / 2 Hz policy = 5 simulation steps per env step
        if term or trunc:
            env.reset()
            road = env.unwrapped.road
    return vehicles / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=256, help="scenes stepped together by our simulator")
    ap.add_argument("--frames", type=int, default=40, help="frames (0.5 s each) of our simulator per run")
    ap.add_argument("--hw-steps", type=int, default=100, help="env steps (0.5 s each) of highway-env per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each; the best counts")
    a = ap.parse_args()
    batch = raster = single = hw = 0.0
    for _ in range(a.repeats):
        b, r = ours(a.scenes, a.frames)
        batch, raster = max(batch, b), max(raster, r)
        single = max(single, ours(1, a.frames)[0])
        try:
            hw = max(hw, highway_env(a.hw_steps))
        except ImportError:
            hw = float("nan")
    print("3 lanes, 15 vehicles per scene, IDM + MOBIL, 10 Hz simulation")
    print(f"hrlzoo DrivingSim, {a.scenes} scenes batched:   {batch:12,.0f} vehicle-steps/s")
    print(f"hrlzoo DrivingSim, 1 scene:              {single:12,.0f} vehicle-steps/s")
    print(f"highway-env highway-v0 (kinematics obs): {hw:12,.0f} vehicle-steps/s"
          + ("   (not installed)" if hw != hw else ""))
    if hw == hw:
        print(f"ratio ours batched / highway-env:        {batch / hw:12.1f}")
        print(f"ratio ours 1 scene / highway-env:        {single / hw:12.1f}")
    print(f"raster 8x64x64, {a.scenes} scenes per call:     {raster:12,.0f} frames/s")


if __name__ == "__main__":
    main()
