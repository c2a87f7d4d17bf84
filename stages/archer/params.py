"""ArCHer's params schema: every knob of `params/archer.yaml`, with its range and meaning.

Official values (YifeiZhou02/ArCHer): scripts/config/default.yaml and archer_20q.yaml (the
schedule, learning rates, gamma, tau), archer/environment/twenty_questions.py (the game),
archer/algorithms/offpolicy_train_loop.py (the loop, filtered BC's 0.9 quantile),
archer/models/chai_agent.py (CHAI's 5 samples). The game here is ours (spec A §4.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import SCALES, Common, knob

METHODS = ("sft", "archer", "ppo", "filtered_bc", "chai")
MODEL_SIZES = ("small", "large")


@dataclass
class GameParams:
    n_objects: int = knob(32, ge=2, help="objects in the world (official: 157 words)")
    n_attributes: int = knob(10, ge=1, le=24, help="yes/no attributes describing each object")
    max_turns: int = knob(8, ge=2, help="turn limit (official max_conversation_length: 20)")
    world_seed: int = knob(0, ge=0, help="seed of the generated world (names, attributes, table)")
    guess_max: int = knob(3, ge=1, help="the optimal questioner's DP guesses only among <= guess_max candidates")


@dataclass
class DataParams:
    """The noisy scripted questioner whose games are the offline (SFT) data."""

    premature_guess: float = knob(0.1, ge=0, le=1, help="chance per turn to guess a random remaining candidate")
    repeat: float = knob(0.25, ge=0, le=1, help="chance per turn to ask again an attribute already asked")
    seed: int = knob(1, ge=0, help="seed of the offline games")


@dataclass
class ModelSizes:
    d_model: int = knob(64, ge=8, help="width")
    n_layer: int = knob(2, ge=1, help="transformer blocks")
    n_head: int = knob(2, ge=1, help="attention heads")


@dataclass
class SFTParams:
    episodes: int = knob(20000, ge=1, help="offline games of the scripted questioner (the paper: LMRL-Gym's 20Q data)")
    steps: int = knob(1500, ge=1, help="optimizer steps of SFT (token-level BC on the offline data)")
    batch_size: int = knob(64, ge=1, help="utterances per step")
    lr: float = knob(2e-3, gt=0, help="AdamW peak lr (warm-up then cosine)")
    weight_decay: float = knob(0.1, ge=0, help="AdamW weight decay")
    warmup_steps: int = knob(30, ge=0, help="linear warm-up steps")
    threads: int = knob(2, ge=0, help="torch threads of the SFT stage")
    gate_games_per_object: int = knob(8, ge=1, help="sampled games per object of the SFT gate")
    gate_min_win: float = knob(0.15, ge=0, le=1, help="the SFT policy must win at least this share (issue 18)")
    gate_max_win: float = knob(0.70, ge=0, le=1, help="... and at most this share (headroom)")


@dataclass
class RLSizes:
    iterations: int = knob(30, ge=1, help="rollout + update iterations (official: 2000)")
    rollout_size: int = knob(32, ge=1, help="games per iteration (official rollout_size: 128)")
    env_batch: int = knob(32, ge=1, help="games played at once (official bsize: 32)")
    warmup_iter: int = knob(5, ge=0, help="iterations without policy updates (official: 20 of 2000)")
    critic_epochs: int = knob(10, ge=1, help="critic steps per iteration (official epochs: 50)")
    actor_epochs: int = knob(3, ge=1, help="actor steps per iteration (official: 3)")
    batch_size: int = knob(8, ge=1, help="micro-batch (official: 8)")
    grad_accum: int = knob(8, ge=1, help="micro-batches per step (official grad_accum_steps: 32)")
    eval_every: int = knob(5, ge=1, help="iterations between evaluations (official eval_freq: 25)")
    eval_games_per_object: int = knob(1, ge=1, help="games per object at evaluation (greedy: 1 is exact)")
    ppo_epochs: int = knob(4, ge=1, help="PPO epochs per iteration")
    ppo_minibatches: int = knob(4, ge=1, help="PPO optimizer steps per epoch")


@dataclass
class RLParams:
    """Optimisation shared by every method at every scale (official values in the help)."""

    gamma: float = knob(0.95, gt=0, le=1, help="utterance-level discount (official: 0.95)")
    tau: float = knob(0.1, gt=0, le=1, help="Polyak rate of the target critic (official: 0.1)")
    critic_lr: float = knob(2e-5, gt=0, help="critic Adam lr (official archer_20q: 2e-5)")
    lm_lr: float = knob(1e-6, gt=0, help="policy Adam lr of ArCHer (official archer_20q: 1e-6)")
    bc_lr: float = knob(1e-6, gt=0, help="policy Adam lr of online filtered BC (official: the same lm_lr)")
    ppo_lr: float = knob(1e-5, gt=0, help="policy + value head Adam lr of token-level PPO")
    max_grad_norm: float = knob(1.0, gt=0, help="official: 1.0")
    temperature: float = knob(1.0, gt=0, help="rollout temperature (official: 1.0)")
    max_new_tokens: int = knob(8, ge=2, help="utterance cap in tokens (official: 32 GPT-2 tokens)")
    capacity: int = knob(100000, ge=1, help="replay buffer size (official: 100000)")
    filter_quantile: float = knob(0.9, gt=0, lt=1, help="filtered BC keeps returns >= this quantile (official: 0.9)")
    chai_samples: int = knob(5, ge=1, help="CHAI's samples per action (official: 5)")
    ppo_lam: float = knob(0.95, ge=0, le=1, help="GAE lambda of token-level PPO")
    ppo_clip: float = knob(0.2, gt=0, help="PPO ratio clip")
    ppo_vf_coef: float = knob(0.1, ge=0, help="PPO value-loss weight")


@dataclass
class ScaleSizes:
    models: dict[str, ModelSizes] = knob(factory=dict, help="policy sizes: small (every method) and large")
    critic_size: str = knob("small", choices=MODEL_SIZES, help="the critic encoder is a copy of this SFT model "
                            "(fixed across policy sizes, as RoBERTa-base is in the paper)")
    sft: SFTParams = knob(factory=SFTParams, help="SFT of each policy size")
    rl: RLSizes = knob(factory=RLSizes, help="the online RL schedule")

    def validate(self) -> str | None:
        if set(self.models) != set(MODEL_SIZES):
            return f"models: expected exactly {', '.join(MODEL_SIZES)}"
        for name, m in self.models.items():
            if m.d_model % m.n_head:
                return f"models.{name}.d_model: expected a multiple of n_head"
        if self.rl.rollout_size % self.rl.env_batch:
            return "rl.rollout_size: expected a multiple of rl.env_batch"
        if self.sft.gate_min_win > self.sft.gate_max_win:
            return "sft.gate_min_win: expected <= gate_max_win"
        return None


@dataclass
class ArcherParams(Common):
    game: GameParams = knob(factory=GameParams, help="the Twenty Questions world")
    data: DataParams = knob(factory=DataParams, help="offline data")
    rl: RLParams = knob(factory=RLParams, help="optimisation")
    runs: list[str] = knob(factory=list, help="RL runs '<method>-<size>' (methods: sft, archer, ppo, filtered_bc, chai)")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, help="scale -> sizes")

    def validate(self) -> str | None:
        for scale in SCALES:
            if scale not in self.sizes:
                return f"sizes.{scale}: missing (every paper declares smoke, cpu and paper sizes)"
        for r in self.runs:
            m, _, s = r.rpartition("-")
            if m not in METHODS or s not in MODEL_SIZES:
                return f"runs: '{r}' is not <method>-<size> with a method of {', '.join(METHODS)}"
        if len(self.seeds) != len(set(self.seeds)):
            return "seeds: expected distinct seeds"
        return None


def sizes(p: ArcherParams) -> ScaleSizes:
    return p.sizes[p.scale]
