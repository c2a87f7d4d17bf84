"""HAMNet's params schema: every knob of `params/hamnet.yaml`, with its range and meaning.

Sources: iMSquared/HAMNet `ham/data/cfg/rss_train.yaml` (network, PPO, reward, domain
randomisation), `ham/models/rl/ppo_config.py` (PPO defaults the YAML leaves), iMSquared/corn
`pkm/scripts/pretrain/uni/model_col.py` (contact pretraining). What is scaled down for a 2-core CPU,
and what is ours, each knob's help says (spec A §7.5: pymunk planar pushing instead of Isaac Gym).
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.envs.pushing import FLOORS, GEOMETRIES, SHAPES
from hrlzoo.pipeline.params import SCALES, Common, knob

METHODS = ("hamnet", "monolithic", "hamnet_scratch")
SPLITS = ("train", "heldout_env", "heldout_shape")


@dataclass
class EnvParams:
    """The pushing simulator (hrlzoo/envs/pushing.py, PushConfig: the knobs not listed keep its defaults)."""

    max_steps: int = knob(100, ge=2, help="control steps per episode (HAMNet: timeout 300 at 8 x 12.5 ms; ours 100 x 50 ms)")
    substeps: int = knob(5, ge=1, help="physics steps per control step (HAMNet action_period 8)")
    dt: float = knob(0.01, gt=0, help="physics step (s)")
    v_max: float = knob(0.25, gt=0, help="hand speed at |action| = 1 (m/s)")
    pos_tol: float = knob(0.03, gt=0, help="success: object centre within this of the goal (m; HAMNet 5 cm at 3-D scale)")
    ang_tol: float = knob(0.3, gt=0, help="success: yaw error below this (rad; HAMNet 0.1 rad)")
    goal_dist_min: float = knob(0.1, gt=0, help="start-goal distance range (m)")
    goal_dist_max: float = knob(0.25, gt=0, help="")
    goal_rot: float = knob(0.5, ge=0, help="goal yaw = start yaw + U(-goal_rot, goal_rot)")
    pot_coef: float = knob(0.16, ge=0, help="object-goal potential coefficient (HAMNet pot_coef)")
    hand_obj_pot_coef: float = knob(0.03, ge=0, help="hand-object potential coefficient (HAMNet hand_obj_pot_coef)")
    succ_coef: float = knob(1.0, ge=0, help="success bonus (HAMNet succ_coef)")
    pot_k: float = knob(20.0, gt=0, help="k of the log potential -log(1 + k d), per metre (ours)")
    n_obj_points: int = knob(32, ge=4, help="object cloud points (HAMNet 512 in 3-D)")
    n_env_points: int = knob(32, ge=4, help="environment cloud points nearest the object")
    heldout_envs: list[list[str]] = knob(factory=lambda: [["pocket", "patches"], ["obstacles", "patches"]],
                                         help="(geometry, floor) pairs never trained on: the held-out combinations")
    heldout_shapes: list[str] = knob(factory=lambda: ["hexagon", "T"], choices=SHAPES,
                                     help="shape families never trained on")

    def validate(self) -> str | None:
        if self.goal_dist_max < self.goal_dist_min:
            return "goal_dist_max: expected >= goal_dist_min"
        for pair in self.heldout_envs:
            if len(pair) != 2 or pair[0] not in GEOMETRIES or pair[1] not in FLOORS:
                return f"heldout_envs: {pair!r} is not a [geometry, floor] pair ({GEOMETRIES} x {FLOORS})"
        if not self.heldout_envs or not self.heldout_shapes:
            return "heldout_envs, heldout_shapes: expected at least one each (the held-out evaluations)"
        return None

    def config(self):
        from hrlzoo.envs.pushing import PushConfig

        kw = {k: getattr(self, k) for k in ("max_steps", "substeps", "dt", "v_max", "pos_tol", "ang_tol",
                                             "goal_dist_min", "goal_dist_max", "goal_rot", "pot_coef",
                                             "hand_obj_pot_coef", "succ_coef", "pot_k", "n_obj_points", "n_env_points")}
        return PushConfig(heldout_envs=tuple(tuple(p) for p in self.heldout_envs),
                          heldout_shapes=tuple(self.heldout_shapes), **kw)


@dataclass
class EncoderParams:
    """The contact encoder (CORN ColModel: 2 layers, 128-d, patch 32 of 512 points; scaled down)."""

    patch: int = knob(8, ge=1, help="points per patch (divides both clouds' sizes)")
    dim: int = knob(32, ge=4, help="token width (CORN 128)")
    layers: int = knob(2, ge=1, help="transformer layers (CORN 2)")
    heads: int = knob(4, ge=1, help="attention heads")


@dataclass
class PretrainParams:
    """CORN's patch-contact pretext task (model_col.py: BCE per patch, 'any point of the patch in contact')."""

    lr: float = knob(3e-4, gt=0, help="Adam lr (ours)")
    near_hand: float = knob(0.5, ge=0, le=1, help="share of samples with the hand placed at the object's surface")
    near_wall: float = knob(0.5, ge=0, le=1, help="share of samples with the object placed next to static geometry")
    contact_eps: float = knob(0.005, gt=0, help="a point is in contact within this distance (m)")


@dataclass
class PolicyParams:
    """HAMNet's modular network (rss_train.yaml `embed_cloud` net; widths scaled down)."""

    modules: int = knob(8, ge=1, help="M: module weight sets per parameter tensor (HAMNet num_module 8)")
    hidden: list[int] = knob(factory=lambda: [64, 64], ge=1, min_items=1,
                             help="hidden widths of the base actor and critic (HAMNet 256, 128, 128, 64)")
    wnet: list[int] = knob(factory=lambda: [128, 128], ge=1, min_items=1, help="modulation MLP (HAMNet wnet_dims 256, 256)")
    emb: int = knob(64, ge=4, help="cross-attention width (HAMNet cross_big_emb_dim 256, obj_attn_emb_dim 512)")
    heads: int = knob(4, ge=1, help="cross-attention heads (HAMNet num_head 4)")
    proj: list[int] = knob(factory=lambda: [64], ge=1, min_items=1, help="projection after cross-attention (HAMNet dim_local_proj 256, 128)")
    gate_init: float = knob(0.008, ge=0, help="gate head weights U(+-gate_init), zero bias (HAMNet init_std 0.008)")
    log_std_init: float = knob(-0.4, ge=-5, le=2, help="initial log std of the Gaussian policy (HAMNet subnet log_std_init -0.4)")


@dataclass
class PPOParams:
    """HAMNet's PPO (rss_train.yaml agent.train + ppo_config.py defaults)."""

    lr: float = knob(3e-4, gt=0, help="base learning rate (TrainConfig.lr)")
    gamma: float = knob(0.99, gt=0, le=1, help="LossConfig.gamma")
    gae_lambda: float = knob(0.95, ge=0, le=1, help="LossConfig.lmbda")
    clip: float = knob(0.3, gt=0, help="LossConfig.clip")
    epochs: int = knob(8, ge=1, help="train.epoch: full-batch gradient steps per rollout (chunk_size 1)")
    pg_coef: float = knob(0.5, gt=0, help="k_pi")
    vf_coef: float = knob(2.0, ge=0, help="k_val")
    bound_coef: float = knob(0.02, ge=0, help="k_bound")
    kl_target: float = knob(0.016, gt=0, help="alr.kl_target (adaptive lr and early stopping)")
    max_grad_norm: float = knob(1.0, gt=0, help="PPO max_grad_norm")


@dataclass
class ScaleSizes:
    worlds: int = knob(16, ge=1, help="worlds per seed (HAMNet 1024)")
    rollout: int = knob(32, ge=1, help="steps per world per rollout (HAMNet rollout_size 8)")
    total_steps: int = knob(200_000, ge=1, help="env steps per seed (HAMNet train_steps 2M x 1024 envs)")
    pretrain_samples: int = knob(20000, ge=10, help="contact-pretraining samples")
    pretrain_steps: int = knob(2000, ge=1, help="contact-pretraining gradient steps")
    pretrain_batch: int = knob(128, ge=2, help="samples per pretraining step")
    pretrain_test: int = knob(2000, ge=10, help="fresh scenes per split on which the contact AUROC is measured")
    eval_episodes: int = knob(64, ge=1, help="evaluation episodes per seed and split")
    curve_points: int = knob(10, ge=2, help="training-curve points (rollouts are averaged between them)")
    frames: int = knob(3, ge=0, help="evaluation episodes per split drawn as PNG frames (seed 0)")


@dataclass
class HAMNetParams(Common):
    env: EnvParams = knob(factory=EnvParams, help="the simulator")
    encoder: EncoderParams = knob(factory=EncoderParams, help="the contact encoder")
    pretrain: PretrainParams = knob(factory=PretrainParams, help="contact pretraining")
    policy: PolicyParams = knob(factory=PolicyParams, help="the modular policy")
    ppo: PPOParams = knob(factory=PPOParams, help="PPO")
    methods: list[str] = knob(factory=lambda: list(METHODS), choices=METHODS, unique=True, help="trained methods")
    eval_seed: int = knob(100_000, ge=0, help="first world seed of the evaluation episodes (train seeds are < this)")
    pretrain_seed: int = knob(50_000, ge=0, help="first layout seed of the pretraining data")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, keys=SCALES, all_keys=True, help="scale -> sizes")

    def validate(self) -> str | None:
        e, k = self.encoder, self.env
        if k.n_obj_points % e.patch or k.n_env_points % e.patch:
            return "encoder.patch: expected to divide env.n_obj_points and env.n_env_points"
        if e.dim % e.heads or self.policy.emb % self.policy.heads:
            return "encoder.heads / policy.heads: expected to divide the token widths"
        return None


def sizes(p: HAMNetParams) -> ScaleSizes:
    return p.sizes[p.scale]
