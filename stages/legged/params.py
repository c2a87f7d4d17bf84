"""Legged locomotion in confined 3-D spaces (Xu et al., arXiv 2403.03848; official code
Daffan/legged_tracking): the params schema, every knob of `params/legged.yaml`.

[CODE] marks a value read in the official repository (file named), [OURS] our choice for the
scaled-down substrate (spec B §7.4: a body-model crawler instead of a Go1 in Isaac Gym).
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import SCALES, Common, knob

from stages.legged.tunnels import KINDS

METHODS = ("hierarchical", "e2e", "pms")


@dataclass
class TunnelParams:
    res: float = knob(0.05, gt=0, help="[OURS] grid cell of the floor and ceiling maps (m); spec B §7.4: 5 cm")
    width: float = knob(1.0, gt=0, help="[OURS] tunnel width (m)")
    ceiling: float = knob(0.5, gt=0, help="[OURS] free ceiling height (m) away from obstacles (official 0.8 above a Go1)")
    pad: float = knob(1.0, ge=1.0, help="[OURS] solid margin of the maps (m); >= 1: the height maps look 1 m ahead")
    start_x: float = knob(0.4, gt=0, help="[OURS] start of the body centre (m from the tunnel's start)")
    spacing: float = knob(1.2, gt=0.5, help="[OURS] distance between obstacles (m)")


@dataclass
class BodyParams:
    length: float = knob(0.38, gt=0, help="[CODE] box length (planner.py: Go1 ~0.376 m)")
    width: float = knob(0.10, gt=0, help="[CODE] box width (planner.py: Go1 ~0.094 m)")
    h_min: float = knob(0.12, gt=0, help="[OURS] lowest body height (m; spec B §7.4)")
    h_max: float = knob(0.30, gt=0, help="[OURS] highest body height (m; spec B §7.4)")
    h_stand: float = knob(0.28, gt=0, help="[CODE] base_height_target (scripts/train.py)")
    v_max: float = knob(0.6, gt=0, help="[OURS] forward speed limit standing (m/s)")
    vy_max: float = knob(0.3, gt=0, help="[OURS] lateral speed limit standing (m/s)")
    yaw_rate_max: float = knob(2.0, gt=0, help="[OURS] yaw-rate limit (rad/s)")
    h_rate_max: float = knob(0.3, gt=0, help="[OURS] height-rate limit (m/s)")
    tilt_rate_max: float = knob(1.5, gt=0, help="[OURS] roll- and pitch-rate limits (rad/s)")
    roll_max: float = knob(0.6, gt=0, help="[OURS] roll limit (rad)")
    pitch_max: float = knob(0.4, gt=0, help="[OURS] pitch limit (rad)")
    crouch_speed: float = knob(0.3, gt=0, le=1, help="[OURS] speed limits at h_min as a share of standing (crawling is slow)")
    lag: float = knob(0.5, gt=0, le=1, help="[OURS] first-order lag per step toward the commanded rates")
    accel: float = knob(2.0, gt=0, help="[OURS] acceleration cap (m/s^2; the gait's stand-in)")
    step_max: float = knob(0.10, gt=0, help="[OURS] highest floor step climbed in one step (m)")
    dt: float = knob(0.1, gt=0, help="[OURS] control period (s); official policy dt 0.02 s")

    def validate(self) -> str | None:
        if not self.h_min < self.h_stand <= self.h_max:
            return "expected h_min < h_stand <= h_max"
        return None


@dataclass
class RewardParams:
    """Reward scales. Hierarchical: scripts_archived_0/train_hierarchy.py; end-to-end: scripts/train.py
    (strategy e2e, penalty_scaler 1); terms: go1_gym/envs/rewards/trajectory_tracking_reward.py,
    reward_crawling.py. Every term is multiplied by dt, as legged_gym's _prepare_reward_function does."""

    reaching_local_goal: float = knob(100.0, ge=0, help="[CODE] +scale when the local goal (waypoint) is reached")
    reach_goal: float = knob(100.0, ge=0, help="[CODE] +scale when the global goal is reached")
    exploration: float = knob(1.0, ge=0, help="[CODE] --r_explore: cos(velocity, direction to the local goal)")
    stalling: float = knob(1.0, ge=0, help="[CODE] --r_stalling: -scale when slow and far from the goal")
    collision_hier: float = knob(1.0, ge=0, help="[CODE] hierarchical collision penalty")
    action_rate_hier: float = knob(0.01, ge=0, help="[CODE] hierarchical action-rate penalty")
    small_vel: float = knob(0.05, gt=0, help="[CODE] small_vel_threshold (m/s), train_hierarchy.py")
    large_dist: float = knob(0.5, gt=0, help="[CODE] large_dist_threshold (m)")
    task: float = knob(1.0, ge=0, help="[CODE] --r_task: e2e reward for standing still at the goal")
    exploration_lin: float = knob(1.0, ge=0, help="[CODE] --r_explore_lin: track 0.25 m/s toward the goal (decays)")
    exploration_yaw: float = knob(0.4, ge=0, help="[CODE] --r_explore_yaw: turn toward the goal yaw (decays)")
    collision_e2e: float = knob(5.0, ge=0, help="[CODE] --r_collision (e2e and pms)")
    base_height: float = knob(20.0, ge=0, help="[CODE] --r_base_height: (h - 0.28)^2 penalty (e2e)")
    ang_vel_xy: float = knob(0.001, ge=0, help="[CODE] --r_ang_vel: roll/pitch rate penalty")
    action_rate_e2e: float = knob(0.001, ge=0, help="[CODE] e2e action-rate penalty")
    target_lin_vel: float = knob(0.25, gt=0, help="[CODE] target_lin_vel (m/s)")
    lin_reaching: float = knob(0.3, gt=0, help="[CODE] lin_reaching_criterion (m): zero target speed inside")
    sigma_lin: float = knob(0.05, gt=0, help="[CODE] tracking_sigma_lin")
    target_ang_vel: float = knob(1.5707963, gt=0, help="[CODE] target_ang_vel (comment: pi/2)")
    ang_reaching: float = knob(0.15707963, gt=0, help="[CODE] ang_reaching_criterion pi/20")
    sigma_ang: float = knob(0.25, gt=0, help="[OURS] tracking_sigma_ang (legged_gym's default)")
    track_lin: float = knob(1.0, ge=0, help="[OURS] pms: track the commanded forward speed (lateral 0)")
    track_yaw: float = knob(0.4, ge=0, help="[OURS] pms: track the commanded yaw rate (as exploration_yaw)")
    track_pose: float = knob(1.0, ge=0, help="[OURS] pms: track the commanded height, roll and pitch 0")
    sigma_h: float = knob(0.002, gt=0, help="[OURS] pms height-tracking sigma (m^2)")
    sigma_tilt: float = knob(0.05, gt=0, help="[OURS] pms level-body sigma (rad^2)")


@dataclass
class PlannerParams:
    xy_step: float = knob(0.05, gt=0, help="[OURS] lattice step in x and y (m)")
    heights: list[float] = knob(factory=lambda: [0.125, 0.18, 0.28], gt=0, min_items=1, help="[OURS] lattice body heights (m)")
    rolls: list[float] = knob(factory=lambda: [-0.55, 0.0, 0.55], ge=-1.0, le=1.0, min_items=1,
                              help="[OURS] lattice rolls (rad)")
    margin: float = knob(0.01, ge=0, help="[OURS] box inflation in length and width (m): the clearance")
    margin_h: float = knob(0.005, ge=0, help="[OURS] box inflation on top (m)")
    pose_cost: float = knob(0.1, ge=0, help="[OURS] cost (s) of one pose change on the lattice")
    waypoint_spacing: float = knob(0.5, gt=0, help="[OURS] waypoints every this many metres of path (spec B §7.4)")


@dataclass
class PPOParams:
    """go1_gym_learn/ppo_cse/ppo.py PPO_Args, actor_critic.py AC_Args, __init__.py RunnerArgs [CODE]."""

    learning_rate: float = knob(5e-4, gt=0, help="[OURS] fixed lr (official 1e-3 with the adaptive KL schedule, "
                                "whose comment names 5e-4; hrlzoo's PPO has no KL schedule)")
    gamma: float = knob(0.99, gt=0, le=1, help="[CODE]")
    gae_lambda: float = knob(0.95, ge=0, le=1, help="[CODE] lam")
    clip_coef: float = knob(0.2, gt=0, help="[CODE] clip_param")
    clip_range_vf: float = knob(0.2, gt=0, help="[CODE] use_clipped_value_loss with clip_param")
    ent_coef: float = knob(0.01, ge=0, help="[CODE] entropy_coef")
    vf_coef: float = knob(1.0, ge=0, help="[CODE] value_loss_coef")
    update_epochs: int = knob(5, ge=1, help="[CODE] num_learning_epochs")
    minibatches: int = knob(4, ge=1, help="[CODE] num_mini_batches")
    num_steps: int = knob(24, ge=1, help="[CODE] num_steps_per_env")
    max_grad_norm: float = knob(1.0, gt=0, help="[CODE]")
    hidden: list[int] = knob(factory=lambda: [256, 256], ge=1, min_items=1,
                             help="[OURS] MLP widths (official [512, 256, 128]; spec B §7.4: 256-256)")
    activation: str = knob("elu", choices=("elu", "tanh", "relu"), help="[CODE] elu")
    log_std_init: float = knob(0.0, ge=-5.0, le=2.0, help="[CODE] init_noise_std 1.0")
    normalize_obs: bool = knob(True, help="[OURS] running observation normalisation (official: fixed obs_scales)")


@dataclass
class ScaleSizes:
    train_per_cell: int = knob(40, ge=1, help="training tunnels per (kind, distance)")
    test_per_cell: int = knob(20, ge=1, help="test tunnels per (kind, distance)")
    num_envs: int = knob(64, ge=1, help="worlds per seed (official 1,024)")
    total_steps: int = knob(300_000, ge=1, help="env steps per seed")
    render: int = knob(4, ge=0, help="test tunnels (one per kind first) whose trajectories are rendered")


@dataclass
class LeggedParams(Common):
    world_seed: int = knob(0, ge=0, help="seed of the tunnels (train and test banks are disjoint by salt)")
    kinds: list[str] = knob(factory=lambda: list(KINDS), choices=KINDS, min_items=1, unique=True,
                            help="difficulty levels, easiest first (the skill each asks for)")
    distances: list[float] = knob(factory=lambda: [2.0, 4.0, 6.0], gt=0, min_items=1, unique=True,
                                  help="goal distances (m); spec B §7.4: global goal 4-8 m away")
    tunnel: TunnelParams = knob(factory=TunnelParams, help="the tunnels")
    body: BodyParams = knob(factory=BodyParams, help="the body model")
    reward: RewardParams = knob(factory=RewardParams, help="reward scales")
    planner: PlannerParams = knob(factory=PlannerParams, help="the high level")
    switch_dist: float = knob(0.25, gt=0, help="[CODE] switch_dist: a waypoint is reached this close (m)")
    goal_radius: float = knob(0.3, gt=0, help="[CODE] success: this close to the far goal (m; lin_reaching_criterion)")
    steps_per_m: float = knob(80.0, gt=0, help="[OURS] episode length: steps per metre of goal distance")
    exploration_start: float = knob(0.0104, ge=0, le=1, help="[CODE] e2e decay starts at exploration_steps = 2,500 "
                                    "of 240,000 steps per env (10,000 x 24): as a share of training")
    exploration_end: float = knob(0.531, ge=0, le=1, help="[CODE] ... and reaches 0 after exploration_steps / dt "
                                  "more (dt 0.02): (2,500 + 125,000) / 240,000 of training")
    ppo: PPOParams = knob(factory=PPOParams, help="PPO (hrlzoo.algos.ppo)")
    methods: list[str] = knob(factory=lambda: list(METHODS), choices=METHODS, min_items=1, unique=True,
                              help="trained methods")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, help="scale -> sizes")

    def validate(self) -> str | None:
        for scale in SCALES:
            if scale not in self.sizes:
                return f"sizes.{scale}: missing (every paper declares smoke, cpu and paper sizes)"
        if self.exploration_end < self.exploration_start:
            return "exploration_end: expected >= exploration_start"
        if self.kinds[0] != "plain":
            return "kinds: expected 'plain' first (the easiest difficulty, the gate's)"
        return None


def sizes(p: LeggedParams) -> ScaleSizes:
    return p.sizes[p.scale]
