"""HERON's params schema: every knob of `params/heron.yaml`, with its range and meaning.

Defaults follow abukharin3/HERON, ClassicControl/cleanrl/{ddpg_rm.py, rm_mountain.py} and
ClassicControl/scripts/{pendulum.sh, mountain.sh}; where we differ the help text says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import SCALES, Common, knob

METHODS = ("true_reward", "misweighted", "heuristic", "rlhf", "heron")
PREFERENCE_METHODS = ("rlhf", "heron")  # methods that learn a reward model from preferences
TRAFFIC_METHODS = ("true_reward", "misweighted", "rlhf", "heron")  # the traffic task's (issue 15)
N_TRAFFIC_FACTORS = 6  # hrlzoo.envs.traffic.FACTORS: queue, wait, delay, switch, passed, travel
TASKS = ("pendulum", "pendulum_x100", "mountaincar", "mountaincar_official")  # the fields of ScaleSizes but traffic (its own section)


@dataclass
class TaskParams:
    env_id: str = knob("Pendulum-v1", choices=("Pendulum-v1", "MountainCarContinuous-v0"),
                       help="gymnasium environment")
    factors: list[str] = knob(factory=list, help="reward-factor names, in the wrapper's order")
    signs: list[int] = knob(factory=list, choices=(-1, 1),
                            help="+1 when a higher factor is better, -1 when lower is better")
    ranking: list[int] = knob(factory=list, ge=0,
                              help="importance order of the factors (indices), most important first")
    sigma_mult: list[float] = knob(factory=list, ge=0,
                                   help="margin per factor: delta_k = sigma_mult[k] * std(z_k) over the buffer")
    factor_scale: list[float] = knob(factory=list, gt=0,
                                     help="multiplier on each factor before anything sees it (scale-invariance test)")
    misweighted: list[float] = knob(factory=list, ge=0,
                                    help="weights of the mis-weighted linear sum r = sum_k sign_k w_k z_k")
    goal_on_timeout: bool = knob(False, help="MountainCar: the goal factor also fires when the time limit ends an "
                                 "episode, as the official rm_mountain.py's `dones` do (false: only the real flag)")
    beta: float = knob(0.5, gt=0, le=1, help="heuristic reward r = sum_l sign beta^l z_(ranking[l]) (paper: 0.5)")
    td3_lr: float = knob(1e-3, gt=0, help="actor/critic Adam lr (official: 5e-4 Pendulum, 1e-3 MountainCar)")
    rm_lr: float = knob(1e-3, gt=0, help="reward-model Adam lr (official: 1e-4 Pendulum, 1e-3 MountainCar)")

    def validate(self) -> str | None:
        n = len(self.factors)
        for name in ("signs", "sigma_mult", "factor_scale", "misweighted"):
            if len(getattr(self, name)) != n:
                return f"{name}: expected {n} entries, one per factor"
        if sorted(self.ranking) != list(range(n)):
            return f"ranking: expected a permutation of 0..{n - 1}"
        return None


@dataclass
class TD3Params:
    gamma: float = knob(0.99, gt=0, lt=1, help="discount")
    tau: float = knob(0.005, gt=0, le=1, help="Polyak rate of the target networks")
    exploration_noise: float = knob(0.1, ge=0, help="Gaussian action noise, in units of the action range/2")
    policy_delay: int = knob(2, ge=1, help="critic updates per actor update")
    target_noise: float = knob(0.2, ge=0, help="TD3 target-policy smoothing noise (0 with twin_q=false gives DDPG)")
    noise_clip: float = knob(0.5, ge=0, help="clip of the target-policy smoothing noise")
    twin_q: bool = knob(True, help="clipped double-Q (TD3); false gives the official code's single-Q DDPG")


@dataclass
class RewardModelParams:
    hidden: int = knob(256, ge=1, help="width of the reward model's two hidden layers (official: 256)")
    batch: int = knob(16, ge=2, help="samples per minibatch; every pair inside it is labelled (official: 16)")
    batches_per_refit: int = knob(16, ge=1, help="minibatches (optimizer steps) per refit (official: 16)")
    normalize: bool = knob(False, help="standardise r_phi by the mean/std of its outputs (official flag --rm-normalize)")
    relabel: bool = knob(False, help="rewrite every stored reward with the newest model after each refit "
                         "(off = the official code: a reward is fixed when its transition is stored)")
    inputs: str = knob("obs_factors", choices=("obs_factors", "obs"),
                       help="what r_phi sees: obs+factors (classic-control code) or obs only (robots code)")


@dataclass
class TaskSizes:
    total_steps: int = knob(10_000, ge=1, help="environment steps of training")
    hidden: int = knob(256, ge=1, help="width of the two hidden layers of actor and critics (official: 256)")
    batch_size: int = knob(256, ge=1, help="TD3 replay minibatch (official: 256)")
    learning_starts: int = knob(1_000, ge=0, help="random-action steps before TD3 updates start")
    eval_episodes: int = knob(10, ge=1, help="episodes per seed in the final evaluation")
    curve_every: int = knob(500, ge=1, help="env steps between points of the training curve")
    rm_refit_start: int = knob(1000, ge=0, help="reward-model refits begin after this env step (official: 1000)")
    rm_refit_every: int = knob(400, ge=1, help="env steps between reward-model refits (official: 400)")


@dataclass
class TrafficTaskParams:
    """One traffic task: the factors of hrlzoo.envs.traffic (queue, wait, delay, switch, passed,
    travel; signs from IntelliLight's weights) with a ranking, margins and a rescaling."""

    ranking: list[int] = knob(factory=lambda: [0, 1, 2, 4, 5, 3], ge=0, help="importance order of the six factors, "
                              "most important first (paper: queue length > waiting time > the others; the rest ours)")
    sigma_mult: list[float] = knob(factory=lambda: [1.0] * 6, ge=0, help="margin per factor: delta_k = sigma_mult[k] * "
                                   "std(z_k) over the buffer (official classic-control default 1.0)")
    factor_scale: list[float] = knob(factory=lambda: [1.0] * 6, gt=0, help="multiplier on each factor before the "
                                     "labels, reward models and linear rewards see it (scale-invariance test)")
    misweighted: list[float] = knob(factory=lambda: [1.0] * 6, ge=0, help="weights of the mis-weighted linear sum "
                                    "r = sum_k sign_k w_k z_k (equal weights; the designed ones are IntelliLight's)")
    rm_lr: float = knob(1e-3, gt=0, help="reward-model Adam lr (official rm_mountain.py default)")

    def validate(self) -> str | None:
        for name in ("sigma_mult", "factor_scale", "misweighted"):
            if len(getattr(self, name)) != N_TRAFFIC_FACTORS:
                return f"{name}: expected {N_TRAFFIC_FACTORS} entries, one per factor"
        if sorted(self.ranking) != list(range(N_TRAFFIC_FACTORS)):
            return f"ranking: expected a permutation of 0..{N_TRAFFIC_FACTORS - 1}"
        return None


@dataclass
class TrafficPPOParams:
    """PPO (hrlzoo.algos.ppo, SB3's semantics) on the traffic task; the paper's learner (QCOMBO's
    Q-learning) is not among hrlzoo's algorithms, PPO is the closest we have."""

    learning_rate: float = knob(3e-4, gt=0, help="Adam learning rate")
    gamma: float = knob(0.99, gt=0, lt=1, help="discount per decision (5 s)")
    gae_lambda: float = knob(0.95, gt=0, le=1, help="GAE lambda")
    minibatch_size: int = knob(64, ge=1, help="transitions per gradient step, per seed")
    update_epochs: int = knob(10, ge=1, help="passes over each rollout")
    clip_coef: float = knob(0.2, gt=0, help="surrogate clipping")
    ent_coef: float = knob(0.01, ge=0, help="entropy bonus")
    vf_coef: float = knob(0.5, ge=0, help="value-loss weight")
    max_grad_norm: float = knob(0.5, gt=0, help="gradient-norm clip, per seed")
    hidden: list[int] = knob(factory=lambda: [64, 64], ge=1, help="hidden layers of the policy and value networks")
    normalize_reward: bool = knob(True, help="VecNormalize the reward (every method, so their scales do not matter to PPO)")


@dataclass
class TrafficParams:
    """HERON's headline task: traffic-signal control in SUMO (hrlzoo/envs/traffic.py)."""

    net: str = knob("single-intersection", choices=("single-intersection", "2way-single-intersection"),
                    help="a network sumo-rl ships")
    delta_time: int = knob(5, ge=1, help="simulated seconds per decision (sumo-rl default)")
    yellow_time: int = knob(2, ge=0, help="yellow seconds when the green phase changes (sumo-rl default)")
    min_green: int = knob(5, ge=0, help="shortest green (s) before a change is allowed (sumo-rl default)")
    tasks: dict[str, TrafficTaskParams] = knob(factory=dict, help="traffic task name -> ranking, margins, rescaling")
    ppo: TrafficPPOParams = knob(factory=TrafficPPOParams, help="the policy learner")
    fixed_cycles: list[int] = knob(factory=lambda: [2, 4, 8], ge=1, help="reference controllers: switch the green "
                                   "phase every k decisions (a fixed-time plan), evaluated beside the learned ones")
    eval_seed: int = knob(10_000, ge=0, help="scene seed of the first evaluation episode (apart from training seeds)")

    def validate(self) -> str | None:
        if self.delta_time <= self.yellow_time:
            return "delta_time: expected more seconds than yellow_time (sumo-rl's rule)"
        return None


@dataclass
class TrafficSizes:
    seconds: int = knob(2000, ge=10, help="simulated seconds per episode (seconds / delta_time decisions)")
    total_steps: int = knob(20_000, ge=1, help="decisions (env steps) of training per seed")
    num_steps: int = knob(400, ge=1, help="PPO rollout length per world (decisions)")
    eval_episodes: int = knob(2, ge=1, help="evaluation episodes per seed (the same scenes for every seed and method)")
    rm_refit_start: int = knob(400, ge=0, help="reward-model refits begin after this decision")
    rm_refit_every: int = knob(200, ge=1, help="decisions between reward-model refits")


@dataclass
class ScaleSizes:
    pendulum: TaskSizes = knob(factory=TaskSizes, help="sizes of the pendulum task")
    pendulum_x100: TaskSizes = knob(factory=TaskSizes, help="sizes of the pendulum task with a rescaled factor")
    mountaincar: TaskSizes = knob(factory=TaskSizes, help="sizes of the mountain-car task")
    mountaincar_official: TaskSizes = knob(factory=TaskSizes, help="sizes of mountain car with the official goal factor")
    traffic: TrafficSizes = knob(factory=TrafficSizes, help="sizes of the traffic tasks")


assert TASKS + ("traffic",) == tuple(ScaleSizes.__dataclass_fields__)


@dataclass
class HeronParams(Common):
    tasks: dict[str, TaskParams] = knob(factory=dict, keys=TASKS, all_keys=True, help="task name -> environment and factors")
    td3: TD3Params = knob(factory=TD3Params, help="policy learner")
    reward_model: RewardModelParams = knob(factory=RewardModelParams, help="Bradley-Terry reward model")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, keys=SCALES, all_keys=True, help="scale -> task -> sizes")
    label_pairs: int = knob(2000, ge=10, help="transitions labelled pairwise by the label-diagnostic stage")
    traffic: TrafficParams = knob(factory=TrafficParams, help="the traffic-signal task in SUMO")


def traffic_sizes(p: HeronParams) -> TrafficSizes:
    """The traffic sizes at the chosen scale."""
    return p.sizes[p.scale].traffic


def task_sizes(p: HeronParams, task: str) -> TaskSizes:
    """The sizes of `task` at the chosen scale."""
    return getattr(p.sizes[p.scale], task)
