"""Cog-Rethinker's params schema: every knob of `params/cog_rethinker.yaml`, with its range.

There is no official code (spec_B §6.1). The method's knobs follow spec_B §6.2-6.5 (from the
abstract and the public ICLR reviews); the DAPO knobs follow DAPO (Yu et al. 2025: clip
0.2 / 0.28, token-mean, dynamic sampling, no KL) and GRPO DeepSeekMath (Shao et al. 2024).
`paper` sizes are the spec's substrate sizes (§6.5: 16 problems x 8 samples per step, 4
samples per rescue stage, 60-100 steps, k = 2..8) with a GPU-sized model; the paper's own
models (Qwen2.5-1.5B/7B, Llama-3.2-1B/3B) and batch sizes are not known to us [UNVERIFIED].
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import SCALES, Common, knob

ALGOS = ("dapo", "grpo")
TEMPLATES = ("direct", "decomposition", "reflection")


@dataclass
class MethodParams:
    """One RL method: the policy-gradient algorithm and which parts of the hierarchy it runs."""

    algo: str = knob("dapo", choices=ALGOS, help="policy-gradient loss on the direct groups")
    decomposition: bool = knob(True, help="zero-accuracy problems get decomposition rollouts (BM25 demos)")
    reflection: bool = knob(True, help="problems still at zero accuracy get reflection rollouts")
    sft: bool = knob(True, help="rescued solutions, rewritten into the direct template, enter lambda * L_SFT")
    rescued_to_group: bool = knob(False, help="rescued solutions replace wrong samples of their direct group "
                                  "(spec_B 6.3's open choice; makes an all-zero group a mixed one)")
    sft_lambda: float = knob(-1.0, ge=-1, help="this method's lambda (the weight of L_SFT; an arm of the lambda sweep); "
                             "-1 = the shared rl.sft_lambda")

    @property
    def rescues(self) -> bool:
        return self.decomposition or self.reflection

    def validate(self) -> str | None:
        if (self.sft or self.rescued_to_group) and not self.rescues:
            return "sft / rescued_to_group need decomposition or reflection rollouts to rescue anything"
        if self.sft_lambda != -1.0 and (self.sft_lambda < 0 or not self.sft):
            return "sft_lambda: expected -1 (the shared rl.sft_lambda) or a weight >= 0 of a method with sft: true"
        return None

    def lam(self, shared: float) -> float:
        """The weight of L_SFT this method trains with."""
        return shared if self.sft_lambda == -1.0 else self.sft_lambda


@dataclass
class RLParams:
    """Knobs shared by every RL method (sizes live in `sizes.<scale>.rl`)."""

    lr: float = knob(3e-4, gt=0, help="AdamW learning rate of the policy")
    sft_lambda: float = knob(1.0, ge=0, help="lambda: weight of L_SFT added to the DAPO loss (spec_B 6.3: 0.1-1)")
    eps_low: float = knob(0.2, gt=0, lt=1, help="ratio clipped below at 1 - eps_low (DAPO and GRPO: 0.2)")
    eps_high: float = knob(0.28, gt=0, help="DAPO's clip-higher: ratio clipped above at 1 + eps_high (DAPO: 0.28; "
                           "GRPO uses eps_low on both sides)")
    grpo_kl: float = knob(0.0, ge=0, help="GRPO's KL coefficient beta to the base (DeepSeekMath: 0.04; 0 = no reference)")
    temperature: float = knob(1.0, gt=0, help="rollout temperature of every template")
    grad_clip: float = knob(1.0, ge=0, help="max global gradient norm (0 = off)")
    n_demos: int = knob(1, ge=0, help="BM25-retrieved demonstrations in each decomposition prompt")


@dataclass
class ModelSizes:
    n_layer: int = knob(4, ge=1, help="transformer blocks")
    n_head: int = knob(4, ge=1, help="attention heads")
    d_model: int = knob(96, ge=8, help="width")
    max_seq_len: int = knob(320, ge=32, help="learned positions (longest prompt + completion)")
    rotary: bool = knob(False, help="rotary position embeddings instead of the learned position table")

    def validate(self) -> str | None:
        if self.d_model % self.n_head:
            return f"d_model = {self.d_model}: expected a multiple of n_head = {self.n_head}"
        return None


@dataclass
class DataSizes:
    sft_per_level: int = knob(2000, ge=1, help="SFT examples per level and template (direct: its levels only)")
    demo_pool_per_level: int = knob(30, ge=1, help="seed demonstrations per level in the initial BM25 buffer")
    test_per_level: int = knob(100, ge=1, help="held-out problems per level for the final evaluation")
    curve_per_level: int = knob(20, ge=1, help="held-out problems per level for the accuracy-vs-step curve")
    base_eval_per_level: int = knob(40, ge=1, help="held-out problems per level and template to describe the base")


@dataclass
class SFTSizes:
    steps: int = knob(1500, ge=1, help="optimizer steps of the base's SFT")
    batch_size: int = knob(64, ge=1, help="sequences per SFT step")
    lr: float = knob(2e-3, gt=0, help="peak AdamW learning rate (warm-up, then cosine to 10%)")
    warmup_steps: int = knob(50, ge=0, help="linear warm-up steps")
    threads: int = knob(2, ge=0, help="torch threads of the SFT stage (it runs alone; 0 = all cores)")
    bucket_pool: int = knob(4, ge=1, help="length bucketing: pairs are sorted by length within pools of this "
                            "many batches (1 = plain shuffled batches; small pools keep templates mixed)")


@dataclass
class GateSizes:
    """What the base must show before any RL (spec_B 6.5's substrate): the stage fails, writing
    nothing, unless every bound holds on the base_eval problems (greedy)."""

    min_direct_taught: float = knob(0.0, ge=0, le=1, help="direct accuracy on every level of `levels` whose direct "
                                    "traces the base was taught (direct_sft_levels) is at least this")
    max_direct_hard: float = knob(1.0, ge=0, le=1, help="direct accuracy on the hard levels (mean) is at most this")
    min_decomposition_hard: float = knob(0.0, ge=0, le=1, help="decomposition accuracy on the hard levels (mean) "
                                         "is at least this")
    min_reflection_hard: float = knob(0.0, ge=0, le=1, help="reflection accuracy (on corrupted solutions) on the "
                                      "hard levels (mean) is at least this")


@dataclass
class RLSizes:
    steps: int = knob(30, ge=1, help="RL steps per run")
    problems_per_step: int = knob(8, ge=1, help="new training problems per step (spec_B 6.5: 16)")
    group_size: int = knob(8, ge=2, help="G: direct samples per problem (spec_B 6.5: 8)")
    rescue_samples: int = knob(4, ge=1, help="samples per problem in each rescue stage (spec_B 6.5: 4)")
    max_new_tokens: int = knob(112, ge=8, help="direct and reflection completion cap")
    max_decomp_tokens: int = knob(144, ge=8, help="decomposition completion cap (its lines are longer)")
    eval_every: int = knob(5, ge=1, help="RL steps between held-out accuracy points of the curve")
    microbatch_rows: int = knob(64, ge=0, help="rows per forward/backward of the update (exact accumulation)")
    reference_rows: int = knob(0, ge=0, help="smoke only: the first n rollouts of every group whose rewards are all equal replaced by the "
                         "reference solution (hrlzoo/algos/reference.py), so a tiny model's update has non-zero "
                         "advantages; 0 = the method (cpu, paper)")


@dataclass
class ScaleSizes:
    model: ModelSizes = knob(factory=ModelSizes, help="the tiny GPT")
    data: DataSizes = knob(factory=DataSizes, help="problem sets and SFT corpus")
    sft: SFTSizes = knob(factory=SFTSizes, help="SFT of the weak base")
    gate: GateSizes = knob(factory=GateSizes, help="what the base must show before any RL")
    rl: RLSizes = knob(factory=RLSizes, help="RL runs")


@dataclass
class CogParams(Common):
    levels: list[int] = knob(factory=lambda: [2, 3, 4, 5, 6, 7], ge=1,
                             help="difficulty levels k = operations per problem (spec_B 6.5: 2..8)")
    direct_sft_levels: list[int] = knob(factory=lambda: [1, 2, 3, 4], ge=1,
                                        help="levels whose direct-template solutions the weak base is taught")
    easy_levels: list[int] = knob(factory=lambda: [2, 3, 4], ge=1, help="levels reported as 'easy'")
    hard_levels: list[int] = knob(factory=lambda: [6, 7], ge=1, help="levels reported as 'hard'")
    value_range: list[int] = knob(factory=lambda: [10, 99], ge=0, help="[low, high]: the first number and every "
                                  "intermediate value stay inside, else the problem is redrawn "
                                  "(hrlzoo.lm.tasks.chain_level; 10..99 keeps every step line the same width)")
    decomposition_values: bool = knob(True, help="decomposition lines state the values they combine (s2=41-8=33; "
                                      "ours) instead of naming earlier sub-results (s2=s1-8=33)")
    data_seed: int = knob(0, ge=0, help="seed of every problem set and of the SFT corpus (RL seeds are `seeds`)")
    template_weights: dict[str, float] = knob(
        factory=lambda: {"direct": 1.0, "decomposition": 1.0, "reflection": 1.0}, ge=0, keys=TEMPLATES, all_keys=True,
        help="relative share of each template in the SFT corpus (per level that has it)")
    rl: RLParams = knob(factory=RLParams, help="RL knobs shared by every method")
    methods: dict[str, MethodParams] = knob(factory=dict, help="method name -> algorithm and hierarchy switches")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, keys=SCALES, all_keys=True, help="scale -> sizes")

    def validate(self) -> str | None:
        if len(set(self.levels)) != len(self.levels) or sorted(self.levels) != list(self.levels):
            return f"levels = {self.levels}: expected distinct increasing integers"
        for name in ("easy_levels", "hard_levels"):
            if not set(getattr(self, name)) <= set(self.levels) or not getattr(self, name):
                return f"{name} = {getattr(self, name)}: expected a non-empty subset of levels"
        if set(self.easy_levels) & set(self.hard_levels):
            return "easy_levels and hard_levels overlap"
        if len(self.value_range) != 2 or self.value_range[0] > self.value_range[1]:
            return f"value_range = {self.value_range}: expected [low, high] with low <= high"
        if self.value_range[1] < 10 or self.value_range[0] > 99:
            return f"value_range = {self.value_range}: no two-digit first number fits"
        for name in ("cog_rethinker", "dapo"):
            if name not in self.methods:
                return f"methods.{name}: missing (the claims compare these)"
        return None


def sizes(p: CogParams) -> ScaleSizes:
    return p.sizes[p.scale]
