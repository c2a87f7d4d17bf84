"""A batched numpy driving simulator: a straight multi-lane road, IDM/MOBIL traffic, cut-ins,
stalled cars and lane closures, exact box collisions, a rule-based expert, bird's-eye rasters.

Modules, one idea each:
    config     SimConfig and its parts (every knob, nested under `sim:` in a paper's params)
    geometry   oriented boxes: exact overlap (separating axes), corners, ego/world frames
    traffic    IDM, corridor neighbours, lane tracking, kinematic bicycle
    scenes     one scene per seed (cruise, cut_in, stalled, closure)
    sim        DrivingSim: N scenes stepped as array ops; the expert; navigation commands
    raster     ego-centric bird's-eye rasters for a batch; to_rgb and draw (plans over a raster) for figures
    control    PlanTracker: a planned trajectory -> acceleration and steering
    dataset    expert logs -> per-frame training arrays; load_split
    evaluate   open-loop plan metrics (L2, collision, off-road, progress), closed-loop rollouts, PDMS-like score
    gym_env    DrivingEnv (gymnasium.Env) and DrivingVectorEnv (gymnasium.vector.VectorEnv)
"""

from hrlzoo.envs.driving.config import COMMANDS, SCENARIOS, SimConfig
from hrlzoo.envs.driving.control import PlanTracker
from hrlzoo.envs.driving.dataset import FRAME_KEYS, frames_from_log, later_frame, load_split, record
from hrlzoo.envs.driving.evaluate import (closed_loop, constant_velocity_planner, evaluate_plans, expert_plan, l2_at,
                                          summarize)
from hrlzoo.envs.driving.geometry import boxes_overlap, from_frame, to_frame
from hrlzoo.envs.driving.raster import CHANNELS
from hrlzoo.envs.driving.sim import DrivingSim

__all__ = ["CHANNELS", "COMMANDS", "FRAME_KEYS", "SCENARIOS", "DrivingSim", "PlanTracker", "SimConfig", "boxes_overlap",
           "closed_loop", "constant_velocity_planner", "evaluate_plans", "expert_plan", "frames_from_log", "from_frame",
           "l2_at", "later_frame", "load_split", "record", "summarize", "to_frame"]
