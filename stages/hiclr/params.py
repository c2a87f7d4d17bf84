"""HiCLR's params schema: every knob of `params/hiclr.yaml`, with its range and meaning.

Defaults are the official release (JHang2020/HiCLR, config/release/gcn_ntu60/{pretext,
linear_eval,finetune}/*.yaml and the processors they name); epoch boundaries (LR steps,
nearest-neighbour mining, warm-up) are written as fractions of the number of epochs so the
smaller scales keep their proportions. Sizes per scale live under `sizes:`; `paper` is the
official size (10 ST-GCN blocks, 300 pretraining epochs, queue 32768) on our generated data.
The generator's knobs mirror hrlzoo/envs/skeleton.py `SkeletonConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.envs.skeleton import CLASSES
from hrlzoo.pipeline.params import SCALES, Common, knob

SPLITS = ("xsub", "xview")
METHODS = ("skeletonclr", "naive_strong", "no_h2", "hiclr")
STREAMS = ("joint", "motion", "bone")


@dataclass
class DataParams:
    """The procedural NTU-layout generator (hrlzoo/envs/skeleton.py); sizes are under sizes.<scale>.data."""

    seed: int = knob(0, ge=0, help="seed of the generated data set (subjects, performances, sensor noise)")
    classes: list[str] = knob(factory=lambda: list(CLASSES), choices=None, help="action classes (motion programs)")
    xsub_train_fraction: float = knob(0.5, gt=0, lt=1, help="share of subjects in the cross-subject train split (NTU: 20 of 40)")
    length_s: list[float] = knob(factory=lambda: [1.6, 2.6], gt=0, help="action duration range of an average-tempo subject (s)")
    idle_s: list[float] = knob(factory=lambda: [0.1, 0.6], ge=0, help="idle time before and after the action (s)")
    height: list[float] = knob(factory=lambda: [0.88, 1.12], gt=0, help="subject size factor range")
    proportions: float = knob(0.07, ge=0, lt=0.5, help="+- relative jitter of each segment length per subject")
    style_amplitude: list[float] = knob(factory=lambda: [0.85, 1.15], gt=0, help="subject's amplitude factor range")
    style_tempo: list[float] = knob(factory=lambda: [0.8, 1.25], gt=0, help="subject's tempo factor range")
    left_handed: float = knob(0.15, ge=0, le=1, help="share of left-handed subjects (mirror one-handed actions)")
    amp_jitter: float = knob(0.2, ge=0, lt=1, help="+- relative amplitude jitter per term and performance")
    freq_jitter: float = knob(0.1, ge=0, lt=1, help="+- relative frequency jitter of oscillations")
    phase_jitter: float = knob(0.08, ge=0, help="+- phase jitter (turns)")
    warp: float = knob(0.15, ge=0, lt=0.3, help="monotone time warp u + w sin(pi u) / pi, |w| <= warp")
    sway_deg: float = knob(3.0, ge=0, help="idle sway amplitude (degrees)")
    facing_deg: float = knob(15.0, ge=0, help="+- where the subject faces (degrees), shared by the three cameras")
    camera_yaw_jitter: float = knob(5.0, ge=0, help="+- per-setup jitter of the cameras' -45/0/+45 degree yaw")
    camera_height: list[float] = knob(factory=lambda: [0.7, 1.4], gt=0, help="camera height range (m)")
    camera_distance: list[float] = knob(factory=lambda: [2.5, 3.5], gt=0, help="camera distance range (m)")
    camera_pitch_jitter: float = knob(8.0, ge=0, help="+- pitch (degrees) on top of looking at the subject")
    noise: float = knob(0.006, ge=0, help="white noise on every joint (m)")
    occluded_noise: float = knob(0.03, ge=0, help="temporally correlated noise of joints hidden behind the torso (m)")
    drop_rate: float = knob(0.3, ge=0, help="expected joint collapses (onto the parent) per sequence")
    drop_frames: list[int] = knob(factory=lambda: [4, 15], ge=1, help="frames a collapse lasts (range)")

    def validate(self) -> str | None:
        unknown = [c for c in self.classes if c not in CLASSES]
        if unknown:
            return f"classes: {unknown[0]!r} is not one of the programs of hrlzoo/envs/skeleton.py"
        if len(set(self.classes)) != len(self.classes) or len(self.classes) < 2:
            return "classes: expected at least two distinct classes"
        for name in ("length_s", "idle_s", "height", "style_amplitude", "style_tempo", "camera_height",
                     "camera_distance", "drop_frames"):
            v = getattr(self, name)
            if len(v) != 2 or v[0] > v[1]:
                return f"{name}: expected [low, high] with low <= high"
        return None


@dataclass
class MoCoParams:
    """net/hiclr.py and the pretext config."""

    feature_dim: int = knob(128, ge=1, help="projector output (official 128)")
    temperature: float = knob(0.07, gt=0, help="softmax temperature (official 0.07)")
    mask_ratio: float = knob(0.1, ge=0, lt=1, help="Jointmask ratio: int(25 * ratio) joints masked per frame")
    topk: int = knob(1, ge=1, help="positives mined per branch after the mining epoch (official 1)")
    mining_fraction: float = knob(0.5, ge=0, le=1, help="nearest-neighbour mining after this share of the epochs "
                                  "(official 150 of 300) for no_h2 and hiclr; 1 = never")
    dropout: float = knob(0.5, ge=0, lt=1, help="dropout in every ST-GCN block but the first (official 0.5)")


@dataclass
class SGDParams:
    lr: float = knob(0.1, gt=0, help="SGD learning rate")
    momentum: float = knob(0.9, ge=0, lt=1, help="SGD momentum")
    nesterov: bool = knob(False, help="Nesterov momentum")
    weight_decay: float = knob(1e-4, ge=0, help="L2 weight decay")
    steps: list[float] = knob(factory=lambda: [250 / 300], gt=0, le=1, help="LR x0.1 after these shares of the epochs")
    warmup: float = knob(0.0, ge=0, lt=1, help="linear warm-up from 0 over this share of the epochs (finetune: 5/70)")


@dataclass
class OptimParams(SGDParams):
    batch: int = knob(128, ge=2, help="minibatch per member")


@dataclass
class EvalParams:
    knn_k: int = knob(20, ge=1, help="neighbours of the weighted kNN classifier (our choice: InstDisc's k=20)")
    knn_temperature: float = knob(0.07, gt=0, help="weight exp(cos / tau) of a neighbour's vote (InstDisc)")
    ensemble_weights: list[float] = knob(factory=lambda: [0.5, 0.5, 0.5], ge=0,
                                         help="joint, motion, bone weights of the fused logits (ensemble_ntu_cs.py alpha1)")

    def validate(self) -> str | None:
        return None if len(self.ensemble_weights) == 3 else "ensemble_weights: expected three (joint, motion, bone)"


@dataclass
class DataSizes:
    subjects: int = knob(40, ge=2, help="subjects (NTU: 40)")
    repetitions: int = knob(1, ge=1, help="performances of each (subject, action)")
    frames: int = knob(50, ge=8, help="T after resizing (official 50)")


@dataclass
class EncoderSizes:
    channels: list[int] = knob(factory=lambda: [16, 16, 16, 16, 32, 32, 32, 64, 64, 256], ge=1,
                               help="output width of each ST-GCN block (official: 10 blocks, hidden 16, hidden_dim 256)")
    strides: list[int] = knob(factory=lambda: [1, 1, 1, 1, 2, 1, 1, 2, 1, 1], ge=1, help="temporal stride of each block")

    def validate(self) -> str | None:
        return None if len(self.channels) == len(self.strides) else "strides: expected one per block of channels"


@dataclass
class ScaleSizes:
    data: DataSizes = knob(factory=DataSizes, help="generated data set")
    encoder: EncoderSizes = knob(factory=EncoderSizes, help="ST-GCN widths")
    queue_size: int = knob(32768, ge=1, help="MoCo queue K (a multiple of the pretraining batch)")
    momentum: float = knob(0.999, gt=0, lt=1, help="key-encoder EMA at this scale (see Deviations)")
    pretrain_epochs: int = knob(300, ge=1, help="self-supervised epochs (official 300)")
    pretrain_batch: int = knob(128, ge=2, help="pretraining minibatch per member (official 128)")
    linear_epochs: int = knob(100, ge=1, help="linear-evaluation epochs (official 100)")
    supervised_epochs: int = knob(70, ge=1, help="supervised epochs (official finetune 70)")

    def validate(self) -> str | None:
        if self.queue_size % self.pretrain_batch:
            return f"queue_size: expected a multiple of pretrain_batch ({self.pretrain_batch})"
        return None


@dataclass
class HiCLRParams(Common):
    data: DataParams = knob(factory=DataParams, help="the skeleton generator")
    moco: MoCoParams = knob(factory=MoCoParams, help="contrastive model")
    pretrain: SGDParams = knob(factory=SGDParams, help="pretext optimiser (config/release/.../pretext); its batch "
                               "is sizes.<scale>.pretrain_batch")
    linear: OptimParams = knob(factory=lambda: OptimParams(lr=3.0, weight_decay=0.0, steps=[0.8]),
                               help="linear evaluation (config/release/.../linear_eval: lr 3, wd 0, step 80 of 100)")
    supervised: OptimParams = knob(factory=lambda: OptimParams(lr=0.1, nesterov=True, steps=[30 / 70, 55 / 70],
                                                               warmup=5 / 70, batch=64),
                                   help="the supervised upper bound (config/release/.../finetune from scratch)")
    eval: EvalParams = knob(factory=EvalParams, help="kNN and the three-stream ensemble")
    runs: list[str] = knob(factory=list, help="pretraining runs '<split>-<method>-<stream>' (= dvc.yaml's foreach)")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, help="scale -> sizes")

    def validate(self) -> str | None:
        for scale in SCALES:
            if scale not in self.sizes:
                return f"sizes.{scale}: missing (every paper declares smoke, cpu and paper sizes)"
        if len(set(self.seeds)) != len(self.seeds):
            return "seeds: expected distinct seeds"
        for r in self.runs:
            parts = r.split("-")
            if len(parts) != 3 or parts[0] not in SPLITS or parts[1] not in METHODS or parts[2] not in STREAMS:
                return f"runs: {r!r} is not '<split>-<method>-<stream>' ({'/'.join(SPLITS)}, {'/'.join(METHODS)}, {'/'.join(STREAMS)})"
        if len(set(self.runs)) != len(self.runs):
            return "runs: expected distinct runs"
        return None


def sizes(p: HiCLRParams) -> ScaleSizes:
    return p.sizes[p.scale]


def parse_run(run: str) -> tuple[str, str, str]:
    split, method, stream = run.split("-")
    return split, method, stream
