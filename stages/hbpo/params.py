"""HBPO's params schema: every knob of `params/hbpo.yaml`, with its range and meaning.

Official values: the paper (ZJU-REAL/HBPO `paper.txt` §4 "Implementation Details") and the
code (`examples/grpo_trainer/run_qwen2-7b_deepscale.sh`, `verl/trainer/config/ppo_trainer.yaml`,
`rllm/rewards/math_reward.py`, `verl/trainer/ppo/core_algos.py`). The task (spec_B §1.5) is our
substrate: integer addition/subtraction written as column-by-column traces, L_max and the
budgets scaled to its lengths with the paper's ratios (budgets 1/8, 1/4, 1/2, 5/8 of L_max).
"""

from __future__ import annotations

from dataclasses import dataclass

from hrlzoo.pipeline.params import SCALES, Common, knob

from stages.hbpo.hbpo import REWARD_FORMS, REWARD_KINDS

STYLE_KEYS = ("verbose", "standard", "direct")
CHECK_KINDS = ("last", "end", "inline")


@dataclass
class MethodParams:
    """One RL run type: its reward and the budgets of its subgroups."""

    reward: str = knob("budget", choices=REWARD_KINDS,
                       help="budget: HBPO's Eq. 1 (with `budgets`); classic: 0/1; cosine: beta cos(pi n / 2 L_max)")
    budgets: list[int] = knob(factory=list, ge=1,
                              help="budget of each subgroup (equal subgroups); empty: no budget token (natural prompts)")


@dataclass
class RewardParams:
    l_max: int = knob(128, ge=8, help="L_max: training window = max generated tokens (paper: 4096; spec_B §1.5: "
                      "128, which fits the longest verbose trace of level 4, 94 tokens with the budget token)")
    beta: float = knob(4.0, gt=0, help="beta of Eq. 2-3 (paper and code: 4)")
    alpha: float = knob(0.0, ge=0, help="alpha of Eq. 2; 0 means 1 / L_max (paper and code: 1/4096 = 1/L_max)")
    form: str = knob("paper", choices=REWARD_FORMS,
                     help="paper: Eq. 1 piecewise; official_min: the code's min(f1, f2) for every correct answer")
    format_penalty: float = knob(0.0, le=0, help="reward of a response without </think> or a readable answer "
                                 "(paper: 0, 'otherwise'; code: format_error_reward = -1)")
    intra_coef: float = knob(1.0, ge=0, help="weight of A^intra in A (paper Eq. 5: 1; the code adds it twice: 2)")
    budget_in_response: bool = knob(True, help="the prefilled budget token is the first response token (counted in "
                                    "n_gen, trained with the response's advantage), as the official rollout; false: "
                                    "part of the prompt")


@dataclass
class RLParams:
    """Policy optimisation, shared by HBPO and every baseline (paper Eq. 6 + verl's defaults)."""

    eps_low: float = knob(0.2, gt=0, lt=1, help="clip 1 - eps_low (paper: 0.2)")
    eps_high: float = knob(0.28, gt=0, help="clip 1 + eps_high (paper: 0.28, DAPO's clip-higher)")
    dual_clip: float = knob(3.0, gt=1, help="verl's dual clip c for A < 0 (clip_ratio_c: 3.0)")
    temperature: float = knob(1.0, gt=0, help="rollout temperature (verl default 1.0)")
    top_p: float = knob(1.0, gt=0, le=1, help="rollout nucleus (verl default 1.0)")
    weight_decay: float = knob(0.01, ge=0, help="AdamW weight decay (verl actor optim: 0.01)")
    grad_clip: float = knob(1.0, ge=0, help="global grad-norm clip (verl: 1.0)")


@dataclass
class SFTData:
    """The SFT base's traces (spec_B §1.5): styles mixed independently of the level."""

    style_mix: dict[str, float] = knob(factory=lambda: {"verbose": 0.6, "standard": 0.3, "direct": 0.1},
                                       ge=0, keys=STYLE_KEYS, all_keys=True,
                                       help="probability of each trace style (verbose = over-thinking)")
    level_weights: list[float] = knob(factory=lambda: [1.0, 1.0, 1.0, 1.0], ge=0,
                                      help="relative frequency of each level in the SFT data")
    budget_fraction: float = knob(0.5, ge=0, le=1, help="share of traces that carry a random budget token "
                                  "(uninformative: the trace does not depend on it)")
    checks: str = knob("end", choices=CHECK_KINDS,
                       help="the verbose style's re-check lines: last (repeat the last step line, after it) | end "
                       "(random earlier lines, after the last step: `solution(checks_at='end')`) | inline (random "
                       "lines, each after the line it repeats)")
    min_checks: int = knob(1, ge=1, help="fewest re-check lines of a verbose trace")
    max_checks: int = knob(3, ge=1, help="most re-check lines of a verbose trace")
    budget_in_completion: bool = knob(True, help="the random budget token is the first completion token (the base "
                                      "can emit one itself); false: it is in the prompt")
    lr: float = knob(3e-3, gt=0, help="AdamW peak learning rate")
    weight_decay: float = knob(0.1, ge=0, help="AdamW weight decay (matrices only)")
    warmup_steps: int = knob(20, ge=0, help="linear warm-up steps, then cosine to 0.1 x lr")

    def validate(self) -> str | None:
        if abs(sum(self.style_mix.values()) - 1.0) > 1e-6:
            return f"style_mix: expected weights that sum to 1 (they sum to {sum(self.style_mix.values()):g})"
        if self.max_checks < self.min_checks:
            return "max_checks: expected >= min_checks"
        if not any(self.level_weights):
            return "level_weights: expected at least one positive weight"
        return None


@dataclass
class ModelSizes:
    d_model: int = knob(128, ge=8, help="width (spec_B §0.1: stay at d <= 192 on 2 CPU cores)")
    n_layer: int = knob(4, ge=1, help="transformer blocks")
    n_head: int = knob(4, ge=1, help="attention heads")
    rotary: bool = knob(False, help="rotary position embeddings instead of a learned table")


@dataclass
class SFTSizes:
    steps: int = knob(500, ge=1, help="optimizer steps of SFT")
    batch_size: int = knob(64, ge=1, help="traces per step")
    threads: int = knob(2, ge=0, help="torch threads of the SFT stage (it runs alone; 0 = all cores)")


@dataclass
class GateSizes:
    """The SFT base must be worth compressing before RL starts (spec_B §1.6): the stage fails otherwise."""

    problems_per_level: int = knob(64, ge=1, help="held-out problems per level the gate measures")
    min_accuracy: list[float] = knob(factory=lambda: [0.0, 0.0, 0.0, 0.0], ge=0, le=1,
                                     help="natural-mode accuracy the base must reach on each level")
    min_verbose_share: float = knob(0.0, ge=0, le=1,
                                    help="share of level-1 answers in the verbose style the base must show")


@dataclass
class RLSizes:
    steps: int = knob(40, ge=1, help="RL steps (paper: 629 = one epoch of DeepScaleR-40K)")
    prompts: int = knob(8, ge=1, help="queries per step (paper: train_batch_size 64)")
    group_size: int = knob(16, ge=2, help="rollouts per query, split equally over the budgets (paper: 16, 4 per budget)")
    minibatches: int = knob(2, ge=1, help="optimizer steps per RL step (paper: 64 / ppo_mini_batch_size 16 = 4)")
    lr: float = knob(1e-4, gt=0, help="AdamW lr (paper: 1e-6 for a 1.5B pretrained model; ours trains a tiny GPT "
                     "from scratch)")
    log_every: int = knob(1, ge=1, help="RL steps between rows of the training log")
    reference_rows: int = knob(0, ge=0, help="smoke only: the first n rollouts of every group whose rewards are all equal replaced by the "
                         "reference solution (hrlzoo/algos/reference.py), so a tiny model's update has non-zero "
                         "advantages; 0 = the method (cpu, paper)")


@dataclass
class EvalSizes:
    problems_per_level: int = knob(100, ge=1, help="held-out test problems per level")
    max_new_tokens: int = knob(224, ge=8, help="generation cap at evaluation (paper: 32768 vs the 4096 training "
                               "window; ours: what the model's 256 positions leave after the prompt)")
    temperature: float = knob(0.6, ge=0, help="evaluation temperature (paper: 0.6)")
    top_p: float = knob(0.95, gt=0, le=1, help="evaluation nucleus (paper: 0.95)")
    forced_budget_methods: list[str] = knob(factory=lambda: ["base", "hbpo", "single"],
                                            help="methods also evaluated with every budget token forced")


@dataclass
class ScaleSizes:
    model: ModelSizes = knob(factory=ModelSizes, help="the GPT")
    sft: SFTSizes = knob(factory=SFTSizes, help="SFT of the base")
    gate: GateSizes = knob(factory=GateSizes, help="the base's gate before RL")
    rl: RLSizes = knob(factory=RLSizes, help="RL runs (every method, every seed)")
    eval: EvalSizes = knob(factory=EvalSizes, help="evaluation")

    def validate(self) -> str | None:
        if self.model.d_model % self.model.n_head:
            return "model.d_model: expected a multiple of model.n_head"
        if len(self.gate.min_accuracy) != 4:
            return "gate.min_accuracy: expected one value per level (4)"
        return None


@dataclass
class HBPOParams(Common):
    levels: list[int] = knob(factory=lambda: [1, 2, 4, 6], ge=1,
                             help="difficulty levels 1..4 as chain lengths k (`hrlzoo.lm.tasks.chain_level`: a "
                             "two-digit number and k one-digit +/- steps); spec_B §1.5's column sums 2x2 ... 4x4 "
                             "were not learnable at cpu size (report, Deviations)")
    test_seed: int = knob(12345, ge=0, help="seed of the held-out test and gate problems (train problems: the run seeds)")
    reward: RewardParams = knob(factory=RewardParams, help="HBPO's reward and advantage")
    rl: RLParams = knob(factory=RLParams, help="the clipped policy loss, shared by every method")
    sft: SFTData = knob(factory=SFTData, help="the SFT base's data and optimiser")
    methods: dict[str, MethodParams] = knob(factory=dict, help="RL runs: name -> reward and budgets")
    sizes: dict[str, ScaleSizes] = knob(factory=dict, keys=SCALES, all_keys=True, help="scale -> sizes")

    def validate(self) -> str | None:
        if len(self.levels) != 4 or self.levels != sorted(set(self.levels)):
            return "levels: expected 4 increasing chain lengths"
        if len(self.sft.level_weights) != len(self.levels):
            return "sft.level_weights: expected one weight per level"
        if "base" in self.methods:
            return "methods.base: reserved for the SFT base"
        for name, m in self.methods.items():
            if m.reward == "budget" and not m.budgets:
                return f"methods.{name}: reward 'budget' needs budgets"
            if m.reward != "budget" and m.budgets:
                return f"methods.{name}: only reward 'budget' takes budgets"
            if any(b > self.reward.l_max for b in m.budgets):
                return f"methods.{name}.budgets: expected budgets <= reward.l_max ({self.reward.l_max})"
            for scale, s in self.sizes.items():
                if m.budgets and s.rl.group_size % len(m.budgets):
                    return (f"sizes.{scale}.rl.group_size = {s.rl.group_size}: expected a multiple of the "
                            f"{len(m.budgets)} budgets of methods.{name}")
        for scale, s in self.sizes.items():
            bad = [m for m in s.eval.forced_budget_methods if m != "base" and m not in self.methods]
            if bad:
                return f"sizes.{scale}.eval.forced_budget_methods: unknown method '{bad[0]}'"
        return None


def sizes(p: HBPOParams) -> ScaleSizes:
    return p.sizes[p.scale]


def all_budgets(p: HBPOParams) -> list[int]:
    """Every budget any method uses, ascending: the tokenizer's budget tokens."""
    return sorted({b for m in p.methods.values() for b in m.budgets})
