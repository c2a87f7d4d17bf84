"""WorldRFT's params schema: every knob of `params/worldrft.yaml`, with its range and meaning.

The official code is not released (pengxuanyang/WorldRFT holds a readme only), and the paper's
own hyper-parameters (sigma of the Gaussianisation, G, the reward's weights, network sizes) are
not known to us (spec A §5.2, §9): every default here is our choice, said so in its help text,
and the `paper` scale is "larger, for GPUs", not the published sizes. Sizes follow the spec's
scaled-down substrate (../shared/papers/specs_A.md §5.5: 20k-50k frames, a ~0.5M-parameter
planner at `cpu`). The simulator's own knobs are `hrlzoo.envs.driving.config.SimConfig`,
nested under `sim:`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.envs.driving.config import SimConfig
from hrlzoo.pipeline.params import SCALES, Common, knob

SPLITS = ("train", "val", "test")
IL_METHODS = ("global", "hpd_lir", "hpd_lir_scratch")  # imitation planners, in training order
RFT_METHODS = ("worldrft", "rft_l2")  # GRPO from hpd_lir: collision-aware reward, L2-only reward
METHODS = IL_METHODS + RFT_METHODS
SEED_STRIDE = 1_000_000  # scene seeds of split i are split_seed0 + i * SEED_STRIDE + [0, n)


@dataclass
class DatagenSizes:
    train_scenes: int = knob(560, ge=1, help="scenes whose expert logs make the training split")
    val_scenes: int = knob(80, ge=1, help="scenes of the validation split")
    test_scenes: int = knob(80, ge=1, help="scenes of the test split (also the closed-loop evaluation scenes)")
    frames: int = knob(36, ge=9, help="frames simulated per scene (dt each); frames 2 .. frames - horizon are logged")
    batch: int = knob(256, ge=1, help="scenes simulated together (memory vs speed)")

    def validate(self) -> str | None:
        if max(self.train_scenes, self.val_scenes, self.test_scenes) >= SEED_STRIDE:
            return f"expected fewer than {SEED_STRIDE} scenes per split (seed ranges must not overlap)"
        return None


@dataclass
class TrainSizes:
    """Gradient steps and batches of one seed's training (all methods run in one stage)."""

    wm_steps: int = knob(600, ge=1, help="world-model pretraining steps")
    wm_batch: int = knob(64, ge=2, help="frame pairs per world-model step")
    il_steps: int = knob(600, ge=1, help="imitation steps of every planner (equal for all, scratch included)")
    il_batch: int = knob(64, ge=2, help="frames per imitation step")
    rft_steps: int = knob(150, ge=1, help="GRPO steps of each fine-tuning run")
    rft_scenes: int = knob(64, ge=1, help="scenes (frames) per GRPO step")
    probe_steps: int = knob(20, ge=0, help="batches (of rft_scenes frames) on which the collision signal of "
                            "each `rft.probe` setting is measured on the imitation planner before GRPO")
    log_every: int = knob(25, ge=1, help="steps between logged losses (curves)")


@dataclass
class EvalSizes:
    closed_loop_scenes: int = knob(160, ge=1, lt=SEED_STRIDE, help="scenes of the closed-loop episodes: seeds from "
                                   "the test split's first on (past the logged test scenes: new scenes of that range)")
    handover_starts: list[int] = knob(factory=lambda: [4, 12, 20], ge=0, help="NAVSIM-style episodes: the expert "
                                      "drives this many frames, then the planner takes over (one episode per start)")
    handover_frames: int = knob(8, ge=1, help="frames the planner drives after the handover (8 x 0.5 s = 4 s, NAVSIM's)")
    long_frames: int = knob(34, ge=1, help="frames of the long closed-loop rollout of the logged test scenes from "
                            "their start (supplementary: compounding errors)")
    figure_frames: int = knob(4, ge=1, help="test frames drawn in the report with sampled trajectories")
    batch: int = knob(256, ge=1, help="frames per forward pass in evaluation")


@dataclass
class ScaleSizes:
    datagen: DatagenSizes = knob(factory=DatagenSizes, help="sizes of the datagen stage")
    train: TrainSizes = knob(factory=TrainSizes, help="gradient steps and batches of the train stage")
    eval: EvalSizes = knob(factory=EvalSizes, help="evaluation sizes")


@dataclass
class NetParams:
    """Widths of the networks (stages/worldrft/nets.py); ours, the paper's are unknown."""

    local: int = knob(32, ge=1, help="channels of the 16x16 local feature map LIR samples")
    latent: int = knob(64, ge=1, help="D: width of the 8x8 latent tokens")
    heads: int = knob(4, ge=1, help="attention heads (must divide latent)")
    ff: int = knob(128, ge=1, help="feed-forward width of transformer layers and MLPs")

    def validate(self) -> str | None:
        if self.latent % self.heads:
            return f"heads: expected a divisor of latent ({self.latent})"
        return None


@dataclass
class WorldModelParams:
    """Latent world model pretraining (stands in for the paper's SWE + latent world model)."""

    lr: float = knob(1e-3, gt=0, help="AdamW learning rate")
    weight_decay: float = knob(1e-4, ge=0, help="AdamW weight decay")
    future: int = knob(2, ge=1, help="k: the transition predicts the latent k frames (k dt s) ahead, given the plan")
    geometry_weight: float = knob(1.0, ge=0, help="weight of the geometry loss (semantic maps and the "
                                  "distance field) beside the latent-prediction loss")
    distance_clip: float = knob(12.0, gt=0, help="the distance-field target is min(distance to an obstacle or "
                                "the road edge, this) / this (metres)")


@dataclass
class PlannerParams:
    """Imitation of the expert by the planners."""

    lr: float = knob(1e-3, gt=0, help="AdamW learning rate (cosine decay to 10% over il_steps)")
    weight_decay: float = knob(1e-4, ge=0, help="AdamW weight decay")
    anchors: int = knob(16, ge=2, help="K: intention anchors of HPD (k-means of the expert's futures minus "
                        "constant velocity)")
    rounds: int = knob(2, ge=0, help="LIR refinement rounds")
    intent_weight: float = knob(0.5, ge=0, help="weight of HPD's intention cross-entropy beside the L1 losses")
    global_layers: int = knob(2, ge=1, help="cross-attention blocks of the global-query baseline")


@dataclass
class RewardWeights:
    """R = -l2 * mean_t ||tau_t - tau*_t|| - collision * 1[collides] + progress * EP (method.reward)."""

    l2: float = knob(1.0, ge=0, help="per metre of mean L2 to the expert's trajectory")
    collision: float = knob(0.0, ge=0, help="penalty for a trajectory that overlaps an agent's future box")
    progress: float = knob(0.0, ge=0, help="weight of EP, progress relative to the expert's, clipped to [0, 1]")


@dataclass
class ProbeParams:
    """A sampling setting whose collision signal is measured without training (rft.probe)."""

    group: int = knob(16, ge=2, help="G")
    sigma_lon: list[float] = knob(factory=lambda: [0.3, 1.5], gt=0, help="std along the heading, first and last waypoint")
    sigma_lat: list[float] = knob(factory=lambda: [0.1, 0.3], gt=0, help="std across, first and last waypoint")
    noise_corr: float = knob(0.0, ge=0, lt=1, help="rho between consecutive waypoints")
    interactive_share: float = knob(0.0, ge=0, le=1, help="share of each batch drawn from the interactive frames")

    def validate(self) -> str | None:
        if len(self.sigma_lon) != 2 or len(self.sigma_lat) != 2:
            return "sigma_lon, sigma_lat: expected [first, last]"
        return None


@dataclass
class RFTParams:
    """GRPO fine-tuning of hpd_lir around its own output (trajectory Gaussianisation)."""

    group: int = knob(16, ge=2, help="G: trajectories sampled per scene (spec: 8-16)")
    sigma_lon: list[float] = knob(factory=lambda: [0.3, 1.5], gt=0, help="std (m) of the Gaussian along the ego's "
                                  "heading (x) at the first and the last waypoint; linear in between")
    sigma_lat: list[float] = knob(factory=lambda: [0.1, 0.3], gt=0, help="std (m) across (y), first and last waypoint")
    noise_corr: float = knob(0.0, ge=0, lt=1, help="rho: correlation of the Gaussian's noise between consecutive "
                             "waypoints, Sigma[i, j] = sigma_i sigma_j rho^|i-j| per coordinate (0: independent; "
                             "near 1: a sample shifts the whole plan smoothly, as braking or speeding up does)")
    interactive_share: float = knob(0.0, ge=0, le=1, help="share of each GRPO batch drawn from the interactive "
                                    "training frames (method.interactive_frames); the rest uniformly from all")
    interactive_margin: float = knob(1.0, ge=0, help="m: a frame is interactive when the ego box grown by this "
                                     "much on the expert's or the constant-velocity path meets an agent's box")
    lr: float = knob(1e-4, gt=0, help="AdamW learning rate of the planner heads (the encoder is frozen)")
    clip_eps: float = knob(0.2, gt=0, lt=1, help="PPO clip range of the ratio (GRPO: 0.2)")
    kl_coef: float = knob(0.04, ge=0, help="beta of the k3 KL to the imitation policy (GRPO: 0.04)")
    epochs: int = knob(2, ge=1, help="optimizer steps on each batch of sampled trajectories")
    grad_clip: float = knob(1.0, ge=0, help="max gradient norm (0: off)")
    rewards: dict[str, RewardWeights] = knob(factory=dict, keys=RFT_METHODS, all_keys=True, help="RFT method -> reward weights "
                                             "(worldrft: collision-aware; rft_l2: L2 only)")
    probe: dict[str, ProbeParams] = knob(factory=dict, help="name -> sampling setting whose collision signal the "
                                         "train stage measures on the imitation planner before GRPO, beside the "
                                         "declared one ('declared'; e.g. the settings of an earlier run)")

    def validate(self) -> str | None:
        if len(self.sigma_lon) != 2 or len(self.sigma_lat) != 2:
            return "sigma_lon, sigma_lat: expected [first, last]"
        if "declared" in self.probe:
            return "probe: 'declared' is the name of the declared setting itself (rename the entry)"
        return None

    def sampling(self) -> ProbeParams:
        """The declared sampling setting, as a probe entry."""
        return ProbeParams(group=self.group, sigma_lon=list(self.sigma_lon), sigma_lat=list(self.sigma_lat),
                           noise_corr=self.noise_corr, interactive_share=self.interactive_share)


@dataclass
class WorldRFTParams(Common):
    sim: SimConfig = knob(factory=SimConfig, help="the driving simulator (road, traffic, scenarios, raster)")
    split_seed0: int = knob(0, ge=0, help="first scene seed of the train split; val / test follow at +1e6 / +2e6")
    nets: NetParams = knob(factory=NetParams, help="network widths")
    world_model: WorldModelParams = knob(factory=WorldModelParams, help="world-model pretraining")
    planner: PlannerParams = knob(factory=PlannerParams, help="planner imitation")
    rft: RFTParams = knob(factory=RFTParams, help="GRPO fine-tuning")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, keys=SCALES, all_keys=True, help="scale -> stage -> sizes")



def sizes(p: WorldRFTParams) -> ScaleSizes:
    """The sizes at the chosen scale."""
    return p.sizes[p.scale]


def split_seeds(p: WorldRFTParams, split: str) -> list[int]:
    """Scene seeds of one split: disjoint ranges, so no scene is in two splits."""
    d = sizes(p).datagen
    n = {"train": d.train_scenes, "val": d.val_scenes, "test": d.test_scenes}[split]
    start = p.split_seed0 + SPLITS.index(split) * SEED_STRIDE
    return list(range(start, start + n))
